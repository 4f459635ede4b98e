"""Merging the sub-sweeps of static grid keys (an SAE's `d_sae` and `k`, a toy model's
`d_hidden` and `dataset_size`) into one Dataset, and splitting it again.

A grid key that fixes shapes (the number of latents) or the compiled program (top-k's k) cannot
be an array inside one compiled program, so `tm.sweep` runs one sub-sweep per combination of
such values (`toymodels.sweep`) and merges them here. These are functions of Datasets only: this
module knows nothing of how the parts were trained.

Latent axes of different widths are stored in one Dataset, padded to the widest with zeros: a padded latent has a zero encoder column, decoder row and biases, so
it never fires and reconstructs nothing — the narrow SAE's outputs are unchanged. `latent_mask`
(d_sae, latent) marks the real latents, and `tm.SAE.from_results` drops the padding;
`split_widths(ds)` gives one unpadded Dataset per width. A toy model's hidden width (`d_hidden`)
is padded the same way along `hidden`, marked by `hidden_mask`: a padded hidden dimension has a
zero column of W (W Wᵀ is unchanged); a padded jermyn neuron has zero weights in and out and a
zero bias, so it is dead (its activation σ(0) = 0 for relu, gelu and solu) and changes no output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["WIDTH_DIMS", "grid_values", "merge_parts", "split_widths"]


def grid_values(name: str, values: Any) -> list:
    """The values of one static grid key as a list of Python scalars; errors name the key."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"grid[{name!r}] must be a sequence of values; got {values!r}")
    if len(values) == 0:
        raise ValueError(f"grid[{name!r}] is empty; give at least one value")
    if any(v is None for v in values):
        raise ValueError(f"grid[{name!r}] holds None; sweep over values, or leave the field out")
    return [v.item() if isinstance(v, np.generic) else v for v in values]


#: width fields a grid may sweep, and the dim each sets: an SAE's latents, a toy model's hidden dims.
WIDTH_DIMS = {"d_sae": "latent", "d_hidden": "hidden"}


def merge_parts(parts: list[xr.Dataset], keys: Sequence[str], sizes: Sequence[int],
                order: Sequence[str]) -> xr.Dataset:
    """One Dataset of the sub-sweeps `parts` (C order over `keys`, of the given sizes), each
    width dim padded with zeros to the widest and marked by `<dim>_mask`; dims in grid `order`."""
    dims = [WIDTH_DIMS[k] for k in keys if k in WIDTH_DIMS]
    widths = {d: max(p.sizes.get(d, 0) for p in parts) for d in dims}
    padded = []
    for p in parts:
        pad = {d: (0, w - p.sizes[d]) for d, w in widths.items() if d in p.dims and p.sizes[d] < w}
        padded.append(p.pad(pad, constant_values=0) if pad else p)
    ds = xr.combine_nested(_nest(padded, list(sizes)), concat_dim=list(keys),
                           data_vars="all", combine_attrs="drop")
    for key, dim in WIDTH_DIMS.items():
        if dim in ds.dims and key in keys:
            ds[f"{dim}_mask"] = xr.DataArray(np.arange(widths[dim]), dims=dim) < ds[key]
    data_dims = [d for d in parts[0]["loss"].dims if d not in order]
    return ds.transpose(*data_dims, *order, ...)


def _nest(items: list, sizes: list[int]) -> list:
    """A flat list in C order as nested lists of the given sizes."""
    if len(sizes) == 1:
        return list(items)
    step = len(items) // sizes[0]
    return [_nest(items[i * step:(i + 1) * step], sizes[1:]) for i in range(sizes[0])]


def split_widths(ds: xr.Dataset) -> dict[int, xr.Dataset]:
    """{d_sae: the sub-Dataset of that width, its padding dropped} of a sweep over d_sae."""
    if "d_sae" not in ds.dims:
        raise ValueError("split_widths needs a Dataset swept over d_sae (a 'd_sae' dim)")
    out = {}
    for width in ds["d_sae"].values.tolist():
        part = ds.sel(d_sae=width).isel(latent=slice(0, int(width)))
        out[int(width)] = part.drop_vars("latent_mask", errors="ignore")
    return out
