"""Speed of a finite-data sweep (Henighan et al. 2023): `tm.sweep` against one model at a time.

The sweep: n = 1000 features, m = 2 hidden, p = 0.01 (≈ 10 active features per sample, like the
paper's 10,000 × 0.001), unit-norm samples, T ∈ {3, 10, 30, 100, 300, 1000, 3000} × 4 seeds = 28
models, full batch, `TrainConfig.henighan2023(steps)` (AdamW lr 1e-3, weight decay 1e-2, linear
warm-up over min(2500, steps) steps then cosine decay to 0), the test loss on a fixed fresh test
set every 100 steps. Both sides run in this one process, alternating (torch, jax, torch, jax, ...),
and the median of each is reported.

* torch: `torch_finite_baseline`, every (T, seed) model of the grid trained on its own by a plain
  Python loop (zero_grad / backward / step, LambdaLR), torch's default thread count. It runs only
  the first `--steps-torch` steps of the same `--steps-jax`-step schedule: a full-batch step of a
  model costs the same at every step, so model-steps/s does not depend on how many it runs. Its
  rate counts the training loops only (the test loss included); drawing each model's data and
  building it is timed apart and left out, which favours torch.
* jax: `tm.sweep(model, grid={"dataset_size": Ts, "seed": seeds}, ...)` for `--steps-jax` steps,
  compile included: JAX's caches are cleared before every round and the persistent cache is off,
  so each round traces and compiles (one program per T) as a user's first call does.

The work is counted from the grid: models = len(Ts) × len(seeds), model-steps = models × steps,
and each side asserts that this is what it trained. Throughput is model-steps/s. Before the rounds,
the two are checked to train the same thing: one small model from toymodels' own training set and
initial weights, trained by the torch loop, must match toymodels' loss at every step.

The last line printed is `speedup=<x>`, the ratio of the medians of model-steps/s.
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

N_FEATURES, D_HIDDEN, FEATURE_PROBABILITY = 1000, 2, 0.01
DATASET_SIZES = [3, 10, 30, 100, 300, 1000, 3000]
LOG_EVERY = 100


def model_config(n_features: int, test_size: int, dataset_size: int | None = None):
    import toymodels as tm

    return tm.ToyModelConfig(n_features=n_features, d_hidden=D_HIDDEN,
                             feature_probability=FEATURE_PROBABILITY, unit_norm_inputs=True,
                             dataset_size=dataset_size, test_size=test_size)


def agreement(n_features: int, dataset_size: int, seed: int, steps: int, warmup_steps: int,
              test_size: int = 256) -> dict[str, float]:
    """How closely the torch loop reproduces toymodels on one model, from the same start.

    toymodels trains (dataset_size, seed) for `steps` steps (warm-up `warmup_steps`, then cosine
    decay, so both phases run); the torch loop trains a model set to toymodels' step-0 W and b on
    `tm.training_set(model, seed)`. Returns the largest relative difference of the per-step
    training loss (`loss`), the largest absolute difference of the final W (`W`), the final
    loss of each side (`loss_jax`, `loss_torch`) and the loss at step 0 (`loss_start`).
    """
    import torch

    import toymodels as tm
    from torch_finite_baseline import ReluOutput, train_finite

    model = model_config(n_features, test_size, dataset_size)
    train = tm.TrainConfig.henighan2023(steps, warmup_steps=warmup_steps, log_every=1,
                                        snapshot_steps=(0,))
    ds = tm.sweep(model, {"seed": [seed]}, train, progress=False)
    x = torch.tensor(tm.training_set(model, seed))
    torch_model = ReluOutput(n_features, D_HIDDEN)
    with torch.no_grad():
        torch_model.W.copy_(torch.tensor(ds.W_snapshot.values[0, 0]))
        torch_model.b.copy_(torch.tensor(ds.b_snapshot.values[0, 0]))
    run = train_finite(x, x, torch_model, steps, warmup_steps=warmup_steps, log_every=steps)
    loss_jax = ds.loss_history.values[0]
    loss_torch = run.loss.numpy()
    return {"loss": float(np.max(np.abs(loss_torch - loss_jax) / loss_jax)),
            "W": float(np.max(np.abs(run.W.numpy() - ds.W.values[0]))),
            "loss_jax": float(loss_jax[-1]), "loss_torch": float(loss_torch[-1]),
            "loss_start": float(loss_jax[0])}


def time_torch(n_features: int, sizes: list[int], seeds: list[int], steps: int, schedule_steps: int,
               test_size: int) -> tuple[float, float, float]:
    """(model-steps/s of the training loops, their seconds, setup seconds) over every (T, seed)."""
    from torch_finite_baseline import setup_model, train_finite

    loop_seconds, setup_seconds, model_steps = 0.0, 0.0, 0
    for size in sizes:
        for seed in seeds:
            t0 = time.perf_counter()
            x_train, x_test, model = setup_model(n_features, D_HIDDEN, FEATURE_PROBABILITY, size,
                                                 test_size, seed)
            t1 = time.perf_counter()
            run = train_finite(x_train, x_test, model, steps, schedule_steps=schedule_steps,
                               log_every=math.gcd(steps, LOG_EVERY))
            loop_seconds += time.perf_counter() - t1
            setup_seconds += t1 - t0
            assert np.isfinite(run.loss.numpy()).all(), "torch baseline produced a non-finite loss"
            model_steps += len(run.loss)
    expected = len(sizes) * len(seeds) * steps
    assert model_steps == expected, f"torch trained {model_steps} model-steps, not {expected}"
    return model_steps / loop_seconds, loop_seconds, setup_seconds


_compile_seconds = [0.0]


def _count_compile(event: str, seconds: float, **_) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _compile_seconds[0] += seconds


def time_jax(n_features: int, sizes: list[int], seeds: list[int], steps: int,
             test_size: int) -> tuple[float, float, float, dict[int, float]]:
    """(model-steps/s, wall s, XLA compile s, {T: median test loss}) of `tm.sweep`, compile
    included (caches cleared first)."""
    import jax

    import toymodels as tm

    jax.clear_caches()
    grid = {"dataset_size": sizes, "seed": seeds}
    train = tm.TrainConfig.henighan2023(steps, log_every=math.gcd(steps, LOG_EVERY))
    _compile_seconds[0] = 0.0
    t0 = time.perf_counter()
    ds = tm.sweep(model_config(n_features, test_size), grid=grid, train=train, progress=False)
    loss = np.asarray(ds.loss.values)  # on the host before the clock stops
    test_loss = np.asarray(ds.test_loss.values)
    seconds = time.perf_counter() - t0
    models = math.prod(len(v) for v in grid.values())
    trained = math.prod(ds.sizes[d] for d in ds.loss.dims)
    assert trained == models, f"the sweep trained {trained} models, the grid has {models}"
    ran = ds.sizes["step"] * train.log_every
    assert ran == steps, f"the sweep ran {ran} steps, asked for {steps}"
    assert np.isfinite(loss).all() and np.isfinite(test_loss).all(), "a non-finite loss"
    by_size = {t: float(np.median(test_loss[i])) for i, t in enumerate(sizes)}
    return models * steps / seconds, seconds, _compile_seconds[0], by_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps-jax", type=int, default=2000, help="steps of the JAX sweep (2000)")
    parser.add_argument("--steps-torch", type=int, default=200,
                        help="steps of each torch model, the first of the same schedule (200)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of each (2)")
    parser.add_argument("--seeds", type=int, default=4, help="data seeds per T (4)")
    parser.add_argument("--sizes", type=int, nargs="+", default=DATASET_SIZES,
                        help=f"dataset sizes T (default {DATASET_SIZES})")
    parser.add_argument("--n-features", type=int, default=N_FEATURES, help="n (1000)")
    parser.add_argument("--test-size", type=int, default=1000, help="test samples per seed (1000)")
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads for the baseline (default: torch's own)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 sizes × 2 seeds, few steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds, args.steps_jax, args.steps_torch = [3, 100], 2, 200, 100

    import toymodels  # noqa: F401  first: it picks JAX's CPU device count before the backend starts
    import jax
    import torch

    if args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    jax.config.update("jax_enable_compilation_cache", False)
    jax.monitoring.register_event_duration_secs_listener(_count_compile)
    seeds = list(range(args.seeds))
    models = len(args.sizes) * len(seeds)
    print(f"sweep: {models} models (T ∈ {args.sizes} × {len(seeds)} seeds), "
          f"n={args.n_features}, "
          f"m={D_HIDDEN}, p={FEATURE_PROBABILITY}, unit-norm samples, full batch, AdamW + warm-up "
          f"and cosine decay, test loss on {args.test_size} fresh samples every {LOG_EVERY} steps")
    print(f"torch {torch.__version__} threads={torch.get_num_threads()}, one model at a time, "
          f"{args.steps_torch} steps each; jax {jax.__version__} on {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s), {args.steps_jax} steps (compile included)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes on this machine "
          "skew every number below)")

    # Both train the same thing: both phases of the schedule, from toymodels' own start.
    check = agreement(args.n_features, dataset_size=10, seed=0, steps=100, warmup_steps=40)
    print(f"agreement (T=10, seed 0, 100 steps, same data and initial W): max relative loss "
          f"difference {check['loss']:.1e}, max |ΔW| {check['W']:.1e} (final loss jax "
          f"{check['loss_jax']:.6g}, torch {check['loss_torch']:.6g})")
    assert check["loss"] < 1e-4 and check["W"] < 1e-5, "torch does not train what toymodels does"

    # Untimed: torch's one-time process cost (its first optimizer step imports torch._dynamo).
    time_torch(args.n_features, [3], [0], 1, 1, 8)

    torch_rates, jax_rates = [], []
    for r in range(args.rounds):
        rate, loops, setup = time_torch(args.n_features, args.sizes, seeds, args.steps_torch,
                                        args.steps_jax, args.test_size)
        torch_rates.append(rate)
        print(f"round {r + 1}: torch model-steps/s={rate:.0f} ({loops:.1f} s of training "
              f"loops; {setup:.1f} s drawing data and building models, not counted)", flush=True)
        rate, seconds, compile_seconds, by_size = time_jax(args.n_features, args.sizes, seeds,
                                                           args.steps_jax, args.test_size)
        jax_rates.append(rate)
        print(f"round {r + 1}: jax model-steps/s={rate:.0f} ({seconds:.1f} s, of which XLA "
              f"compile {compile_seconds:.1f} s)", flush=True)

    torch_rate, jax_rate = statistics.median(torch_rates), statistics.median(jax_rates)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"jax test loss after {args.steps_jax} steps (not the paper's 50,000), median over "
          "seeds: " + ", ".join(f"T={t}: {v:.3g}" for t, v in by_size.items()))
    print(f"torch model-steps/s={torch_rate:.0f} (median of {args.rounds}, {models} models × "
          f"{args.steps_torch} steps each)")
    print(f"jax model-steps/s={jax_rate:.0f} (median of {args.rounds}, {models} models × "
          f"{args.steps_jax} steps), compile included")
    print(f"the whole sweep, {models} models × {args.steps_jax} steps: torch "
          f"{models * args.steps_jax / torch_rate:.0f} s projected, jax "
          f"{models * args.steps_jax / jax_rate:.0f} s")
    print(f"speedup={jax_rate / torch_rate:.1f}")


if __name__ == "__main__":
    main()
