"""Superposition as a phase change: the empirical phase diagram beside the theoretical one.

For n = 2 features in m = 1 dimension (or 3 in 2), the last, "extra" feature's relative importance
and every feature's density are swept; each point is classified by the phase of the extra
feature in its lowest-loss trained model (`toymodels.phase.classify_phase`), and compared with the
phase of the configuration of lowest exact loss at the same (importance, density)
(`toymodels.phase.theoretical_phase_diagram`), as in Elhage et al. (2022), Fig. "phase change".
"""

from __future__ import annotations

import functools

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


def _codes(ds: xr.Dataset, model: dict) -> xr.DataArray:
    """Phase codes of every model in `ds`, NaN where it diverged, on the relative-importance axis."""
    code = phase.classify_phase(ds["W"], ds["b"]).astype(float)
    if "diverged" in ds:
        code = code.where(~ds["diverged"])
    relative = code["extra_importance"].values / _base_importance(model)
    code = code.rename(extra_importance="relative_importance")
    return code.assign_coords(relative_importance=relative)


def exact_losses(ds: xr.Dataset) -> xr.DataArray:
    """(*grid) the exact expected loss of every trained model (`toymodels.phase.exact_loss`).

    The training loss a sweep records is a mean over the last log_every batches, whose error
    grows as features get sparser (a median of 0.2 % at 1 − S = 1, 19–33 % below 1 − S = 0.02 on
    the 3 → 2 grid); the exact loss is what the theory compares. NaN where a model diverged.
    """
    _data.require(problems(ds), "exact_losses")
    model = _data.model_config(ds)
    fields = {k: v for k, v in model.items() if k in ToyModelConfig.__dataclass_fields__}
    importance = xr.DataArray(
        [ToyModelConfig(**(fields | {"extra_importance": float(r)})).importances()
         for r in ds["extra_importance"].values],
        dims=("extra_importance", "feature"), coords={"extra_importance": ds["extra_importance"]})
    loss = phase.exact_loss(ds["W"].astype(np.float64), ds["b"].astype(np.float64),
                            ds["feature_probability"], importance)
    return loss.where(~ds["diverged"]) if "diverged" in ds else loss


def empirical_phase(ds: xr.Dataset, exact: bool = False) -> xr.DataArray:
    """Phase codes (feature_probability, relative_importance) of the lowest-loss seed per point.

    exact: pick the seed by its exact expected loss (`exact_losses`) rather than its recorded
    training loss. NaN where every seed at the point diverged.
    """
    if exact and _data.SEED in _data.grid_dims(ds):
        ds = ds.isel({_data.SEED: exact_losses(ds).fillna(np.inf).argmin(_data.SEED)})
    return _codes(_data.lowest_loss(ds), _data.model_config(ds)).transpose(
        "feature_probability", "relative_importance")


def seed_phases(ds: xr.Dataset) -> xr.DataArray:
    """Phase codes (feature_probability, relative_importance, seed) of every trained model.

    NaN where a model diverged; a dataset without a seed dim gets a seed dim of length 1.
    """
    ds = _data.squeeze_grid(ds, keep=(*DIMS, _data.SEED))
    if _data.SEED not in _data.grid_dims(ds):
        ds = ds.expand_dims({_data.SEED: [0]})
    return _codes(ds, _data.model_config(ds)).transpose(
        "feature_probability", "relative_importance", _data.SEED)


def theory_for(ds: xr.Dataset, **options) -> xr.Dataset:
    """`theoretical_phase_diagram` on exactly the dataset's grid of densities and importances.

    Computed once per grid and options in a process (the 3 → 2 theory takes minutes), so that
    the figures of two sweeps over the same grid share it.
    """
    _data.require(problems(ds), "phase_diagram")
    model = _data.model_config(ds)
    relative = ds["extra_importance"].values / _base_importance(model)
    return _theory(tuple(relative.tolist()), tuple(ds["feature_probability"].values.tolist()),
                   model["n_features"], model["d_hidden"], tuple(sorted(options.items())))


@functools.lru_cache(maxsize=8)
def _theory(relative, densities, n_features, d_hidden, options):
    return phase.theoretical_phase_diagram(np.asarray(relative), np.asarray(densities),
                                           n_features, d_hidden, **dict(options))


def panel(ax, codes: xr.DataArray, title: str):
    """Draw phase codes (feature_probability, relative_importance) as a diagram on `ax`."""
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


def mark_disagreements(axes, empirical: xr.DataArray, predicted: xr.DataArray) -> None:
    """An x on each of `axes` at every point where the two diagrams' codes differ."""
    grid = ("feature_probability", "relative_importance")
    emp, pred = empirical.transpose(*grid), predicted.transpose(*grid)
    rows, cols = np.nonzero(emp.values != pred.values)
    if len(rows):
        for ax in axes:
            ax.scatter(emp["relative_importance"].values[cols],
                       emp["feature_probability"].values[rows],
                       marker="x", s=14, lw=0.9, color="black", label="trained ≠ theory")


def agreement_of(empirical: xr.DataArray, predicted: xr.DataArray) -> float:
    """The fraction of points where the trained code equals the theory's (NaN never agrees)."""
    valid = empirical.notnull()
    if not valid.any():
        return float("nan")
    return phase.agreement(empirical.where(valid, -1).astype(int), predicted)


@style.styled
def phase_diagram(ds: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """Empirical phase beside the theory on the same grid.

    At every point the trained model shown is the seed of lowest *exact* expected loss
    (`exact_losses`): the recorded training loss is a mean over the last noisy batches, off by
    up to a third at the sparsest densities, enough to rank two seeds wrongly.

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
    empirical = empirical_phase(ds, exact=True)
    if theory is None:
        theory = theory_for(ds)
    predicted = theory["phase"]
    agree = agreement_of(empirical, predicted)
    fig = style.new_figure(height=3.9)
    left, right = fig.subplots(1, 2, sharex=True, sharey=True)
    n = _data.n_seeds(ds)
    panel(left, empirical, f"Trained: lowest exact loss of {n} seeds" if n > 1 else "Trained")
    panel(right, predicted, "Theory: lowest exact loss")
    mark_disagreements((left, right), empirical, predicted)
    left.set_ylabel("feature density 1 − S  (denser ↑)")
    style.phase_legend(fig, loc="outside lower center", ncols=4,
                       extra=right.get_legend_handles_labels()[0])
    n, m = model["n_features"], model["d_hidden"]
    fig.suptitle(f"Phase diagram, {n} features in {m} dim{'s' if m > 1 else ''}: "
                 f"trained and theory agree at {agree:.1%} of {predicted.size} points")
    return fig
