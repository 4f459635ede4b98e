"""How many features a model represents as they get sparser, ReLU output against linear.

A linear model represents only its d_hidden most important features at any sparsity; the ReLU
output model represents more and more as features get sparser, which is superposition (Elhage et
al. 2022, "Superposition as features get sparser"). The right panel shows the same through the
dimensions per feature D* = d_hidden / ‖W‖²_F.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

#: A feature counts as represented when ‖W_i‖ exceeds this (TMS).
THRESHOLD = 0.5


def problems(ds: xr.Dataset, kind: str) -> list[str]:
    return _data.problems(ds, kinds=[kind], dims=["feature_probability"], variables=["W"])


def pair_problems(relu: xr.Dataset, linear: xr.Dataset) -> list[str]:
    """What keeps (relu, linear) from feeding the figure together."""
    found = [f"relu: {p}" for p in problems(relu, "relu_output")]
    found += [f"linear: {p}" for p in problems(linear, "linear")]
    if not found:
        a, b = _data.model_config(relu), _data.model_config(linear)
        shape = lambda m: (m["n_features"], m["d_hidden"])  # noqa: E731
        if shape(a) != shape(b):
            found.append(f"(n_features, d_hidden) differ: {shape(a)} for relu, {shape(b)} for "
                         "linear")
    return found


def _plot_kind(axes, ds: xr.Dataset, kind: str) -> None:
    ds = _data.squeeze_grid(ds, ["feature_probability", _data.SEED])
    color, label = style.KIND_COLORS[kind], style.KIND_LABELS[kind]
    p = ds["feature_probability"]
    count = analysis.n_represented(ds["W"], threshold=THRESHOLD).astype(float)
    d_star = analysis.dimensions_per_feature(ds["W"])
    for ax, value in zip(axes, (count, d_star)):
        if "diverged" in ds:
            value = value.where(~ds["diverged"])
        value = value.where(np.isfinite(value))  # D* of W = 0 is +inf
        if _data.SEED in value.dims:
            for s in range(value.sizes[_data.SEED]):
                ax.scatter(p, value.isel({_data.SEED: s}), s=12, color=color, alpha=0.3, lw=0)
            mean = value.mean(_data.SEED)
        else:
            mean = value
        order = np.argsort(p.values)
        ax.plot(p.values[order], mean.values[order], color=color, lw=1.8, marker="o", ms=3,
                label=f"{label} (mean)" if _data.n_seeds(ds) > 1 else label)


@style.styled
def represented_vs_sparsity(relu: xr.Dataset, linear: xr.Dataset) -> Figure:
    """Represented features (‖W_i‖ > 0.5) and D* against feature density, ReLU vs linear.

    Every seed is a faint point; the line is their mean.

    Args:
      relu: a relu_output sweep with a `feature_probability` grid dim.
      linear: a linear sweep of the same n_features and d_hidden, also over feature_probability.

    Returns:
      The figure.
    """
    _data.require(pair_problems(relu, linear), "represented_vs_sparsity")
    model = _data.model_config(relu)
    m = model["d_hidden"]
    fig = style.new_figure(height=3.4)
    count_ax, dstar_ax = fig.subplots(1, 2)
    for ds, kind in ((linear, "linear"), (relu, "relu_output")):
        _plot_kind((count_ax, dstar_ax), ds, kind)
    densities = np.concatenate([relu["feature_probability"].values,
                                linear["feature_probability"].values])
    for ax in (count_ax, dstar_ax):
        style.density_axis(ax, densities)
    count_ax.axhline(m, color="0.3", ls="--", lw=1)
    count_ax.annotate(f"d_hidden = {m}", (0.98, m), xycoords=("axes fraction", "data"),
                      xytext=(0, -4), textcoords="offset points", ha="right", va="top",
                      fontsize=8, color="0.3")
    count_ax.set_ylim(0, model["n_features"] + 0.5)
    count_ax.set_ylabel(f"represented features  ({style.LABEL_NORM} > {THRESHOLD})")
    count_ax.set_title("Features represented")
    count_ax.legend(loc="upper left")
    for y in (1.0, 0.5):
        dstar_ax.axhline(y, color="0.75", ls=":", lw=0.8, zorder=0)
    dstar_ax.set_ylim(0, None)
    dstar_ax.set_ylabel("dimensions per feature  " + style.LABEL_DSTAR)
    dstar_ax.set_title("Dimensions per feature")
    seeds = max(_data.n_seeds(relu), _data.n_seeds(linear))
    fig.suptitle(f"Superposition with sparsity, {_data.describe_model(model)}"
                 + (f"  (points: {seeds} seeds)" if seeds > 1 else ""))
    return fig
