"""Harvest throughput against the model's bare forward pass, on the same batches.

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


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="all-MiniLM-L6-v2")
    p.add_argument("--site", default="blocks.5.hook_resid_post")
    p.add_argument("--texts", type=int, default=4000, help="how many corpus sentences")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="1,000 texts, 2 rounds")
    args = p.parse_args(argv)
    if args.quick:
        args.texts, args.rounds = 1000, 2
    if args.threads:
        torch.set_num_threads(args.threads)

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


if __name__ == "__main__":
    main()
