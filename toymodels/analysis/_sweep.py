"""One SAE at a time out of an SAE sweep's Dataset, and per-feature results labeled by its grid.

The metrics against a feature tree (absorption, hedging) are defined for one SAE and one truth;
their Dataset wrappers loop over the sweep's grid points on the host (each needs a SciPy
assignment), and stack the per-feature results back over (*grid, "feature").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr


def check_sae_sweep(caller: str, ds: Any, dictionary: np.ndarray) -> list[str]:
    """The grid dims of `ds`, after checking it is an SAE sweep's Dataset over the truth's d_in."""
    if not isinstance(ds, xr.Dataset) or "W_dec" not in ds or "sae" not in ds.attrs:
        raise ValueError(f"{caller}: ds must be an SAE sweep's Dataset (with W_dec and its "
                         "'sae' attrs)")
    if ds.sizes.get("d_in") != dictionary.shape[1]:
        raise ValueError(f"{caller}: truth has d_in={dictionary.shape[1]}, the SAEs d_in="
                         f"{ds.sizes.get('d_in')}")
    return list(ds["loss"].dims)


def points(ds: xr.Dataset, grid: list[str]) -> Iterator[xr.Dataset]:
    """Each grid point's Dataset (every grid dim selected away), in C order over `grid`."""
    for index in np.ndindex(*(ds.sizes[d] for d in grid)):
        yield ds.isel(dict(zip(grid, index)))


def latent_rows(point: xr.Dataset, name: str) -> np.ndarray:
    """One point's parameter with its latents first and a width sweep's padding dropped
    (`latent_mask`, see `toymodels.widths`): W_dec (d_sae, d_in), W_enc (d_sae, d_in) …"""
    value = point[name].transpose("latent", ...)
    if "latent_mask" in point:
        value = value.isel(latent=np.asarray(point["latent_mask"].values, bool))
    return np.asarray(value.values)


def per_feature(ds: xr.Dataset, grid: list[str], rows: dict[str, list[np.ndarray]]) -> xr.Dataset:
    """{name: one (n_features,) row per grid point, in `points` order} as a Dataset over
    (*grid, "feature") with the grid's coordinates."""
    shape = [ds.sizes[d] for d in grid]
    coords = {d: ds[d] for d in grid if d in ds.coords}
    return xr.Dataset(
        {name: xr.DataArray(np.stack(values).reshape(*shape, -1), dims=(*grid, "feature"),
                            coords=coords) for name, values in rows.items()})
