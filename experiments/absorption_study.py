"""Which SAE absorbs (issue 14, part 4): every architecture on three feature trees, over a grid of
sparsity settings and seeds, measured against the known features.

    python experiments/absorption_study.py                 # every preset (50 min on a busy 2-core machine)
    python experiments/absorption_study.py --only chanin_absorption matryoshka_tree
    python experiments/absorption_study.py --seeds 1 --steps 1000   # a quick look

The data are `tm.GroundTruth.preset(name)`: `chanin_absorption` (Chanin et al.: 4 orthogonal
features in 50 dims, a parent and 3 children), `matryoshka_tree` (Nabeshima: 20 in 20 dims, 3
parents with 3 exclusive children each, 8 independent) and `tree_64` (64 in 128 dims, three
levels). Each SAE has one latent per true feature (d_sae = n_features), so that absorption, not
width, decides whether a feature keeps its latent. Variants (the sparsity knob each sweeps):

- standard and gated (l1_coefficient), jumprelu with the tanh sparsity loss (l0_coefficient:
  the step loss stays dense on data this small, see experiments/jumprelu_sparsity.py);
- topk, batchtopk and matryoshka_batchtopk (k): the Matryoshka SAE twice, with prefix widths at
  the tree's levels (parents first: the best case, which needs the tree) and with widths halving
  from d_sae (d_sae/16 … d_sae, SAEBench's kind of choice, which does not).

Every variant trains `STEPS` steps of 1024 samples with Adam at lr 3e-3, the last 20 % decaying
linearly, the same streams for every variant (a GroundTruth stream per seed). Each SAE is then
measured by `tm.analysis.evaluate_on_truth` on 16,384 fresh samples: L0, FVU, MCC, the dead
fraction, absorption (the firing view, mean over children), the share of children absorbed
(> 1/2) and the child latents' decoder cosine with their parent.

SAEBench's advice is to compare at matched L0. The table gives each variant at its setting
whose mean L0 is nearest the truth's own L0; the figure gives every setting. The TopK family
cannot go below L0 = 1 (k ≥ 1), which is above the truth's L0 on `chanin_absorption` (0.36).

Sweeps are kept under results/absorption_study/<preset>/<variant>/ and resumed; the report
(report.nc), the table (table.md) and figures/absorption_study.png are written at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr

import toymodels as tm
from toymodels.plots.absorption import absorption_study

PRESETS = ("chanin_absorption", "matryoshka_tree", "tree_64")
STEPS = 5000
TRAIN = tm.TrainConfig(steps=STEPS, batch_size=1024, lr=3e-3, schedule="warmup_decay",
                       decay_steps=STEPS // 5, log_every=STEPS // 10)
SEEDS = (0, 1, 2)
#: the prefix widths at each preset's tree levels (parents, then children, …).
TREE_WIDTHS = {"chanin_absorption": (1, 4), "matryoshka_tree": (3, 12, 20),
               "tree_64": (4, 16, 40, 64)}
#: the k of the TopK family per preset, around the truth's L0 (0.36, 1.11, 2.93).
KS = {"chanin_absorption": [1, 2], "matryoshka_tree": [1, 2, 3], "tree_64": [2, 3, 4, 6]}


def halving_widths(d_sae: int) -> tuple[int, ...]:
    """d_sae/16, d_sae/8, …, d_sae rounded, at least 1, repeats dropped."""
    return tuple(sorted({max(1, round(d_sae / 2 ** j)) for j in range(5)}))


def variants(preset: str, n_features: int) -> dict[str, tuple[dict, str, list]]:
    """variant -> (SAEConfig fields, the swept sparsity field, its values)."""
    ks = KS[preset]
    return {
        "standard": ({"architecture": "standard"}, "l1_coefficient", [0.01, 0.03, 0.1, 0.3]),
        "gated": ({"architecture": "gated"}, "l1_coefficient", [0.03, 0.1, 0.3, 1.0]),
        "jumprelu": ({"architecture": "jumprelu", "jumprelu_sparsity_loss_mode": "tanh"},
                     "l0_coefficient", [0.003, 0.01, 0.03, 0.1]),
        "topk": ({"architecture": "topk"}, "k", ks),
        "batchtopk": ({"architecture": "batchtopk"}, "k", ks),
        "matryoshka (tree widths)": ({"architecture": "matryoshka_batchtopk",
                                      "matryoshka_widths": TREE_WIDTHS[preset]}, "k", ks),
        "matryoshka (halving widths)": ({"architecture": "matryoshka_batchtopk",
                                         "matryoshka_widths": halving_widths(n_features)},
                                        "k", ks),
    }


def slug(variant: str) -> str:
    return variant.replace(" (", "_").replace(" widths)", "").replace(" ", "_")


def run(presets, train: tm.TrainConfig, seeds, out: Path, progress: bool) -> xr.Dataset:
    """Every sweep of the study, measured: the report over (preset, variant, setting, seed)."""
    tables = {p: variants(p, tm.GroundTruth.preset(p).n_features) for p in presets}
    names = list(next(iter(tables.values())))
    n_settings = max(len(values) for t in tables.values() for _, _, values in t.values())
    report: dict[str, np.ndarray] = {}
    setting_value = np.full((len(presets), len(names), n_settings), np.nan)
    true_l0 = np.zeros(len(presets))
    models = 0
    for i, preset in enumerate(presets):
        truth = tm.GroundTruth.preset(preset, seed=0)
        for j, name in enumerate(names):
            fields, knob, values = tables[preset][name]
            # the swept field's first value stands in the config (k must be set to be swept)
            sae = tm.SAEConfig(d_in=truth.d_in, d_sae=truth.n_features,
                               **(fields | {knob: values[0]}))
            start = time.perf_counter()
            ds = tm.sweep(sae, {knob: values, "seed": list(seeds)}, train, data=truth,
                          out=str(out / preset / slug(name)), progress=progress)
            measured = tm.analysis.evaluate_on_truth(ds, truth).transpose(knob, "seed")
            models += len(values) * len(seeds)
            true_l0[i] = measured.attrs["true_l0"]
            setting_value[i, j, :len(values)] = values
            for var in measured.data_vars:
                report.setdefault(var, np.full((len(presets), len(names), n_settings,
                                                len(seeds)), np.nan))
                report[var][i, j, :len(values)] = measured[var].values
            print(f"{preset} {name}: {len(values) * len(seeds)} SAEs, "
                  f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    dims = ("preset", "variant", "setting", "seed")
    ds = xr.Dataset({k: (dims, v) for k, v in report.items()},
                    coords={"preset": list(presets), "variant": names,
                            "setting": np.arange(n_settings), "seed": list(seeds),
                            "setting_value": (dims[:3], setting_value),
                            "true_l0": ("preset", true_l0),
                            "knob": ("variant", [tables[presets[0]][n][1] for n in names])})
    ds.attrs.update(steps=train.steps, batch_size=1024, models=models,
                    sae_steps=models * train.steps)
    return ds


def matched(report: xr.Dataset) -> list[dict]:
    """Per (preset, variant), the setting whose mean L0 is nearest the truth's (in log L0)."""
    rows = []
    for preset in report["preset"].values:
        target = float(report["true_l0"].sel(preset=preset))
        for variant in report["variant"].values:
            one = report.sel(preset=preset, variant=variant)
            l0 = one["l0"].mean("seed").values
            gap = np.where(np.isfinite(l0) & (l0 > 0), np.abs(np.log(np.maximum(l0, 1e-9)
                                                                     / target)), np.inf)
            s = int(np.argmin(gap))
            point = one.isel(setting=s)
            rows.append({"preset": str(preset), "variant": str(variant),
                         "knob": str(point["knob"].values),
                         "value": float(point["setting_value"]),
                         "true_l0": target,
                         **{k: (float(point[k].mean()), float(point[k].std()))
                            for k in report.data_vars}})
    return rows


def table(rows: list[dict], report: xr.Dataset) -> str:
    head = (f"{report.attrs['models']} SAEs × {report.attrs['steps']} steps of "
            f"{report.attrs['batch_size']} ({report.attrs['sae_steps']:,} SAE-steps); each variant "
            f"at its setting nearest the truth's L0; mean ± sd over {report.sizes['seed']} seeds")
    lines = [head, "",
             "| preset (truth's L0) | variant | setting | L0 | FVU | MCC | dead | absorption | "
             "absorbed children | child decoder · parent |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def pm(k, digits=3):
            m, s = r[k]
            return f"{m:.{digits}f} ± {s:.{digits}f}"
        lines.append(
            f"| {r['preset']} ({r['true_l0']:.2f}) | {r['variant']} | {r['knob']} = "
            f"{r['value']:g} | {pm('l0', 2)} | {pm('fvu')} | {pm('mcc')} | "
            f"{r['dead_fraction'][0]:.2f} | {pm('absorption')} | "
            f"{r['absorbed_children'][0]:.2f} | {pm('decoder_parent_cos')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=PRESETS, help="presets to run")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds per setting (3)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"training steps ({STEPS})")
    parser.add_argument("--out", default="results/absorption_study", help="results folder")
    parser.add_argument("--figures", default="figures", help="where the figure goes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.steps < 10:
        parser.error("--seeds must be ≥ 1 and --steps ≥ 10")
    train = TRAIN if args.steps == STEPS else dataclasses.replace(
        TRAIN, steps=args.steps, decay_steps=args.steps // 5, log_every=args.steps // 10)
    out = Path(args.out)
    start = time.perf_counter()
    report = run(args.only or PRESETS, train, range(args.seeds), out, not args.no_progress)
    elapsed = time.perf_counter() - start
    text = table(matched(report), report) + f"\n\n(run in {elapsed:.0f} s)"
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    report.to_netcdf(out / "report.nc")
    (out / "table.md").write_text(text + "\n")
    Path(args.figures).mkdir(parents=True, exist_ok=True)
    path = Path(args.figures) / "absorption_study.png"
    absorption_study(report).savefig(path, dpi=150)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
