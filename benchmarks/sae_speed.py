"""Speed of SAE sweeps: `toymodels` (JAX) against the PyTorch way, in one process, alternating.

(a) Many small SAEs: 1000 SAEs (d_in = 2, d_sae = 10, batch 1024) on the hidden activations of
    5 → 2 toy models (10 toy models × 10 L1 coefficients × 10 seeds), against ARENA's toy SAE
    with an instance axis (`torch_sae_baseline.train_arena_saes`). Throughput in SAE-steps/s,
    the SAEs counted from the sweep's grid (`n_saes`). Target: ≥ 20×.
(b) A few large SAEs: 16 standard SAEs (4 L1 coefficients × 4 seeds, d_in = 256, d_sae = 1024,
    batch 1024) on ground truth (256-d, 512 features, ~5 active), against the same 16 trained
    one after another in PyTorch as SAELens's trainer does (`train_saelens_sae`). Reported as
    GFLOP/s of the SAE's matmuls — forward x W_enc and f W_dec, backward ∂W_dec, ∂f, ∂W_enc: five
    of 2·B·d_in·d_sae, so 10·B·d_in·d_sae per SAE-step (data generation, the optimizer and
    elementwise work not counted) — against this machine's float32 matmul peak measured in the
    same run (`peak.py`, best of numpy and JAX, before and after). Targets: ≥ 70 % of peak, and
    no slower than PyTorch. For scale it also prints what the five matmuls alone reach on these
    shapes (`bare_sae_gflops`: bare vmapped ReLU SAEs on a fixed batch with plain SGD).
(c) Sparse decoding: 2 TopK SAEs (seeds 0, 1: one per CPU device, as large SAEs are trained;
    d_in = 512, d_sae = 16,384, k = 32, batch 1024) on ground truth (512-d, 2048 features, ~16
    active), `decoding="sparse"` against `decoding="dense"` in the same run. SAE-steps/s, and
    effective GFLOP/s: the five dense matmuls' 10·B·d_in·d_sae per SAE-step for both paths (what
    the dense path computes; the sparse path does less work for the same step). Target: ≥ 3×.
    `--d-sae-huge 65536` adds the same comparison at that width.

Compile time is included on the JAX side (caches cleared before every round, persistent cache
off). Both sides alternate for `--rounds` rounds and the medians are reported. The last line is
`speedup=<ratio of (a)>`.

    python benchmarks/sae_speed.py            # about 13 minutes on 2 CPU cores
    python benchmarks/sae_speed.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peak import jax_matmul_gflops, numpy_matmul_gflops  # noqa: E402

BATCH = 1024


def sae_matmul_flops(d_in: int, d_sae: int, batch: int = BATCH) -> int:
    """Forward 2 and backward 3 matmuls of 2·B·d_in·d_sae each."""
    return 5 * 2 * batch * d_in * d_sae


def _clear_jax() -> None:
    import jax

    jax.clear_caches()


# --- (a) ------------------------------------------------------------------------------------


def toy_models(n_toys: int, steps: int):
    """n_toys trained 5 → 2 TMS models at 1 − S = 0.02 (the pentagon), untimed."""
    import toymodels as tm

    model = tm.ToyModelConfig(n_features=5, d_hidden=2, feature_probability=0.02)
    return tm.sweep(model, {"seed": list(range(n_toys))},
                    tm.TrainConfig(steps=steps, log_every=steps), progress=False)


def timed_sweep(sae, grid: dict, train, data, expected: int) -> tuple[float, float]:
    """(SAE-steps/s, seconds) of one `tm.sweep`, caches cleared first (compile included), the
    SAEs counted from its grid and checked against `expected`."""
    import toymodels as tm

    _clear_jax()
    t0 = time.perf_counter()
    ds = tm.sweep(sae, grid, train, data=data, progress=False)
    np.asarray(ds.W_dec.values)
    seconds = time.perf_counter() - t0
    assert not ds.diverged.any(), "toymodels produced a non-finite loss"
    return n_saes(ds, expected) * train.steps / seconds, seconds


def time_jax_small(toy, n_coefficients: int, n_seeds: int, steps: int) -> tuple[float, float]:
    import toymodels as tm

    sae = tm.SAEConfig(d_in=2, d_sae=10, unit_norm_decoder=True)
    grid = {"l1_coefficient": np.geomspace(1e-4, 1e-1, n_coefficients).tolist(),
            "seed": list(range(n_seeds))}
    train = tm.TrainConfig(steps=steps, batch_size=BATCH, lr=1e-3, log_every=math.gcd(steps, 100))
    return timed_sweep(sae, grid, train, tm.ToyActivations(toy),
                       toy.sizes["seed"] * n_coefficients * n_seeds)


def n_saes(ds, expected: int) -> int:
    """The SAEs a sweep trained, counted from its grid (every dim of `loss`: one SAE per grid
    point), never from parameter shapes (whose latent and d_in dims are not SAEs)."""
    count = int(np.prod([ds.sizes[d] for d in ds["loss"].dims]))
    assert count == expected, f"the sweep trained {count} SAEs, the benchmark asked for {expected}"
    return count


def time_torch_small(toy, n_coefficients: int, n_seeds: int, steps: int) -> float:
    from torch_sae_baseline import train_arena_saes

    n_toys = toy.sizes["seed"]
    W = np.repeat(toy.W.values, n_coefficients * n_seeds, axis=0)
    coeff = np.tile(np.repeat(np.geomspace(1e-4, 1e-1, n_coefficients), n_seeds), n_toys)
    t0 = time.perf_counter()
    losses = train_arena_saes(W, 0.02, 10, coeff, steps, BATCH)
    seconds = time.perf_counter() - t0
    assert np.isfinite(losses).all()
    return len(W) * steps / seconds


# --- (c) ------------------------------------------------------------------------------------


def time_jax_topk(d_sae: int, decoding: str, steps: int) -> tuple[float, float]:
    import toymodels as tm

    truth = tm.GroundTruth(d_in=512, n_features=2048, mean_active=16.0, seed=0)
    sae = tm.SAEConfig(d_in=512, d_sae=d_sae, architecture="topk", k=32, decoding=decoding)
    train = tm.TrainConfig(steps=steps, batch_size=BATCH, lr=1e-3, log_every=math.gcd(steps, 10))
    return timed_sweep(sae, {"seed": [0, 1]}, train, truth, 2)


def compare_decoding(d_sae: int, steps: int, rounds: int) -> float:
    """(c): sparse against dense decoding, alternating; prints both and returns the ratio."""
    flops = sae_matmul_flops(512, d_sae)
    print(f"(c) 2 TopK SAEs d_in=512 d_sae={d_sae} k=32 batch {BATCH} on ground truth, {steps} "
          f"steps; {flops / 1e9:.2f} dense GFLOP per SAE-step")
    rates = {"dense": [], "sparse": []}
    for r in range(rounds):
        for decoding in rates:
            rate, seconds = time_jax_topk(d_sae, decoding, steps)
            rates[decoding].append(rate)
            print(f"  round {r + 1}: {decoding} SAE-steps/s={rate:.2f} ({seconds:.1f} s)", flush=True)
    dense, sparse = (statistics.median(rates[d]) for d in ("dense", "sparse"))
    ratio = sparse / dense
    print(f"(c) d_sae={d_sae}: dense SAE-steps/s={dense:.2f} ({dense * flops / 1e9:.1f} effective "
          f"GFLOP/s), sparse SAE-steps/s={sparse:.2f} ({sparse * flops / 1e9:.1f} effective "
          f"GFLOP/s): {ratio:.2f}× (target ≥ 3×: {'met' if ratio >= 3 else 'NOT met'})")
    return ratio


# --- (b) ------------------------------------------------------------------------------------

L1 = [1e-3, 3e-3, 1e-2, 3e-2]


def time_jax_large(d_sae: int, steps: int) -> tuple[float, float]:
    import toymodels as tm

    truth = tm.GroundTruth(d_in=256, n_features=512, mean_active=5.0, seed=0)
    sae = tm.SAEConfig(d_in=256, d_sae=d_sae)
    train = tm.TrainConfig(steps=steps, batch_size=BATCH, lr=1e-3, log_every=math.gcd(steps, 50))
    return timed_sweep(sae, {"l1_coefficient": L1, "seed": [0, 1, 2, 3]}, train, truth,
                       len(L1) * 4)


def bare_sae_gflops(d_sae: int, steps: int) -> float:
    """The ceiling (b) is held against: GFLOP/s of the five matmuls alone, for the same 16 SAEs.

    A bare ReLU SAE (MSE + L1, plain SGD) on a fixed batch, vmapped 16 times and sharded over the
    same devices in one `lax.scan`: no data generation, no Adam, no clipping, no bookkeeping. What
    XLA's CPU matmuls reach on these shapes (a (1024, 1024) activation per SAE, 32 MiB per
    device's block, no longer fits in cache), compile excluded.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    n, d_in = 16, 256

    def loss(p, x):
        f = jax.nn.relu(x @ p["W_enc"] + p["b_enc"])
        x_hat = f @ p["W_dec"] + p["b_dec"]
        return (jnp.sum((x_hat - x) ** 2) + 1e-3 * jnp.sum(f)) / BATCH

    def step(p, x):
        return jax.tree.map(lambda a, g: a - 1e-4 * g, p, jax.grad(loss)(p, x))

    def run(p, x):
        return jax.lax.scan(lambda p, _: (jax.vmap(step)(p, x), None), p, None, length=steps)[0]

    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    p = {"W_enc": 0.01 * jax.random.normal(k1, (n, d_in, d_sae)), "b_enc": jnp.zeros((n, d_sae)),
         "W_dec": 0.01 * jax.random.normal(k2, (n, d_sae, d_in)), "b_dec": jnp.zeros((n, d_in))}
    x = jax.random.uniform(k3, (n, BATCH, d_in))
    mesh = Mesh(np.array(jax.devices()[:n]), ("points",))
    f = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=(P("points"), P("points")),
                              out_specs=P("points")))
    jax.block_until_ready(f(p, x))
    t0 = time.perf_counter()
    jax.block_until_ready(f(p, x))
    return n * steps * sae_matmul_flops(d_in, d_sae) / (time.perf_counter() - t0) / 1e9


def time_torch_large(d_sae: int, steps: int) -> float:
    import toymodels as tm
    from torch_sae_baseline import train_saelens_sae

    truth = tm.GroundTruth(d_in=256, n_features=512, mean_active=5.0, seed=0)
    t0 = time.perf_counter()
    for l1 in L1:
        for seed in range(4):
            train_saelens_sae(truth.dictionary, truth.probabilities, d_sae, l1, steps, BATCH,
                              seed=seed)
    return 16 * steps / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps-small-jax", type=int, default=2000)
    parser.add_argument("--steps-small-torch", type=int, default=20)
    parser.add_argument("--steps-large-jax", type=int, default=300)
    parser.add_argument("--steps-large-torch", type=int, default=10)
    parser.add_argument("--d-sae-large", type=int, default=1024)
    parser.add_argument("--steps-topk", type=int, default=40)
    parser.add_argument("--d-sae-huge", type=int, default=None,
                        help="(c) again at this width (65536: both paths fit in 24 GiB)")
    parser.add_argument("--only", choices=["a", "b", "c"], default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, small peak")
    args = parser.parse_args(argv)
    peak_n = 2048
    n_toys, n_coefficients, n_seeds = 10, 10, 10
    if args.quick:
        args.steps_small_jax, args.steps_small_torch = 100, 3
        args.steps_large_jax, args.steps_large_torch, peak_n = 10, 2, 512
        args.steps_topk = 2
        n_toys, n_coefficients, n_seeds = 4, 4, 4

    import toymodels  # noqa: F401  first: it picks JAX's CPU device count
    import jax
    import torch

    jax.config.update("jax_enable_compilation_cache", False)
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}; jax {jax.__version__} on "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s); compile included")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes skew every number)")
    peaks = [(numpy_matmul_gflops(peak_n), jax_matmul_gflops(peak_n))]
    speedup = float("nan")

    if args.only in (None, "a"):
        toy = toy_models(n_toys, 2000 if not args.quick else 100)
        from torch_sae_baseline import train_arena_saes

        train_arena_saes(toy.W.values[:1], 0.02, 10, np.ones(1), 1, 8)  # untimed warm-up
        k = n_toys * n_coefficients * n_seeds
        print(f"(a) {k} SAEs d_in=2 d_sae=10 batch {BATCH} on 5→2 toy activations; "
              f"torch {args.steps_small_torch} steps, jax {args.steps_small_jax} steps")
        torch_rates, jax_rates = [], []
        for r in range(args.rounds):
            torch_rates.append(time_torch_small(toy, n_coefficients, n_seeds, args.steps_small_torch))
            rate, seconds = time_jax_small(toy, n_coefficients, n_seeds, args.steps_small_jax)
            jax_rates.append(rate)
            print(f"  round {r + 1}: torch SAE-steps/s={torch_rates[-1]:.0f}  jax SAE-steps/s="
                  f"{rate:.0f} ({seconds:.1f} s)", flush=True)
        speedup = statistics.median(jax_rates) / statistics.median(torch_rates)
        print(f"(a) torch SAE-steps/s={statistics.median(torch_rates):.0f}, jax SAE-steps/s="
              f"{statistics.median(jax_rates):.0f}: {speedup:.1f}× "
              f"(target ≥ 20×: {'met' if speedup >= 20 else 'NOT met'})")

    if args.only in (None, "b"):
        d_sae = args.d_sae_large
        flops = sae_matmul_flops(256, d_sae)
        print(f"(b) 16 SAEs d_in=256 d_sae={d_sae} batch {BATCH} on ground truth; "
              f"{flops / 1e9:.2f} GFLOP per SAE-step; torch {args.steps_large_torch} steps each, "
              f"jax {args.steps_large_jax} steps")
        time_torch_large(d_sae, 1)  # untimed warm-up
        torch_rates, jax_rates = [], []
        for r in range(args.rounds):
            torch_rates.append(time_torch_large(d_sae, args.steps_large_torch))
            rate, seconds = time_jax_large(d_sae, args.steps_large_jax)
            jax_rates.append(rate)
            print(f"  round {r + 1}: torch SAE-steps/s={torch_rates[-1]:.2f}  jax SAE-steps/s="
                  f"{rate:.2f} ({seconds:.1f} s)", flush=True)
        peaks.append((numpy_matmul_gflops(peak_n), jax_matmul_gflops(peak_n)))
        peak = max(max(p) for p in peaks)
        bare = bare_sae_gflops(d_sae, max(10, args.steps_large_jax // 2))
        t_rate, j_rate = statistics.median(torch_rates), statistics.median(jax_rates)
        t_gflops, j_gflops = t_rate * flops / 1e9, j_rate * flops / 1e9
        print(f"(b) matmul peak GFLOP/s={peak:.1f} (best of numpy and jax, before and after)")
        print(f"(b) torch GFLOP/s={t_gflops:.1f} ({100 * t_gflops / peak:.0f}% of peak); jax "
              f"GFLOP/s={j_gflops:.1f} ({100 * j_gflops / peak:.0f}% of peak); jax/torch="
              f"{j_rate / t_rate:.2f}× (targets: ≥ 70% of peak "
              f"{'met' if j_gflops >= 0.7 * peak else 'NOT met'}, ≥ 1× torch "
              f"{'met' if j_rate >= t_rate else 'NOT met'})")
        print(f"(b) the five matmuls alone, bare vmapped ReLU SAEs on a fixed batch: GFLOP/s="
              f"{bare:.1f} ({100 * bare / peak:.0f}% of peak); the trainer reaches "
              f"{100 * j_gflops / bare:.0f}% of that")
    if args.only in (None, "c"):
        compare_decoding(4096 if args.quick else 16384, args.steps_topk, args.rounds)
        if args.d_sae_huge:
            compare_decoding(args.d_sae_huge, max(2, args.steps_topk // 4), args.rounds)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"speedup={speedup:.1f}")


if __name__ == "__main__":
    main()
