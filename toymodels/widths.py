"""Sweeping static fields (an SAE's `d_sae` and `k`, a jermyn model's `d_hidden`): one compiled
sweep per value, one Dataset.

A grid key that fixes shapes (the number of latents) or the compiled program (top-k's k) cannot
be an array inside one compiled program, so `tm.sweep` runs one sub-sweep per combination of
such values and merges them. Latent axes of different widths are stored in one Dataset, padded
to the widest with zeros: a padded latent has a zero encoder column, decoder row and biases, so
it never fires and reconstructs nothing — the narrow SAE's outputs are unchanged. `latent_mask`
(d_sae, latent) marks the real latents, and `tm.SAE.from_results` drops the padding;
`split_widths(ds)` gives one unpadded Dataset per width. A jermyn model's neurons (`d_hidden`)
are padded the same way along `hidden`, marked by `hidden_mask`: a padded neuron has zero weights
in and out and a zero bias, so it is dead (its activation σ(0) = 0 for relu, gelu and solu) and
changes no output.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from toymodels.config import TrainConfig
from toymodels.store import SweepStore

__all__ = ["split_widths", "sweep_static"]


def _values(name: str, values: Any) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"grid[{name!r}] must be a sequence of values; got {values!r}")
    if len(values) == 0:
        raise ValueError(f"grid[{name!r}] is empty; give at least one value")
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def sweep_static(config: Any, grid: Mapping[str, Any], train: TrainConfig,
                 static_keys: Sequence[str], *, data: Any, out: str | None, **options
                 ) -> xr.Dataset:
    """`tm.sweep` over a grid with static keys: every sub-sweep checked first, then run."""
    from toymodels.sweep import _sweep, plan_sweep

    values = {k: _values(k, grid[k]) for k in static_keys}
    combos = list(itertools.product(*values.values()))
    # Each config's own validation names the field (k outside [1, d_sae] …).
    configs = [dataclasses.replace(config, **dict(zip(static_keys, c))) for c in combos]
    rest = {k: v for k, v in grid.items() if k not in values}
    plans = [plan_sweep(c, rest, train, data) for c in configs]
    host = plans[0][1].host_data
    if host is not None and len(configs) > 1:
        host.check_reiterable(len(configs))

    description = plans[0][0].describe()
    description["grid"] = {k: (values[k] if k in values else description["grid"][k])
                           for k in grid}
    if plans[0][1].describe_data() is not None:
        description["data"] = plans[0][1].describe_data()
    store = SweepStore(out, description) if out is not None else None

    parts = []
    for combo, cfg in zip(combos, configs):
        sub = None if out is None else str(
            Path(out) / "_".join(f"{k}={v}" for k, v in zip(static_keys, combo)))
        parts.append(_sweep(cfg, rest, train, data=data, out=sub, **options))
    parts = [p.assign_coords(dict(zip(static_keys, combo))) for p, combo in zip(parts, combos)]
    shared = list(plans[0][1].data_variables())  # the data's variables: the same in every part
    ds = _merge([p.drop_vars(shared) for p in parts], static_keys,
                [len(values[k]) for k in static_keys], list(grid))
    ds = ds.assign({name: parts[0][name] for name in shared})
    ds.attrs = {k: json.dumps(v) for k, v in description.items()}
    if store is not None:
        store.save_results(ds)
    return ds


#: width fields a grid may sweep, and the dim each sets: an SAE's latents, a jermyn model's neurons.
WIDTH_DIMS = {"d_sae": "latent", "d_hidden": "hidden"}


def _merge(parts: list[xr.Dataset], keys: Sequence[str], sizes: Sequence[int],
           order: Sequence[str]) -> xr.Dataset:
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
