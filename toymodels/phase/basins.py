r"""How often training finds the theory's optimum: the size of its basin, point by point.

A phase diagram of trained models keeps the lowest-loss of a few seeds per point, so it says
whether *some* seed found the optimal phase, not how likely one is to. Training many seeds per
point turns that into a number: the fraction of seeds whose weights are in the phase of the
theory's lowest-loss configuration (`toymodels.phase.theoretical_phase_diagram`). Where it is
well below 1 the loss landscape has a competing basin (for 3 features in 2 dims: the extra
feature antipodal to feature 0, a local minimum above the theory's optimum), and a diagram of
the best of few seeds can miss the optimum altogether.

    codes = phase.classify_phase(ds.W, ds.b)                   # (*grid, seed), one per model
    fraction = phase.basin_fraction(codes, theory_phase)       # (*grid)

Seeds whose training diverged are left out: give their codes as NaN.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["basin_fraction"]


def basin_fraction(phases, optimal_phase, dim: str | int = "seed"):
    r"""f = (1 / |S|) Σ_{s ∈ S} 1[phase_s = optimal]: the fraction of seeds in the optimal phase.

    S is the set of seeds whose phase is known (not NaN); f is NaN where S is empty.

    Args:
      phases: phase codes (`classify_phase`) of every trained model: a DataArray with a `dim`
        dim, or an array with the seed axis at `dim` (an int). NaN marks a diverged model.
      optimal_phase: the theory's phase code per grid point, broadcast against `phases` without
        its seed axis: a DataArray (matched by dim name: rename the trained grid's
        `extra_importance` to the theory's `relative_importance` first) or an array.
      dim: the seed dim (a name for a DataArray, an axis for an array).

    Returns:
      (*grid) fractions in [0, 1]: a DataArray with `phases`' other dims, or a NumPy array.
    """
    if isinstance(phases, xr.DataArray):
        if not isinstance(dim, str) or dim not in phases.dims:
            raise ValueError(f"dim must be a dim of phases {phases.dims}; got {dim!r}")
        phases = phases.astype(float)
        if isinstance(optimal_phase, xr.DataArray):
            missing = set(optimal_phase.dims) - set(phases.dims)
            if missing or dim in optimal_phase.dims:
                raise ValueError(f"optimal_phase's dims {optimal_phase.dims} must be grid dims of "
                                 f"phases {phases.dims}, without {dim!r}")
        known = phases.notnull()
        hits = (phases == optimal_phase) & known
        count = known.sum(dim)
        return (hits.sum(dim) / count.where(count > 0)).rename("basin_fraction")
    phases = np.asarray(phases, float)
    if not isinstance(dim, (int, np.integer)) or not -phases.ndim <= dim < phases.ndim:
        raise ValueError(f"dim must be an axis of phases (ndim {phases.ndim}); got {dim!r}")
    axis = int(dim) % phases.ndim
    optimal = np.expand_dims(np.asarray(optimal_phase, float), axis)
    known = ~np.isnan(phases)
    hits = (phases == optimal) & known
    count = known.sum(axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, hits.sum(axis) / np.maximum(count, 1), np.nan)
