"""Reading a sweep Dataset for a figure: its model, its grid, and the instance each point shows.

Every figure states what it needs as a list of problems with a dataset (an empty list: the dataset
qualifies). `write_figures` uses the list to decide which datasets feed which figure, and each
figure function raises a ValueError quoting it, so the two can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr

#: A grid dim every figure may carry: instances of the same point, reduced to the lowest loss.
SEED = "seed"


def model_config(ds: xr.Dataset) -> dict[str, Any]:
    """The sweep's ToyModelConfig as a dict (from the `model` attr `sweep` writes)."""
    try:
        return json.loads(ds.attrs["model"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError("the dataset has no readable 'model' attr; pass a Dataset made by "
                         "toymodels.sweep or toymodels.load_results") from e


def grid_dims(ds: xr.Dataset) -> tuple[str, ...]:
    """The dims of the sweep's grid: those of `loss`."""
    return tuple(ds["loss"].dims) if "loss" in ds else ()


def problems(ds: xr.Dataset, *, kinds: Iterable[str], dims: Iterable[str] = (),
             optional_dims: Iterable[str] = (),
             n_features: tuple[int | None, int | None] = (None, None),
             variables: Iterable[str] = ()) -> list[str]:
    """What keeps `ds` from feeding a figure; empty if nothing does.

    Args:
      kinds: the model kinds accepted.
      dims: grid dims the figure plots against; each must have a 1-D coordinate. Any other grid
        dim but `seed` and `optional_dims` must have a single value.
      optional_dims: grid dims the figure plots against if they are there (1-D coordinates).
      n_features: (low, high) bounds on n_features, None for no bound.
      variables: data variables the figure needs (any one of a tuple entry).
    """
    if not isinstance(ds, xr.Dataset):
        return [f"expected an xarray.Dataset, got {type(ds).__name__}"]
    if "loss" not in ds:
        return ["the dataset has no 'loss' variable (not a sweep result)"]
    try:
        model = model_config(ds)
    except ValueError as e:
        return [str(e)]
    out = []
    kinds = tuple(kinds)
    if model.get("kind") not in kinds:
        out.append(f"model kind is {model.get('kind')!r}; needs {' or '.join(map(repr, kinds))}")
    low, high = n_features
    n = model.get("n_features")
    if low is not None and n < low:
        out.append(f"n_features = {n}; needs at least {low}")
    if high is not None and n > high:
        out.append(f"n_features = {n}; needs at most {high}")
    grid = grid_dims(ds)
    dims, optional_dims = tuple(dims), tuple(optional_dims)
    for d in dims:
        if d not in grid:
            out.append(f"needs a {d!r} grid dim; the grid has {list(grid)}")
    for d in dims + optional_dims:
        if d in grid and ds[d].ndim != 1:
            out.append(f"{d!r} varies per feature; needs one value per model")
    dims += optional_dims
    for d in grid:
        if d not in dims and d != SEED and ds.sizes[d] > 1:
            out.append(f"grid dim {d!r} has {ds.sizes[d]} values; this figure plots only "
                       f"{[*dims, SEED]} (select one {d} first)")
    for v in variables:
        names = (v,) if isinstance(v, str) else tuple(v)
        if not any(name in ds for name in names):
            out.append(f"needs a {' or '.join(map(repr, names))} variable")
    return out


def require(found: list[str], figure: str) -> None:
    """Raise the ValueError a figure function gives for a dataset it cannot draw."""
    if found:
        raise ValueError(f"{figure}: this dataset cannot be drawn: " + "; ".join(found))


def lowest_loss(ds: xr.Dataset) -> xr.Dataset:
    """The lowest-loss seed at each grid point, every other single-valued grid dim dropped.

    A NaN (diverged) loss never wins unless every seed at the point diverged.
    """
    if SEED in grid_dims(ds):
        ds = ds.isel({SEED: ds["loss"].fillna(np.inf).argmin(SEED)})
    single = [d for d in grid_dims(ds) if ds.sizes[d] == 1]
    return ds.isel({d: 0 for d in single}) if single else ds


def squeeze_grid(ds: xr.Dataset, keep: Iterable[str]) -> xr.Dataset:
    """Drop the single-valued grid dims other than those in `keep`."""
    keep = set(keep)
    single = {d: 0 for d in grid_dims(ds) if d not in keep and ds.sizes[d] == 1}
    return ds.isel(single) if single else ds


def n_seeds(ds: xr.Dataset) -> int:
    return ds.sizes[SEED] if SEED in grid_dims(ds) else 1


def seed_note(ds: xr.Dataset) -> str:
    """'(lowest-loss of 4 seeds)', or '' for a single seed."""
    n = n_seeds(ds)
    return f" (lowest-loss of {n} seeds)" if n > 1 else ""


def embedding(ds: xr.Dataset, snapshot: bool = False) -> xr.DataArray:
    """The features' embeddings (…, feature, hidden): W, or W_in for the abs model."""
    suffix = "_snapshot" if snapshot else ""
    for name in ("W", "W_in"):
        if name + suffix in ds:
            return ds[name + suffix]
    raise ValueError(f"the dataset has no W{suffix} or W_in{suffix} variable")


def embedding_names(snapshot: bool = False) -> tuple[str, str]:
    suffix = "_snapshot" if snapshot else ""
    return ("W" + suffix, "W_in" + suffix)


def describe_model(model: dict[str, Any]) -> str:
    """'n = 20 features in m = 5 dims'."""
    return f"n = {model['n_features']} features in m = {model['d_hidden']} dims"


def sorted_by(ds: xr.Dataset, dim: str, descending: bool = True) -> xr.Dataset:
    """`ds` with `dim` in descending (or ascending) order of its coordinate."""
    order = np.argsort(ds[dim].values)
    return ds.isel({dim: order[::-1] if descending else order})
