"""(a) Harvest throughput against the model's bare forward pass, on the same batches; (b) SAE
training streamed from the store against the same batches held in memory.

    pip install -e '.[lm]'
    python benchmarks/lm_speed.py               # MiniLM on the shipped corpus, about 1-2 minutes
    python benchmarks/lm_speed.py --quick       # 1,000 texts, 2 rounds (~20 s)

Both sides see the same texts cut into the same batches of `--batch-size`, padded on the right to
each batch's longest text (`toymodels.lm.encode`, the tokenisation `harvest` runs):

- **bare**: `model(input_ids, attention_mask)` under `torch.inference_mode()` for every batch,
  the whole model (all blocks, and the pooler) with the batches tokenised beforehand, untimed;
- **harvest**: `lm.harvest(model, sites=[SITE], texts, out=tmpdir)`, everything included:
  tokenising, the hooked forward pass, dropping padding, copying to NumPy, writing and fsyncing the
  safetensors shards and the manifest.

Throughput is real (non-padding) tokens per second, the same count on both sides. Rounds
alternate bare, harvest, bare, harvest … (`--rounds` each, after one untimed warm-up of each), and
the medians are compared: `ratio` = harvest tokens/s ÷ bare tokens/s (target ≥ 0.8). The CPU
seconds of this process are printed beside (their ratio, bare ÷ harvest, is less sensitive to other
processes than wall time, which a shared machine skews; both include torch's threads). The default
site is the last block's output, where the early stop saves nothing; `--site blocks.3...` shows
what stopping halfway gains. Other processes on the machine skew both sides; the load average is
printed before and after.

(b) **Streaming from the store** against the same batches held in memory, both trained by
`tm.sweep` on `SAEConfig(d_in=384, d_sae=8 × 384)` × `--saes` L1 coefficients (one compiled
program for both: the in-memory side is a list of the very batches `store.batches(B, seed=0)`
yields, which is what `tm.sweep(..., data=store)` reads, so both train identical SAEs — checked).
The store is a harvest of MiniLM's `blocks.3.hook_resid_post` on the corpus (`--store` to give
one). Rounds alternate memory, store, memory, store …, after one untimed warm-up of each; JAX's
persistent compilation cache is on (a temporary folder), so after the warm-ups every sweep loads
its program instead of compiling it, and what is timed is the training (and, on the store side,
reading, shuffling and handing over the batches in the engine's reader thread). `stream_ratio` =
store ÷ memory SAE-steps/s of the medians (target ≥ 0.9).

    python benchmarks/lm_speed.py --part b            # about 5-10 minutes on 2 busy CPU cores
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

from toymodels import lm


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) that fn() took."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bare(model, batches) -> tuple[float, float]:
    def run():
        with torch.inference_mode():
            for enc in batches:
                model(input_ids=enc.input_ids, attention_mask=enc.attention_mask)
    return timed(run)


def harvested(model, tokenizer, texts, args) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        return timed(lambda: lm.harvest((model, tokenizer), [args.site], texts, out,
                                        batch_size=args.batch_size, max_length=args.max_length,
                                        progress=False))


def harvest_vs_bare(args) -> None:
    """Part (a)."""
    model, tokenizer = lm.load_model(args.model)
    texts = (lm.corpus() * (args.texts // 4000 + 1))[:args.texts]
    batches = [lm.encode(tokenizer, texts[i:i + args.batch_size], max_length=args.max_length)
               for i in range(0, len(texts), args.batch_size)]
    tokens = int(sum(int(b.attention_mask.sum()) for b in batches))
    padded = sum(b.attention_mask.numel() for b in batches)
    print(f"{args.model}, {len(texts)} texts, {tokens} tokens ({padded} with padding), batch "
          f"{args.batch_size}, site {args.site}, {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.2f}")

    bare(model, batches[:4])                                   # warm-up, untimed
    harvested(model, tokenizer, texts[:4 * args.batch_size], args)
    times = {"bare": [], "harvest": []}
    for r in range(args.rounds):
        times["bare"].append(bare(model, batches))
        times["harvest"].append(harvested(model, tokenizer, texts, args))
        print(f"round {r}: bare {tokens / times['bare'][-1][0]:,.0f} tokens/s "
              f"({times['bare'][-1][1]:.1f} CPU s), harvest {tokens / times['harvest'][-1][0]:,.0f}"
              f" tokens/s ({times['harvest'][-1][1]:.1f} CPU s)")
    rate = {k: tokens / statistics.median(t[0] for t in v) for k, v in times.items()}
    cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
    print(f"median: bare {rate['bare']:,.0f} tokens/s, harvest {rate['harvest']:,.0f} tokens/s; "
          f"CPU seconds bare {cpu['bare']:.1f}, harvest {cpu['harvest']:.1f} (ratio "
          f"{cpu['bare'] / cpu['harvest']:.3f}); load average {os.getloadavg()[0]:.2f}")
    print(f"ratio={rate['harvest'] / rate['bare']:.3f}")


def stream_vs_memory(args) -> None:
    """Part (b): tm.sweep on the store against tm.sweep on the same batches in a list."""
    import itertools

    import jax
    import numpy as np

    import toymodels as tm

    jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jax-cache-"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.store:
            store = lm.ActivationStore(args.store, site=args.train_site)
        else:
            start = time.perf_counter()
            store = lm.harvest(args.model, [args.train_site], lm.corpus()[:args.texts],
                               os.path.join(tmp, "acts"), progress=False)
            print(f"harvested {len(store)} tokens of {args.train_site} in "
                  f"{time.perf_counter() - start:.0f} s")
        steps, batch = args.train_steps, args.train_batch
        memory = list(itertools.islice(store.batches(batch, seed=0), steps))
        sae = tm.SAEConfig(d_in=store.d_in, d_sae=8 * store.d_in)
        grid = {"l1_coefficient": np.geomspace(2.0, 8.0, args.saes).tolist()}
        train = tm.TrainConfig(steps=steps, batch_size=batch, log_every=steps // 10)
        print(f"{args.saes} SAEs of {sae.d_in} → {sae.d_sae}, {steps} steps of {batch} tokens "
              f"({len(store)} tokens in the store, {sum(a.nbytes for a in memory) / 2**20:.0f} "
              f"MiB in memory), {len(jax.devices())} JAX devices, load average "
              f"{os.getloadavg()[0]:.2f}")

        def run(data):
            """(the sweep's Dataset, (wall seconds, CPU seconds))."""
            wall, cpu = time.perf_counter(), time.process_time()
            ds = tm.sweep(sae, grid, train, data=data, progress=False)
            return ds, (time.perf_counter() - wall, time.process_time() - cpu)

        warm = {"memory": run(memory)[0], "store": run(store)[0]}    # compiles, untimed
        np.testing.assert_allclose(warm["store"].W_dec, warm["memory"].W_dec, rtol=1e-5, atol=1e-6)
        times = {"memory": [], "store": []}
        for r in range(args.rounds):
            for side, data in (("memory", memory), ("store", store)):
                times[side].append(run(data)[1])
            print(f"round {r}: " + ", ".join(
                f"{side} {args.saes * steps / t[-1][0]:.2f} SAE-steps/s ({t[-1][1]:.1f} CPU s)"
                for side, t in times.items()))
        rate = {k: args.saes * steps / statistics.median(t[0] for t in v)
                for k, v in times.items()}
        cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
        print(f"median: memory {rate['memory']:.2f}, store {rate['store']:.2f} SAE-steps/s; CPU "
              f"seconds memory {cpu['memory']:.1f}, store {cpu['store']:.1f}; load average "
              f"{os.getloadavg()[0]:.2f}")
        print(f"stream_ratio={rate['store'] / rate['memory']:.3f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("a", "b", "both"), default="both",
                   help="(a) harvest vs bare forward pass, (b) store vs memory SAE training")
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--site", default="blocks.5.hook_resid_post")
    p.add_argument("--texts", type=int, default=4000, help="how many corpus sentences")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--store", default=None, help="(b): a store to train from (default: harvest)")
    p.add_argument("--train-site", default="blocks.3.hook_resid_post", help="(b): the SAE's site")
    p.add_argument("--train-steps", type=int, default=200, help="(b): steps per sweep")
    p.add_argument("--train-batch", type=int, default=1024, help="(b): tokens per step")
    p.add_argument("--saes", type=int, default=2, help="(b): SAEs per sweep (L1 coefficients)")
    p.add_argument("--quick", action="store_true", help="1,000 texts, 2 rounds, 100 SAE steps")
    args = p.parse_args(argv)
    if args.quick:
        args.texts, args.rounds, args.train_steps = 1000, 2, 100
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part in ("a", "both"):
        harvest_vs_bare(args)
    if args.part in ("b", "both"):
        stream_vs_memory(args)


if __name__ == "__main__":
    main()
