"""Superposition as a phase change: the empirical phase diagram beside the theoretical one.

For n = 2 features in m = 1 dimension (or 3 in 2), the last, "extra" feature's relative importance
and every feature's density are swept; each point is classified by the phase of the extra
feature in its lowest-loss trained model (`toymodels.phase.classify_phase`), and compared with the
phase of the configuration of lowest exact loss at the same (importance, density)
(`toymodels.phase.theoretical_phase_diagram`), as in Elhage et al. (2022), Fig. "phase change".
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import phase
from toymodels.config import ToyModelConfig
from toymodels.plots import _data, style

#: (n_features, d_hidden) the theory covers.
SHAPES = ((2, 1), (3, 2))
DIMS = ("feature_probability", "extra_importance")


def problems(ds: xr.Dataset) -> list[str]:
    found = _data.problems(ds, kinds=["relu_output"], dims=DIMS, variables=["W", "b"])
    if found:
        return found
    model = _data.model_config(ds)
    shape = (model["n_features"], model["d_hidden"])
    if shape not in SHAPES:
        found.append(f"(n_features, d_hidden) = {shape}; the theory covers {list(SHAPES)}")
    grid = _data.grid_dims(ds)
    if "importance" in grid or "importance_decay" in grid:
        found.append("the other features' importance is swept; the theory fixes it")
    elif _base_importance(model) is None:
        found.append("the non-extra features have unequal importances; the theory gives them "
                     "one importance")
    return found


def _base_importance(model: dict) -> float | None:
    """The importance every non-extra feature shares, or None if they differ."""
    fields = {k: v for k, v in model.items() if k in ToyModelConfig.__dataclass_fields__}
    fields["extra_importance"] = None
    imp = ToyModelConfig(**fields).importances()[:-1]
    return float(imp[0]) if np.allclose(imp, imp[0]) and imp[0] > 0 else None


def empirical_phase(ds: xr.Dataset) -> xr.DataArray:
    """Phase codes (feature_probability, relative_importance) of the lowest-loss seed per point.

    NaN where every seed at the point diverged.
    """
    model = _data.model_config(ds)
    best = _data.lowest_loss(ds)
    code = phase.classify_phase(best["W"], best["b"]).astype(float)
    if "diverged" in best:
        code = code.where(~best["diverged"])
    code = code.transpose(*DIMS)
    relative = code["extra_importance"].values / _base_importance(model)
    code = code.rename(extra_importance="relative_importance")
    return code.assign_coords(relative_importance=relative)


def theory_for(ds: xr.Dataset, **options) -> xr.Dataset:
    """`theoretical_phase_diagram` on exactly the dataset's grid of densities and importances."""
    _data.require(problems(ds), "phase_diagram")
    model = _data.model_config(ds)
    relative = ds["extra_importance"].values / _base_importance(model)
    return phase.theoretical_phase_diagram(relative, ds["feature_probability"].values,
                                           model["n_features"], model["d_hidden"], **options)


def _panel(ax, codes: xr.DataArray, title: str):
    codes = codes.transpose("feature_probability", "relative_importance")
    r, p = codes["relative_importance"].values, codes["feature_probability"].values
    rows, cols = np.argsort(p), np.argsort(r)
    values = np.ma.masked_invalid(np.asarray(codes.values, float)[np.ix_(rows, cols)])
    mesh = ax.pcolormesh(style.log_edges(r), style.log_edges(p), values, cmap=style.PHASE_CMAP,
                         norm=style.PHASE_NORM, edgecolors="face", lw=0.1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("relative importance of the extra feature")
    ax.set_title(title)
    return mesh


@style.styled
def phase_diagram(ds: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """Empirical phase (lowest-loss seed per point) beside the theory on the same grid.

    Args:
      ds: a relu_output sweep of 2 features in 1 dim (or 3 in 2) over `feature_probability` and
        `extra_importance` (and optionally `seed`).
      theory: `theory_for(ds)`, if already computed (it takes seconds to minutes); computed here
        otherwise. Its grid must be the dataset's.

    Returns:
      The figure; the agreement fraction is in its title.
    """
    _data.require(problems(ds), "phase_diagram")
    model = _data.model_config(ds)
    empirical = empirical_phase(ds)
    if theory is None:
        theory = theory_for(ds)
    predicted = theory["phase"]
    valid = empirical.notnull()
    agree = phase.agreement(empirical.where(valid, -1).astype(int), predicted) if valid.any() \
        else float("nan")
    fig = style.new_figure(height=3.9)
    left, right = fig.subplots(1, 2, sharex=True, sharey=True)
    _panel(left, empirical, f"Trained models{_data.seed_note(ds)}")
    _panel(right, predicted, "Theory: lowest exact loss")
    grid = ("feature_probability", "relative_importance")
    emp, pred = empirical.transpose(*grid), predicted.transpose(*grid)
    rows, cols = np.nonzero(emp.values != pred.values)
    if len(rows):
        for ax in (left, right):
            ax.scatter(emp["relative_importance"].values[cols],
                       emp["feature_probability"].values[rows],
                       marker="x", s=14, lw=0.9, color="black", label="trained ≠ theory")
    left.set_ylabel("feature density 1 − S  (denser ↑)")
    style.phase_legend(fig, loc="outside lower center", ncols=4,
                       extra=right.get_legend_handles_labels()[0])
    n, m = model["n_features"], model["d_hidden"]
    fig.suptitle(f"Phase diagram, {n} features in {m} dim{'s' if m > 1 else ''}: "
                 f"trained and theory agree at {agree:.1%} of {predicted.size} points")
    return fig
