"""Why the dense hidden_relu model stops above the neuron-aligned optimum: the measured table.

    python experiments/hidden_relu_optimum.py              # every row (~30 min on 2 idle cores)
    python experiments/hidden_relu_optimum.py --only lr wd # some rows
    python experiments/hidden_relu_optimum.py --list       # the rows and what each tests

The setup, as a new user tries it: `hidden_relu`, 100 features into 40 neurons, I_i = 0.8^i,
dense features (1 − S = 1), batch 1024, the TMS notebook's AdamW (lr 1e-3, weight decay 0.01 on
every parameter, ε = 1e-8). The neuron-aligned solution — W the identity on the 40 most
important features, every other feature's bias at its mean — has the exact loss
Σ_{i ≥ 40} 0.8^i / 12 / 100 = 5.54e-7 (`toymodels.analysis.aligned_loss`).

Each row is one `tm.sweep` over its grid (2 seeds per value); the table gives the final
training loss (the mean over the last `log_every` steps) divided by the aligned loss, per value
(mean over seeds and the range), the features each seed represents (‖W_i‖ > 0.5) and the
neurons that carry exactly one feature (`toymodels.analysis.features_per_neuron` = 1, of 40). Sweeps are kept under
results/hidden_relu_optimum/ and resumed when the script runs again; the table is written to
results/hidden_relu_optimum/table.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

import toymodels as tm
from toymodels.analysis import (
    aligned_loss,
    aligned_solution,
    features_per_neuron,
    n_represented,
    neuron_responses,
)

MODEL = tm.ToyModelConfig(n_features=100, d_hidden=40, kind="hidden_relu", importance_decay=0.8)
SEEDS = [0, 1]
DEFAULT = tm.TrainConfig()
OPTIMUM = aligned_loss(MODEL.importances(), 1.0, MODEL.d_hidden)


def cosine(steps: int, **changes) -> tm.TrainConfig:
    """Linear warm-up over the first 5 % of steps, then cosine decay to 0."""
    return tm.TrainConfig(steps=steps, schedule="warmup_cosine", warmup_steps=steps // 20,
                          log_every=min(1000, steps // 10), **changes)


#: name -> (what the row tests, TrainConfig, grid without the seeds).
ROWS: dict[str, tuple[str, tm.TrainConfig, dict]] = {
    "default": ("the TMS defaults, 10k steps", DEFAULT, {}),
    "lr": ("constant learning rate", DEFAULT, {"lr": [3e-4, 1e-3, 3e-3, 1e-2]}),
    "wd": ("AdamW's decoupled decay on W and b", DEFAULT,
           {"weight_decay": [0.0, 0.01, 0.1, 1.0]}),
    "init": ("initialisation std (Xavier is 0.12)", DEFAULT, {"init_std": [0.01, 0.12, 0.3]}),
    "eps": ("Adam's ε at 1e-12 instead of 1e-8", dataclasses.replace(DEFAULT, eps=1e-12), {}),
    "sgd": ("SGD with momentum 0.9 instead of Adam",
            dataclasses.replace(DEFAULT, optimizer="sgd", momentum=0.9), {"lr": [1.0, 10.0]}),
    "cosine10k": ("cosine decay to 0, 10k steps", cosine(10_000), {"lr": [1e-3, 3e-3, 1e-2]}),
    "cosine100k": ("cosine decay to 0, 100k steps", cosine(100_000), {"lr": [3e-3, 1e-2]}),
    "cosine300k": ("cosine decay to 0, 300k steps", cosine(300_000), {"lr": [1e-2]}),
    "batch4096": ("4× the batch (a quarter of the gradient noise's variance), cosine, 100k",
                  cosine(100_000, batch_size=4096), {"lr": [1e-2]}),
}
#: Trained from the aligned solution instead of a random init: name -> (what, TrainConfig).
FROM_ALIGNED: dict[str, tuple[str, tm.TrainConfig]] = {
    "aligned": ("started at the aligned solution, TMS defaults, 10k", DEFAULT),
    "aligned_cosine": ("started at the aligned solution, cosine decay from 1e-3, 10k",
                       cosine(10_000)),
}


def from_aligned(train: tm.TrainConfig, seed: int) -> tuple[float, int, int, str]:
    """A model started *at* the aligned solution (is it a minimum?): its final training loss,
    represented features, single-feature neurons, and Adam's gradient RMS √ν at the end (the
    scale ε = 1e-8 is added to): the smallest over W's rows (median over neurons), and the
    output bias's at features 39, 60 and 99.

    Uses the trainer's own init/run (`tm.make_trainer`) with the initial parameters replaced.
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    train = dataclasses.replace(train, seed=seed)
    trainer = tm.make_trainer(MODEL, train)
    swept = tm.Swept.from_configs(MODEL, train)
    state = trainer.init(swept)
    W, b = aligned_solution(MODEL.importances(), 1.0, MODEL.d_hidden)
    params = state.params
    nnx.replace_by_pure_dict(params, {"W": jnp.asarray(W), "b": jnp.asarray(b)})
    state = state._replace(params=params, opt_state=trainer.optimizer(swept).init(params))
    one = jax.tree.map(lambda a: jnp.asarray(a)[None], (state, swept))
    n_logs = train.steps // train.log_every
    final, history = trainer.run(*one, one[1].seed, jnp.zeros(1, jnp.int32), 0, n_logs)
    W_final = nnx.to_pure_dict(final.params)["W"][0]
    single = int((features_per_neuron(neuron_responses(W_final)) == 1).sum())
    nu = nnx.to_pure_dict(final.opt_state[0].nu)  # adam/adamw: scale_by_adam comes first
    rms_W = np.median(np.sqrt(np.asarray(nu["W"][0])), axis=1)
    rms_b = np.sqrt(np.asarray(nu["b"][0]))
    rms = (f"√ν: W rows ≥ {rms_W.min():.2g}; b_39 {rms_b[39]:.2g}, b_60 {rms_b[60]:.2g}, "
           f"b_99 {rms_b[99]:.2g}")
    return float(history[0, -1]), int(n_represented(W_final)), single, rms


def offset_mechanism(W: np.ndarray, n_samples: int = 200_000) -> dict[str, float]:
    """How a trained W (feature, hidden) keeps its mixed-sign neurons from clipping.

    hidden_relu has no hidden bias, and dense inputs are ≥ 0 with mean 1/2: a neuron that reads
    a represented feature with a negative weight clips (pre-activation < 0) unless something
    else lifts it. The dropped features (‖W_i‖ ≤ 0.5) can: their rows feed each neuron a
    constant-ish 0.5 Σ_{i dropped} W_ik. Returns the represented count k, the dead neurons
    (never active), the number of live mixed-sign neurons (some represented feature read at
    < −0.05), the smallest offset among
    them, the rank of the dropped rows (singular values above 5 % of the largest), the largest
    |W_i · W_j| between a represented and a dropped row, and the largest clipping probability
    P(Σ_i x_i W_ik < 0) of a mixed-sign neuron, over uniform dense inputs.
    """
    norms = np.linalg.norm(W, axis=1)
    kept, dropped = W[norms > 0.5], W[norms <= 0.5]
    offset = 0.5 * dropped.sum(axis=0)
    sv = np.linalg.svd(dropped, compute_uv=False) if len(dropped) else np.zeros(1)
    x = np.random.default_rng(0).random((n_samples, W.shape[0]))
    clip = ((x @ W) < 0).mean(axis=0)
    dead = clip == 1.0
    mixed = (kept < -0.05).any(axis=0) & ~dead
    return {
        "represented": int(len(kept)),
        "dead_neurons": int(dead.sum()),
        "mixed_sign_neurons": int(mixed.sum()),
        "min_offset_of_mixed": float(offset[mixed].min()) if mixed.any() else float("nan"),
        "dropped_rank": int((sv > 0.05 * sv[0]).sum()) if sv[0] > 0 else 0,
        "max_kept_dot_dropped": float(np.abs(kept @ dropped.T).max()) if len(dropped) else 0.0,
        "max_clip_of_mixed": float(clip[mixed].max()) if mixed.any() else float("nan"),
    }


def summarise(name: str, ds) -> list[str]:
    """Table lines of one row: loss ÷ optimum and single-feature neurons, per grid value."""
    what, _, grid = ROWS[name]
    ratio = ds["loss"] / OPTIMUM
    single = (features_per_neuron(neuron_responses(ds["W"])) == 1).sum("hidden")
    kept = n_represented(ds["W"])
    lines = []
    axes = list(grid) or [None]
    for axis in axes:
        values = ds[axis].values if axis else [None]
        for v in values:
            sel = {axis: v} if axis else {}
            r, s, k = ratio.sel(sel).values, single.sel(sel).values, kept.sel(sel).values
            setting = f"{axis} = {v:g}" if axis else "—"
            lines.append(f"| {name} | {what} | {setting} | {r.mean():.2f} ({r.min():.2f}–{r.max():.2f})"
                         f" | {', '.join(map(str, k))} | {s.mean():.0f} |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=[*ROWS, *FROM_ALIGNED], help="rows to run")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--mechanism", nargs="*", choices=list(ROWS),
                        help="print offset_mechanism for every model of these finished rows")
    parser.add_argument("--out", default="results/hidden_relu_optimum", help="results folder")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, train, grid) in ROWS.items():
            print(f"{name:12s} {what}; steps={train.steps}; grid={grid}")
        for name, (what, train) in FROM_ALIGNED.items():
            print(f"{name:12s} {what}")
        return
    out = Path(args.out)
    if args.mechanism:
        for name in args.mechanism:
            ds = tm.load_results(out / name)
            grid = ds["loss"].dims
            for index in np.ndindex(ds["loss"].shape):
                one = ds.isel(dict(zip(grid, index)))
                point = {d: one[d].item() for d in grid}
                print(name, point, offset_mechanism(one["W"].transpose("feature", "hidden").values))
        return
    lines = [f"aligned optimum: {OPTIMUM:.4g}", "",
             "| row | tests | setting | loss / aligned optimum (seeds' range) | represented features"
             " (‖W_i‖ > 0.5) per seed | single-feature neurons (of 40) |",
             "|---|---|---|---|---|---|"]
    notes = []
    for name in args.only or [*ROWS, *FROM_ALIGNED]:
        start = time.perf_counter()
        if name in FROM_ALIGNED:
            what, train = FROM_ALIGNED[name]
            runs = [from_aligned(train, s) for s in SEEDS]
            ratios = [loss / OPTIMUM for loss, _, _, _ in runs]
            lines.append(f"| {name} | {what} | — | "
                         f"{np.mean(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | "
                         f"{', '.join(str(k) for _, k, _, _ in runs)} | "
                         f"{np.mean([n for _, _, n, _ in runs]):.0f} |")
            notes.append(f"{name}, seed {SEEDS[0]}, Adam's {runs[0][3]}")
        else:
            _, train, grid = ROWS[name]
            ds = tm.sweep(MODEL, {**grid, "seed": SEEDS}, train, out=str(out / name))
            lines.extend(summarise(name, ds))
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = "\n".join(lines + [""] + notes)
    print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
