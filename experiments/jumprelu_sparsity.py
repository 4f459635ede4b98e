"""Why a JumpReLU SAE with the default settings stays dense on small ground truth, and what
makes it sparse: the measured table (issue 18).

    python experiments/jumprelu_sparsity.py               # every row (~3 min on 2 cores)
    python experiments/jumprelu_sparsity.py --only default bandwidth
    python experiments/jumprelu_sparsity.py --list        # the rows and what each tests

The setup, as a new user tries it: `GroundTruth(d_in=32, n_features=64)` (unit-norm features,
~5 active per sample, coefficients U[0, 1), so ‖x‖ ≈ 1.3), a 96-latent `jumprelu` SAE with the
`SAEConfig` defaults (step sparsity loss, l0_coefficient 1, bandwidth ε = 0.05, initial
threshold θ₀ = 0.01, no pre-activation loss, no warm-up) and `TrainConfig(steps=5000)` (batch
1024, SAELens's Adam at lr 1e-3). Each row is one `tm.sweep` over its grid (seed 0 unless the
grid says otherwise); every point is measured with its final weights (`tm.SAE.from_results`) on
16,384 fresh samples of the GroundTruth (a key the training stream never uses):

- L0: non-zero latents per sample, mean over samples; alive: latents non-zero on ≥ 1 sample;
- FVU: Σ‖x̂ − x‖² / Σ‖x − x̄‖² (variance about the mean);
- MCC: `tm.analysis.mcc(W_dec, truth.dictionary)`, the one-to-one match of decoder rows to the
  64 true features (|cos|);
- θ: the median threshold; b_enc: the median encoder bias;
- window: the share of (sample, latent) pre-activations π with |π − θ| < ε/2, the only ones
  whose L0 term sends θ a gradient (the rectangle kernel of the straight-through estimator);
  0 % means the sparsity loss has no gradient at all.

The `default` and `step_recommended` rows also keep snapshots at steps 0, 100, 500, 1000, 2000
and 3000 and print the same measures there: how fast the pre-activations leave the window, and
how fast θ climbs (Adam moves log θ by about lr per step). Sweeps are kept under
results/jumprelu_sparsity/<row>/ and resumed when the script runs again; the table is written
to results/jumprelu_sparsity/table.md. A `topk` SAE with k = 5 (the data's mean L0) on the same
data is the reference row for the FVU and MCC a sparse SAE reaches here.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

import jax
import numpy as np

import toymodels as tm
from toymodels.analysis import mcc

DATA = tm.GroundTruth(d_in=32, n_features=64, seed=0)
SAE = tm.SAEConfig(d_in=32, d_sae=96, architecture="jumprelu")
TRAIN = tm.TrainConfig(steps=5000, log_every=100)
SAMPLES = 16_384
EVAL_KEY = 12_345  # the training stream draws from its own seeds' keys, not this one
SNAPSHOTS = (0, 100, 500, 1000, 2000, 3000)

#: name -> (what the row tests, SAEConfig changes, TrainConfig changes, grid).
ROWS: dict[str, tuple[str, dict, dict, dict]] = {
    "default": ("the defaults; l0_coefficient alone", {}, {"snapshot_steps": SNAPSHOTS},
                {"l0_coefficient": [1.0, 0.1, 0.01, 0.001]}),
    "bandwidth": ("a wider rectangle window ε", {}, {},
                  {"jumprelu_bandwidth": [0.3, 1.0, 2.0],
                   "l0_coefficient": [1.0, 0.1, 1e-2, 1e-3, 3e-4]}),
    "init_threshold": ("a larger initial threshold θ₀, with and without the pre-activation loss",
                       {}, {}, {"jumprelu_init_threshold": [0.1, 0.3],
                                "l0_coefficient": [1e-2, 1e-3],
                                "pre_act_loss_coefficient": [0.0, 1e-2]}),
    "wide_init": ("ε = 1 and a larger θ₀ (θ starts near where it ends)",
                  {"jumprelu_bandwidth": 1.0}, {},
                  {"jumprelu_init_threshold": [0.1, 0.3], "l0_coefficient": [1e-3, 3e-4]}),
    "lr": ("a larger learning rate (Adam moves log θ by about lr per step)", {}, {},
           {"lr": [3e-3, 1e-2], "l0_coefficient": [1e-2, 1e-3]}),
    "warmup": ("sparsity_warmup_steps = 1000", {"sparsity_warmup_steps": 1000}, {},
               {"jumprelu_bandwidth": [0.05, 1.0], "l0_coefficient": [1e-2, 1e-3]}),
    "tanh": ("the tanh sparsity loss (gradient through f to the encoder)",
             {"jumprelu_sparsity_loss_mode": "tanh"}, {},
             {"l0_coefficient": [1.0, 0.1, 0.05, 0.03, 0.01]}),
    "normalized": ("normalize_activations scales x by √d_in / E‖x‖ ≈ 4.6: ε × 4.6, "
                   "λ × 4.6² = 21", {"normalize_activations": "expected_average_only_in"}, {},
                   {"jumprelu_bandwidth": [1.0, 4.6], "l0_coefficient": [1e-3, 2e-2]}),
    "step_recommended": ("step loss, ε = 1, l0_coefficient 1e-3: three seeds",
                         {"jumprelu_bandwidth": 1.0, "l0_coefficient": 1e-3},
                         {"snapshot_steps": SNAPSHOTS}, {"seed": [0, 1, 2]}),
    "tanh_recommended": ("tanh loss, l0_coefficient 0.05: three seeds",
                         {"jumprelu_sparsity_loss_mode": "tanh", "l0_coefficient": 0.05}, {},
                         {"seed": [0, 1, 2]}),
    "topk_reference": ("reference: topk, k = 5", {"architecture": "topk", "k": 5}, {},
                       {"seed": [0]}),
}


def fresh_samples() -> np.ndarray:
    return np.asarray(DATA.sample(jax.random.key(EVAL_KEY), SAMPLES))


def measure(sae: tm.SAE, x: np.ndarray, cfg: tm.SAEConfig) -> dict[str, float]:
    """The table's measures of one SAE on samples x (n, d_in); see the module docstring."""
    f = np.asarray(sae.encode(x))
    x_hat = np.asarray(sae.decode(f))
    out = {
        "L0": float((f > 0).sum(-1).mean()),
        "alive": int((f > 0).any(0).sum()),
        "FVU": float(((x_hat - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()),
        "MCC": float(mcc(sae.W_dec, DATA.dictionary)),
        "b_enc": float(np.median(sae.b_enc)),
    }
    if sae.architecture == "jumprelu":
        pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        theta = sae.threshold
        out["theta"] = float(np.median(theta))
        out["window"] = float((np.abs(pre - theta) < cfg.jumprelu_bandwidth / 2).mean())
    return out


def points(ds, grid: dict):
    """(the grid values, one point's Dataset) for every point of the grid, in order."""
    dims = list(grid)
    for index in itertools.product(*(range(ds.sizes[d]) for d in dims)):
        one = ds.isel(dict(zip(dims, index)))
        yield {d: one[d].item() for d in dims}, one


def point_config(cfg: tm.SAEConfig, values: dict) -> tm.SAEConfig:
    """cfg with a point's swept SAE values (the bandwidth the window is measured with)."""
    fields = {k: v for k, v in values.items() if k in {f.name for f in dataclasses.fields(cfg)}}
    return dataclasses.replace(cfg, **fields)


def fmt(m: dict) -> str:
    theta = f"{m['theta']:.3g}" if "theta" in m else "—"
    window = f"{100 * m['window']:.2g} %" if "window" in m else "—"
    return (f"{m['L0']:.1f} | {m['FVU']:.3f} | {m['MCC']:.3f} | {m['alive']} | {theta} | "
            f"{m['b_enc']:.3g} | {window}")


def run_row(name: str, out: Path, x: np.ndarray) -> tuple[list[str], list[str]]:
    """The row's table lines, and its snapshot lines (if it keeps snapshots)."""
    what, sae_changes, train_changes, grid = ROWS[name]
    cfg = dataclasses.replace(SAE, **sae_changes)
    train = dataclasses.replace(TRAIN, **train_changes)
    ds = tm.sweep(cfg, grid, train, data=DATA, out=str(out / name))
    lines, snaps = [], []
    fixed = ", ".join(f"{k} = {v}" for k, v in sae_changes.items()) or "defaults"
    for values, one in points(ds, grid):
        setting = ", ".join(f"{k} = {v:g}" for k, v in values.items())
        point_cfg = point_config(cfg, values)
        m = measure(tm.SAE.from_results(one), x, point_cfg)
        lines.append(f"| {name} | {fixed} | {setting} | {fmt(m)} |")
        for step in train.snapshot_steps:
            sae = tm.SAE.from_results(one)
            params = {k: one[f"{k}_snapshot"].sel(snapshot_step=step).values for k in sae.params}
            m = measure(tm.SAE(sae.config, params), x, point_cfg)
            snaps.append(f"| {name} | {setting} | {step} | {fmt(m)} |")
    return lines, snaps


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=list(ROWS), help="rows to run")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--out", default="results/jumprelu_sparsity", help="results folder")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, sae_changes, train_changes, grid) in ROWS.items():
            print(f"{name:17s} {what}; {sae_changes or ''} {train_changes or ''} grid={grid}")
        return
    out = Path(args.out)
    x = fresh_samples()
    norms = np.linalg.norm(x, axis=1)
    true_l0 = (np.asarray(DATA.coefficients(jax.random.key(EVAL_KEY), SAMPLES)) > 0).sum(1)
    header = [
        f"data: {DATA}; d_sae {SAE.d_sae}; {TRAIN.steps} steps of {TRAIN.batch_size}; measured on "
        f"{SAMPLES} fresh samples",
        f"‖x‖: mean {norms.mean():.3f}; E‖x − x̄‖² (the MSE of predicting the mean) "
        f"{((x - x.mean(0)) ** 2).sum(1).mean():.3f}; true L0 (active features) per sample: "
        f"{true_l0.mean():.2f}",
        "",
        "| row | fixed | grid point | L0 (of 96) | FVU | MCC | alive | θ (median) | b_enc (median)"
        " | window (|π − θ| < ε/2) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines, snaps = [], []
    for name in args.only or list(ROWS):
        start = time.perf_counter()
        row, snap = run_row(name, out, x)
        lines += row
        snaps += snap
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = header + lines
    if snaps:
        table += ["", "Snapshots (the same measures with the weights at a step):", "",
                  "| row | grid point | step | L0 | FVU | MCC | alive | θ | b_enc | window |",
                  "|---|---|---|---|---|---|---|---|---|---|", *snaps]
    text = "\n".join(table)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
