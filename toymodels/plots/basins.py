"""Basins of the phase diagram: how often one seed trains into the theory's optimal phase.

A phase diagram of trained models shows the lowest-loss of a few seeds per point. Given many
seeds per point, this figure shows beside it, at every point, the fraction of seeds whose extra
feature ends in the phase of the theory's lowest-loss configuration
(`toymodels.phase.basin_fraction`): 1 where every seed finds the optimum, 0 where none does, in
between where a competing local minimum catches some of them. The theory is computed on the
dataset's own grid, once per grid (`phase_change.theory_for`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import phase
from toymodels.plots import _data, phase_change, style

#: The fewest seeds per point for a basin map: with fewer, a fraction is too coarse to read.
MIN_SEEDS = 8
#: Basin fraction: none of the seeds (0) through all of them (1).
BASIN_CMAP = "viridis"


def problems(ds: xr.Dataset) -> list[str]:
    found = phase_change.problems(ds)
    if not found and _data.n_seeds(ds) < MIN_SEEDS:
        found.append(f"{_data.n_seeds(ds)} seed(s) per point; a basin map needs a 'seed' grid dim "
                     f"of at least {MIN_SEEDS}")
    return found


def basin_map(ds: xr.Dataset, theory: xr.Dataset | None = None) -> xr.DataArray:
    """(feature_probability, relative_importance) the fraction of seeds in the theory's phase.

    Diverged seeds are left out (NaN where every seed diverged).
    """
    _data.require(problems(ds), "phase_basins")
    if theory is None:
        theory = phase_change.theory_for(ds)
    return phase.basin_fraction(phase_change.seed_phases(ds), theory["phase"], dim=_data.SEED)


def _fraction_panel(ax, fraction: xr.DataArray):
    fraction = fraction.transpose("feature_probability", "relative_importance")
    r, p = fraction["relative_importance"].values, fraction["feature_probability"].values
    rows, cols = np.argsort(p), np.argsort(r)
    values = np.ma.masked_invalid(np.asarray(fraction.values, float)[np.ix_(rows, cols)])
    mesh = ax.pcolormesh(style.log_edges(r), style.log_edges(p), values, cmap=BASIN_CMAP,
                         vmin=0, vmax=1, edgecolors="face", lw=0.1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    return mesh


@style.styled
def phase_basins(ds: xr.Dataset, theory: xr.Dataset | None = None) -> Figure:
    """The basin map beside the best-of-seeds phase diagram and the theory.

    Args:
      ds: a relu_output sweep of 2 features in 1 dim (or 3 in 2) over `feature_probability`,
        `extra_importance` and at least `MIN_SEEDS` seeds.
      theory: `phase_change.theory_for(ds)`, if already computed; computed here otherwise.

    Returns:
      The figure; the best-of-seeds agreement and the mean basin fraction are in its title. The
      best seed is the one of lowest exact loss (`phase_change.exact_losses`): at sparse
      densities the recorded training loss is too noisy to rank seeds whose losses differ by
      a few per cent.
    """
    _data.require(problems(ds), "phase_basins")
    model = _data.model_config(ds)
    if theory is None:
        theory = phase_change.theory_for(ds)
    predicted = theory["phase"]
    fraction = basin_map(ds, theory)
    best = phase_change.empirical_phase(ds, exact=True)
    agree = phase_change.agreement_of(best, predicted)
    n_seeds = _data.n_seeds(ds)

    fig = style.new_figure(height=3.9)
    basin_ax, best_ax, theory_ax = fig.subplots(1, 3, sharex=True, sharey=True)
    mesh = _fraction_panel(basin_ax, fraction)
    basin_ax.set_title(f"Seeds in the theory's phase\n(fraction of {n_seeds})")
    phase_change.panel(best_ax, best, f"Trained: lowest exact loss\nof {n_seeds} seeds")
    phase_change.panel(theory_ax, predicted, "Theory: the optimal\nconfiguration's phase")
    phase_change.mark_disagreements((best_ax, theory_ax), best, predicted)
    basin_ax.set_ylabel("feature density 1 − S  (denser ↑)")
    # One x label for the three panels: they share the axis, and three would overlap.
    for ax in (basin_ax, theory_ax):
        ax.set_xlabel("")
    fig.colorbar(mesh, ax=basin_ax, location="right", pad=0.02, shrink=0.9,
                 label="fraction of seeds")
    style.phase_legend(fig, loc="outside lower center", ncols=4,
                       extra=theory_ax.get_legend_handles_labels()[0])
    n, m = model["n_features"], model["d_hidden"]
    reached = float((fraction > 0).mean())
    fig.suptitle(f"Basins, {n} features in {m} dim{'s' if m > 1 else ''}, {n_seeds} seeds per "
                 f"point: best of {n_seeds} agrees with theory at {agree:.1%} of "
                 f"{predicted.size} points;\na seed reaches the theory's phase with probability "
                 f"{float(fraction.mean()):.2f} on average, some seed does at {reached:.1%}",
                 fontsize=10)
    return fig
