"""Speed of a reduced Jermyn et al. sweep: `tm.sweep` against their one-model-at-a-time PyTorch.

The sweep is `experiments/jermyn_lr.toml`'s: the autoencoder task with n = 32 features read through
an m = 16 embedding, k = 64 ReLU neurons, ε = 1/16, batch 256, LAMB with CosineAnnealingLR(2⁹),
6 learning rates × 4 seeds = 24 models (the L1 term and bias decay on, as in their runs that use
them, so both sides do that work). Both sides run in this one process, alternating (torch, jax,
torch, jax, ...), and the median of each is reported.

* torch: `jermyn_torch.run`, their `model3.py` loop: one model per call (they launch one process
  per model), TorchScript model and sampler, LAMB, the scheduler, a second forward pass for the
  activations' L1, bias decay through the state dict. Its cost per step is constant, so it trains
  a few of the grid's models for `--steps-torch` steps and model-steps/s is measured on those.
* jax: `tm.sweep(...)` over the whole grid for `--steps-jax` steps, compile included (JAX's caches
  are cleared before every round and the persistent cache is off).

Throughput is model-steps/s = models × steps / wall seconds. The last line is `speedup=<x>`.
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

N, M, K, EPS, BATCH = 32, 16, 64, 1 / 16, 256
LRS = [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
INIT_BIAS, DECAY, L1 = -1.0, 0.4, 1e-3


def time_torch(n_models: int, steps: int) -> float:
    """Model-steps/s of their loop, one model after another (lr cycling through LRS)."""
    from jermyn_torch import run

    t0 = time.perf_counter()
    for i in range(n_models):
        losses, _ = run(N, M, K, EPS, BATCH, LRS[i % len(LRS)], steps, INIT_BIAS, DECAY, L1, seed=i)
        assert np.isfinite(losses).all(), "torch baseline produced a non-finite loss"
    return n_models * steps / (time.perf_counter() - t0)


def time_jax(n_seeds: int, steps: int) -> tuple[float, float]:
    """(model-steps/s, wall s) of `tm.sweep` over LRS × seeds, compile included."""
    import jax

    import toymodels as tm

    jax.clear_caches()
    model = tm.ToyModelConfig(kind="jermyn_autoencoder", n_features=N, d_embed=M, d_hidden=K,
                              feature_probability=EPS, init_bias=INIT_BIAS, bias_decay=DECAY,
                              l1_coefficient=L1)
    train = tm.TrainConfig(steps=steps, batch_size=BATCH, log_every=math.gcd(steps, 16),
                           schedule="cosine_annealing", annealing_steps=512)
    grid = {"lr": LRS, "seed": list(range(n_seeds))}
    t0 = time.perf_counter()
    ds = tm.sweep(model, grid=grid, train=train, progress=False)
    loss = np.asarray(ds["loss"].values)  # on the host before the clock stops
    seconds = time.perf_counter() - t0
    assert np.isfinite(loss).all(), "toymodels produced a non-finite loss"
    return len(LRS) * n_seeds * steps / seconds, seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-jax", type=int, default=2000, help="steps of the sweep (2000)")
    parser.add_argument("--steps-torch", type=int, default=300, help="steps per torch model (300)")
    parser.add_argument("--torch-models", type=int, default=3, help="torch models per round (3)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds per learning rate (4)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each (2)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps_jax, args.steps_torch, args.torch_models, args.seeds, args.rounds = 32, 20, 1, 1, 1

    import toymodels  # noqa: F401  first: it picks JAX's CPU device count before the backend starts
    import jax
    import torch

    jax.config.update("jax_enable_compilation_cache", False)
    k = len(LRS) * args.seeds
    print(f"sweep: K={k} models ({len(LRS)} learning rates × {args.seeds} seeds), jermyn_autoencoder "
          f"n={N}, m={M}, k={K}, ε={EPS:g}, batch={BATCH}, LAMB + CosineAnnealingLR(512), "
          f"init_bias={INIT_BIAS}, bias decay={DECAY}, L1={L1}")
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}, one model at a time, "
          f"{args.torch_models} models × {args.steps_torch} steps per round; jax {jax.__version__} "
          f"on {jax.device_count()} {jax.devices()[0].platform} device(s), {args.steps_jax} steps "
          "(compile included)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on this machine skew "
          "every number below)")
    time_torch(1, 2)  # untimed: TorchScript's first-call compilation and torch's lazy imports

    torch_rates, jax_rates = [], []
    for r in range(args.rounds):
        torch_rates.append(time_torch(args.torch_models, args.steps_torch))
        print(f"round {r + 1}: torch model-steps/s={torch_rates[-1]:.0f}", flush=True)
        rate, seconds = time_jax(args.seeds, args.steps_jax)
        jax_rates.append(rate)
        print(f"round {r + 1}: jax model-steps/s={rate:.0f} ({seconds:.1f} s)", flush=True)

    torch_rate, jax_rate = statistics.median(torch_rates), statistics.median(jax_rates)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"torch model-steps/s={torch_rate:.0f} (median of {args.rounds})")
    print(f"jax model-steps/s={jax_rate:.0f} (median of {args.rounds})")
    print(f"speedup={jax_rate / torch_rate:.1f}")


if __name__ == "__main__":
    main()
