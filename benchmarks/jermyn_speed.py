"""Speed of a reduced Jermyn et al. sweep: `tm.sweep` against their one-model-at-a-time PyTorch.

The sweep is `experiments/jermyn_lr.toml`'s: the autoencoder task with n = 32 features read through
an m = 16 embedding, k = 64 ReLU neurons, ε = 1/16, batch 256, LAMB with CosineAnnealingLR(2⁹),
6 learning rates × 4 seeds = 24 models (the L1 term and bias decay on, as in their runs that use
them, so both sides do that work). Both sides run in this one process, alternating (torch, jax,
torch, jax, ...), and the median of each is reported.

* torch: `jermyn_torch.run`, their `model3.py` loop: one model per call (they launch one process
  per model), TorchScript model and sampler, LAMB, the scheduler, a second forward pass for the
  activations' L1, bias decay through the state dict. Each model costs a fixed setup (seconds:
  TorchScript compiles it) and then a constant cost per step, so a few of the grid's models are
  timed, for 1 step and for `--steps-torch` steps, and both are reported.
* jax: `tm.sweep(...)` over the whole grid for `--steps-jax` steps, compile included (JAX's caches
  are cleared before every round and the persistent cache is off).

Throughput is model-steps/s = models × steps / wall seconds. Also printed: the whole sweep's time
their way (every model set up, then trained) against `tm.sweep`'s. The last line, `speedup=<x>`,
is the conservative ratio: JAX's rate with its compile included over torch's rate once set up.
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


def time_torch(n_models: int, steps: int) -> tuple[float, float]:
    """(steady model-steps/s, setup s per model) of their loop, one model after another.

    Each model is run twice, for 1 step and for `steps`: the 1-step run is its fixed cost
    (TorchScript compiling the model, the embedding's SVD, the optimizer), the difference the cost
    of steps − 1 steps. Their workflow pays the fixed cost once per model (one process each).
    """
    from jermyn_torch import run

    setup, stepping = 0.0, 0.0
    for i in range(n_models):
        lr = LRS[i % len(LRS)]
        t0 = time.perf_counter()
        run(N, M, K, EPS, BATCH, lr, 1, INIT_BIAS, DECAY, L1, seed=i)
        t1 = time.perf_counter()
        losses, _ = run(N, M, K, EPS, BATCH, lr, steps, INIT_BIAS, DECAY, L1, seed=i)
        t2 = time.perf_counter()
        assert np.isfinite(losses).all(), "torch baseline produced a non-finite loss"
        setup += t1 - t0
        stepping += (t2 - t1) - (t1 - t0)
    return n_models * (steps - 1) / stepping, setup / n_models


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
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch.set_num_threads for the baseline (default 1: on a shared, "
                        "oversubscribed CPU torch's own choice of every core spin-waits and runs "
                        "these tiny matmuls hundreds of times slower; 1 is its fastest there)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps_jax, args.steps_torch, args.torch_models, args.seeds, args.rounds = 32, 20, 1, 1, 1

    import toymodels  # noqa: F401  first: it picks JAX's CPU device count before the backend starts
    import jax
    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
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
    time_torch(1, 2)  # untimed: torch's lazy imports

    torch_rates, torch_setups, jax_rates, jax_seconds = [], [], [], []
    for r in range(args.rounds):
        rate, setup = time_torch(args.torch_models, args.steps_torch)
        torch_rates.append(rate)
        torch_setups.append(setup)
        print(f"round {r + 1}: torch model-steps/s={rate:.0f} once set up, {setup:.1f} s to set up "
              "each model", flush=True)
        rate, seconds = time_jax(args.seeds, args.steps_jax)
        jax_rates.append(rate)
        jax_seconds.append(seconds)
        print(f"round {r + 1}: jax model-steps/s={rate:.0f} ({seconds:.1f} s)", flush=True)

    torch_rate, jax_rate = statistics.median(torch_rates), statistics.median(jax_rates)
    setup = statistics.median(torch_setups)
    # The same sweep (k models × steps_jax) their way: every model set up, then trained.
    torch_sweep = k * (setup + args.steps_jax / torch_rate)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"torch model-steps/s={torch_rate:.0f} once set up (median of {args.rounds}); "
          f"{setup:.1f} s to set up each model")
    print(f"jax model-steps/s={jax_rate:.0f} (median of {args.rounds}), compile included")
    print(f"the whole sweep: jax {statistics.median(jax_seconds):.1f} s; torch, one model at a "
          f"time, {torch_sweep:.0f} s projected (k × (setup + steps / rate)): "
          f"{torch_sweep / statistics.median(jax_seconds):.1f}×")
    # The headline leaves torch's per-model setup out (and keeps JAX's compile in): conservative.
    print(f"speedup={jax_rate / torch_rate:.1f}")


if __name__ == "__main__":
    main()
