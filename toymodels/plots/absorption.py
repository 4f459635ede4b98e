"""Which SAE absorbs: absorption, reconstruction and recovery against L0, per architecture.

The study (`experiments/absorption_study.py`) trains every architecture on feature trees over a
grid of sparsity settings and several seeds, and measures each SAE with
`tm.analysis.evaluate_on_truth`. Its report is one Dataset over (preset, variant, setting, seed):
`setting` indexes each variant's own sparsity values (k, l1_coefficient or l0_coefficient; NaN
where a variant has fewer), so that variants are compared where they land in L0, as SAEBench
advises, not at equal coefficients.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from toymodels.plots import style

#: The report's dims and the measures the figure draws.
DIMS = ("preset", "variant", "setting", "seed")
PANELS = (("absorption", "absorption (firing view, mean over children)", "linear"),
          ("fvu", "FVU (fraction of variance unexplained)", "log"),
          ("mcc", "MCC (one-to-one recovery)", "linear"))
#: One colour and marker per variant (Okabe–Ito), in the order the study lists them.
COLORS = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#D55E00", "#0072B2", "#999999")
MARKERS = ("o", "v", "^", "s", "D", "P", "X", "*")


def study_problems(report: xr.Dataset) -> list[str]:
    """Why `absorption_study` cannot draw `report` (empty: it can)."""
    found = [f"has no {d!r} dim" for d in DIMS if d not in report.dims]
    found += [f"has no {name!r}" for name in ("l0", *(p[0] for p in PANELS))
              if name not in report]
    if "true_l0" not in report:
        found.append("has no 'true_l0' (per preset)")
    return found


@style.styled
def absorption_study(report: xr.Dataset) -> Figure:
    """Absorption, FVU and MCC against L0: one row per preset, one line per variant through its
    sparsity settings (mean over seeds, the seeds' range as bars), the truth's L0 dashed."""
    found = study_problems(report)
    if found:
        raise ValueError("absorption_study: the report " + "; ".join(found))
    presets, variants = list(report["preset"].values), list(report["variant"].values)
    fig = style.new_figure(height=2.3 * len(presets) + 0.6)
    axes = fig.subplots(len(presets), len(PANELS), squeeze=False, sharex="row")
    for r, (row, preset) in enumerate(zip(axes, presets)):
        one = report.sel(preset=preset)
        true_l0 = float(one["true_l0"])
        for c, (ax, (name, title, scale)) in enumerate(zip(row, PANELS)):
            for i, variant in enumerate(variants):
                v = one.sel(variant=variant)
                l0, y = v["l0"].mean("seed").values, v[name].mean("seed").values
                keep = np.isfinite(l0) & np.isfinite(y)
                if scale == "log":
                    keep &= y > 0
                if not keep.any():
                    continue
                order = np.argsort(l0[keep])
                lo, hi = v[name].min("seed").values[keep], v[name].max("seed").values[keep]
                ax.errorbar(l0[keep][order], y[keep][order],
                            yerr=np.abs(np.stack([y[keep] - lo, hi - y[keep]]))[:, order],
                            color=COLORS[i % len(COLORS)], marker=MARKERS[i % len(MARKERS)],
                            ms=3.5, lw=1.0, elinewidth=0.6, capsize=1.5,
                            label=str(variant) if r == 0 and c == 0 else None)
            ax.axvline(true_l0, color="0.5", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_yscale(scale)
            if scale == "log":
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
            if r == 0:
                ax.set_title(title, fontsize=8.5)
            if r == len(presets) - 1:
                ax.set_xlabel("L0 (latents per input)")
        row[0].set_ylabel(str(preset))
    fig.legend(loc="outside lower center", ncol=min(len(variants), 4), frameon=False)
    fig.suptitle(f"SAE architectures on feature trees: mean of {report.sizes['seed']} seeds at "
                 "each sparsity setting (dashed: the truth's L0)")
    return fig
