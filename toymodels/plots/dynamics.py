"""How features form over training, from parameter snapshots.

Per feature, over the snapshot steps: its dimensionality D_i, its norm ‖W_i‖, and the cosine of
its direction with its final direction (`toymodels.analysis.direction_drift`). One row per
feature density (at most `MAX_ROWS`), the lowest-loss seed of each.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

#: Most feature densities shown (rows); more are subsampled evenly.
MAX_ROWS = 3
KINDS = ("relu_output", "linear", "hidden_relu", "abs")


def problems(ds: xr.Dataset) -> list[str]:
    found = _data.problems(ds, kinds=KINDS, optional_dims=["feature_probability"],
                           variables=[_data.embedding_names(snapshot=True)])
    if not found and ds.sizes.get("snapshot_step", 0) < 2:
        found.append("needs at least 2 snapshot steps")
    return found


def _step_axis(ax, steps: np.ndarray) -> None:
    positive = steps[steps > 0]
    if len(positive) and positive.max() / positive.min() >= 100:
        # Log-spaced snapshots: symlog keeps step 0 on the axis.
        ax.set_xscale("symlog", linthresh=positive.min())
    ax.set_xlabel("training step")


@style.styled
def training_dynamics(ds: xr.Dataset) -> Figure:
    """D_i, ‖W_i‖ and cos(W_i(t), W_i(T)) over training, one line per feature.

    Args:
      ds: a sweep with snapshots (`TrainConfig(snapshot_steps=...)`), over at most a
        `feature_probability` and a `seed` grid dim.

    Returns:
      The figure.
    """
    _data.require(problems(ds), "training_dynamics")
    model = _data.model_config(ds)
    best = _data.lowest_loss(ds)
    if "feature_probability" in best.dims:
        best = _data.sorted_by(best, "feature_probability")
        size = best.sizes["feature_probability"]
        if size > MAX_ROWS:
            best = best.isel(feature_probability=np.unique(
                np.round(np.linspace(0, size - 1, MAX_ROWS)).astype(int)))
    elif "feature_probability" in best.coords:  # a single-valued grid dim, dropped
        best = best.expand_dims("feature_probability")
    else:
        best = best.expand_dims(feature_probability=[np.mean(model["feature_probability"])])
    W = _data.embedding(best, snapshot=True).transpose(
        "feature_probability", "snapshot_step", "feature", "hidden")
    steps = best["snapshot_step"].values
    quantities = [
        (analysis.feature_dimensionality(W).values, style.LABEL_D, (-0.03, 1.05)),
        (analysis.feature_norms(W).values, style.LABEL_NORM, None),
        (analysis.direction_drift(W.rename(snapshot_step="step")).values,
         r"$\cos(W_i(t), W_i(\mathrm{end}))$", (-1.05, 1.05)),
    ]
    rows, n = best.sizes["feature_probability"], model["n_features"]
    fig = style.new_figure(height=0.8 + 2.1 * rows)
    axes = fig.subplots(rows, 3, squeeze=False, sharex=True)
    color_norm = Normalize(0, max(n - 1, 1))
    colors = style.mpl.colormaps[style.FEATURE_CMAP](color_norm(np.arange(n)))
    for r, p in enumerate(best["feature_probability"].values):
        for c, (value, label, ylim) in enumerate(quantities):
            ax = axes[r, c]
            for i in range(n):
                ax.plot(steps, value[r, :, i], color=colors[i], lw=1.0, alpha=0.85)
            if ylim:
                ax.set_ylim(*ylim)
            ax.set_ylabel(label)
            _step_axis(ax, steps)
            if r == 0:
                ax.set_title(("Dimensionality", "Norm", "Direction vs final")[c])
            if r < rows - 1:
                ax.set_xlabel("")
        axes[r, 0].annotate(f"1 − S = {style.fmt_density(p)}", (0.02, 0.97),
                            xycoords="axes fraction", va="top", fontsize=8,
                            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.8"))
    fig.colorbar(ScalarMappable(color_norm, style.FEATURE_CMAP), ax=axes.ravel().tolist(),
                 shrink=0.6, label="feature i  (importance order)")
    fig.suptitle(f"Training dynamics: {style.KIND_LABELS[model['kind']]}, "
                 f"{_data.describe_model(model)}{_data.seed_note(ds)}")
    return fig
