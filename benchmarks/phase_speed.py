"""Speed of the n = 2, m = 1 phase grid: 20 × 20 points × 4 seeds × 10,000 steps in one sweep call.

Issue target: under 2 minutes on a 2-core CPU, compile included. The same grid is trained by the
notebook-style PyTorch baseline (`torch_baseline.train_torch`, one instance axis of 1600 models)
for a few steps in the same process, so the printed ratio compares the two on this machine now.
The last line is `speedup=<x>` (model-steps/s of toymodels over the baseline's).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def grid(points: int, seeds: int) -> dict[str, list]:
    return {
        "feature_probability": np.geomspace(1.0, 0.01, points).tolist(),
        "extra_importance": np.geomspace(0.1, 10.0, points).tolist(),
        "seed": list(range(seeds)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=20, help="points per axis (default 20)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds (default 4)")
    parser.add_argument("--steps", type=int, default=10_000, help="training steps (default 10,000)")
    parser.add_argument("--steps-torch", type=int, default=100, help="baseline steps (default 100)")
    args = parser.parse_args(argv)

    import toymodels as tm  # first: it picks JAX's CPU device count
    import jax

    from torch_baseline import train_torch

    g = grid(args.points, args.seeds)
    k = args.points**2 * args.seeds
    print(f"phase grid: {args.points}×{args.points} points × {args.seeds} seeds = {k} models, "
          f"n=2, m=1, batch 1024, {args.steps} steps; jax on {jax.device_count()} "
          f"{jax.devices()[0].platform} device(s); load average {os.getloadavg()[0]:.2f}")

    fp, imp, _ = np.meshgrid(g["feature_probability"], g["extra_importance"], g["seed"], indexing="ij")
    train_torch(1, 2, 1, [1.0], np.ones(2), steps=1, batch_size=8)  # untimed: torch's first-step imports
    t0 = time.perf_counter()
    importance = np.stack([np.ones(k), imp.ravel()], axis=1)  # [instance, feature]
    train_torch(k, 2, 1, fp.ravel(), importance, steps=args.steps_torch, batch_size=1024)
    torch_rate = k * args.steps_torch / (time.perf_counter() - t0)
    print(f"torch model-steps/s={torch_rate:.0f} ({args.steps_torch} steps)")

    model = tm.ToyModelConfig(n_features=2, d_hidden=1, extra_importance=1.0)
    train = tm.TrainConfig(steps=args.steps)
    t0 = time.perf_counter()
    ds = tm.sweep(model, g, train, progress=False)
    seconds = time.perf_counter() - t0
    assert np.isfinite(ds.loss.values).all()
    jax_rate = k * args.steps / seconds
    print(f"toymodels: {seconds:.1f} s for the whole sweep, compile included "
          f"(target < 120 s: {'met' if seconds < 120 else 'NOT met'})")
    print(f"jax model-steps/s={jax_rate:.0f}")
    print(f"speedup={jax_rate / torch_rate:.1f}")


if __name__ == "__main__":
    main()
