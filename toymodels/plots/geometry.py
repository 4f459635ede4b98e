"""The geometry of superposition: each feature's dimensionality D_i against sparsity (TMS Fig. 8).

As features get sparser, D_i of many features sticks to a few fractions — 1 (a dimension of its
own), 3/4 (tetrahedron), 2/3 (triangle), 1/2 (antipodal pair), 2/5 (pentagon), 3/8 (square
antiprism) — while D* = m / ‖W‖²_F falls smoothly between them. The right panel counts the
features on each line.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

#: Models with at least this many features get the figure (few features make few points).
MIN_FEATURES = 50
#: How far D_i may sit from a fraction line to count as on it.
TOLERANCE = 0.02


def problems(ds: xr.Dataset) -> list[str]:
    return _data.problems(ds, kinds=["relu_output"], dims=["feature_probability"],
                          n_features=(MIN_FEATURES, None), variables=["W"])


@style.styled
def feature_geometry(ds: xr.Dataset) -> Figure:
    """D_i of every feature and D* against 1/(1 − S), and the count of features on each line.

    Args:
      ds: a relu_output sweep with at least 50 features and a `feature_probability` grid dim.

    Returns:
      The figure.
    """
    _data.require(problems(ds), "feature_geometry")
    model = _data.model_config(ds)
    best = _data.sorted_by(_data.lowest_loss(ds), "feature_probability", descending=False)
    W = best["W"].transpose("feature_probability", "feature", "hidden")
    D = analysis.feature_dimensionality(W)
    d_star = analysis.dimensions_per_feature(W).values
    lines = {name: value for name, (value, _, _) in style.FRACTION_STYLE.items()}
    counts = analysis.fraction_line_counts(D, tol=TOLERANCE, lines=lines).values
    x = 1.0 / best["feature_probability"].values  # 1 / (1 − S)

    fig = style.new_figure(height=3.6)
    d_ax, n_ax = fig.subplots(1, 2, width_ratios=[1.35, 1])
    jitter = np.random.default_rng(0).uniform(-0.04, 0.04, size=D.shape)  # spread in log x
    d_ax.scatter((x[:, None] * 10**jitter).ravel(), D.values.ravel(), s=4, alpha=0.25,
                 color="#333333", lw=0, label=style.LABEL_D + ", one point per feature")
    d_ax.plot(x, np.where(np.isfinite(d_star), d_star, np.nan), lw=1.8,
              color=style.KIND_COLORS["relu_output"], label=style.LABEL_DSTAR)
    values = [v for v, _, _ in style.FRACTION_STYLE.values()]
    for k, (value, label, color) in enumerate(style.FRACTION_STYLE.values()):
        d_ax.axhline(value, color=color, lw=0.8, ls="--", alpha=0.8, zorder=0)
        # Labels of lines closer than a label's height (2/5 and 3/8) move apart.
        near_below = k + 1 < len(values) and value - values[k + 1] < 0.05
        near_above = k > 0 and values[k - 1] - value < 0.05
        nudge = 4 if near_below else -4 if near_above else 0
        d_ax.annotate(label, (1.0, value), xycoords=("axes fraction", "data"), xytext=(3, nudge),
                      textcoords="offset points", va="center", fontsize=8, color=color)
    d_ax.set_xscale("log")
    d_ax.set_ylim(-0.02, 1.08)
    d_ax.set_xlabel("1 / (1 − S)  (sparser →)")
    d_ax.set_ylabel("feature dimensionality " + style.LABEL_D)
    d_ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, frameon=False,
                markerscale=3)

    for k, (value, label, color) in enumerate(style.FRACTION_STYLE.values()):
        n_ax.plot(x, counts[:, k], color=color, marker="o", ms=3, lw=1.4, label=label)
    n_ax.set_xscale("log")
    n_ax.set_ylim(0, None)
    n_ax.set_xlabel("1 / (1 − S)  (sparser →)")
    n_ax.set_ylabel(f"features with $|D_i - f| \\leq {TOLERANCE}$")
    n_ax.set_title("Features on each fraction line f")
    n_ax.legend(title="f", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"Feature geometry: ReLU output, {_data.describe_model(model)}"
                 f"{_data.seed_note(ds)}")
    return fig
