"""SAEs on a language model's activations: which model and site an SAE reads, and encoding rows.

`sae_from_sweep(results, point)` picks one SAE out of a sweep trained on an activation store
(`tm.sweep(..., data=store)`) and records in its `metadata`, in SAELens's names, what it was
trained on: `model_name`, `hook_name` (and `hook_name_out` for a transcoder), `prepend_bos` and
`context_size`, all read from the store's description the sweep kept. The analysis functions of
`toymodels.lm` take that SAE and find the model and site in it.

`encode_rows` / `decode_rows` apply `tm.SAE` to a (rows, d) array padded to a power of two (at
least `MIN_ROWS`) rows, so that texts of every length share a handful of compiled shapes instead
of compiling once per length.

An SAE whose metadata says `model_from_pretrained_kwargs: {center_writing_weights: true}` (a
SAELens release trained on TransformerLens's processed GPT-2, such as gpt2-small-res-jb) reads
each row centred over d_model (`centred`, applied by `sae_input` and so by `encode_rows`): that is
the model it was trained on, read through any other (a Hugging Face GPT-2, an unprocessed
HookedTransformer); on a model processed that way, centring changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from toymodels.lm.store import FORMAT
from toymodels.sae import SAE

__all__ = ["centred", "decode_rows", "encode_rows", "sae_from_sweep", "sae_input", "sae_site"]

#: the fewest rows an SAE is compiled for
MIN_ROWS = 64


def _padded(x: np.ndarray) -> np.ndarray:
    n = len(x)
    rows = max(MIN_ROWS, 1 << max(0, n - 1).bit_length())
    out = np.zeros((rows, x.shape[1]), np.float32)
    out[:n] = x
    return out


def centred(x):
    """x − mean(x) over the last axis: (…, d_model) -> (…, d_model).

    What TransformerLens's `center_writing_weights` makes of the residual stream. Centring every
    weight that writes into the stream (W_E, W_pos, W_O, b_O, W_out, b_out) removes each token's
    mean over d_model from everything that flows through it, which changes nothing downstream
    (every read of the stream is a LayerNorm, which removes that mean anyway). So a GPT-2 read
    through Hugging Face at a residual site (`hook_resid_pre`, `hook_resid_mid`,
    `hook_resid_post`) or a writing sub-block (`hook_attn_out`, `hook_mlp_out`), then centred,
    equals TransformerLens's processed model there (`fold_ln=True`,
    `center_writing_weights=True`; tests/test_lm_lens.py).
    """
    return x - x.mean(-1, keepdims=True)


def centres_input(sae: SAE) -> bool:
    """Whether the SAE was trained on a model with centred writing weights (its metadata's
    `model_from_pretrained_kwargs.center_writing_weights`)."""
    kwargs = sae.metadata.get("model_from_pretrained_kwargs") or {}
    return isinstance(kwargs, dict) and bool(kwargs.get("center_writing_weights", False))


def sae_input(sae: SAE, x: np.ndarray) -> np.ndarray:
    """The rows as the SAE reads them: centred when `centres_input(sae)`, else as they are."""
    x = np.asarray(x, np.float32)
    return centred(x) if centres_input(sae) else x


def encode_rows(sae: SAE, x: np.ndarray) -> np.ndarray:
    """feature_acts of rows x: (n, d_in) -> (n, d_sae) float32 NumPy (of `sae_input(sae, x)`)."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != sae.d_in:
        raise ValueError(f"x: expected (rows, d_in={sae.d_in}), got shape {x.shape}")
    return np.asarray(sae.encode(_padded(sae_input(sae, x))))[:len(x)]


def decode_rows(sae: SAE, f: np.ndarray) -> np.ndarray:
    """The reconstruction f W_dec + b_dec of rows f: (n, d_sae) -> (n, d_out) float32 NumPy."""
    f = np.asarray(f, np.float32)
    return np.asarray(sae.decode(_padded(f)))[:len(f)]


def _select(ds: xr.Dataset, point: Mapping[str, Any]) -> xr.Dataset:
    dims = list(ds["loss"].dims)
    unknown = sorted(set(point) - set(dims))
    if unknown:
        raise ValueError(f"point: {unknown} are not grid dims of this sweep; its dims are {dims}")
    for dim in dims:
        values = ds[dim].values if dim in ds.coords else np.arange(ds.sizes[dim])
        if dim in point:
            want = point[dim]
            if np.issubdtype(values.dtype, np.number):
                index = int(np.argmin(np.abs(values.astype(float) - float(want))))
                if not np.isclose(float(values[index]), float(want), rtol=1e-6):
                    raise ValueError(f"point[{dim!r}] = {want!r} is not on the grid; "
                                     f"its values are {values.tolist()}")
            else:
                matches = np.flatnonzero(values.astype(str) == str(want))
                if not len(matches):
                    raise ValueError(f"point[{dim!r}] = {want!r} is not on the grid; "
                                     f"its values are {values.tolist()}")
                index = int(matches[0])
        elif ds.sizes[dim] == 1:
            index = 0
        else:
            raise ValueError(f"point: choose a value of {dim!r}, one of {values.tolist()} "
                             f"(the sweep has {ds.sizes[dim]})")
        ds = ds.isel({dim: index})
    return ds


def sae_from_sweep(results: xr.Dataset | str | os.PathLike,
                   point: Mapping[str, Any] | None = None) -> SAE:
    """One SAE of a sweep trained on an activation store, with the model and site in its metadata.

    Args:
      results: the sweep's Dataset, or its `out` folder (or results.nc).
      point: {grid dim: value} choosing the SAE; a dim with one value may be left out. Numeric
        values match the grid's to a relative 1e-6 (so `l1_coefficient=0.3` finds 0.30000001).

    Raises ValueError if a grid dim is left open or a value is not on the grid. An SAE trained on
    other data (GroundTruth, a list of arrays) has no model or site: its metadata is empty.
    """
    if not isinstance(results, xr.Dataset):
        from toymodels.store import load_results

        results = load_results(results)
    one = _select(results, dict(point or {}))
    data = json.loads(results.attrs.get("data", "{}"))
    metadata: dict[str, Any] = {}
    if data.get("format") == FORMAT:
        sites = data["site"]
        metadata = {"model_name": data["model"], "tokenizer": data["tokenizer"],
                    "hook_name": sites[0] if len(sites) == 1 else sites,
                    "prepend_bos": data["settings"]["prepend_bos"],
                    "context_size": data["settings"]["max_length"],
                    "activation_store": data["manifest_sha256"]}
        if data["target_site"] is not None:
            metadata["hook_name_out"] = data["target_site"]
    return SAE.from_results(one, metadata)


def sae_site(sae: SAE, site: str | None = None, target_site: str | None = None
             ) -> tuple[str, str | None]:
    """(the site an SAE reads, the site it writes if a transcoder): given, or from its metadata."""
    site = site if site is not None else sae.metadata.get("hook_name")
    if site is None:
        raise ValueError("site: give the site this SAE reads (its metadata has no hook_name)")
    if not isinstance(site, str):
        raise ValueError(f"site: an SAE over several concatenated sites ({site}) cannot be "
                         "spliced into the model")
    if target_site is None:
        target_site = sae.metadata.get("hook_name_out")
    if sae.config.is_transcoder and target_site is None:
        raise ValueError("target_site: a transcoder writes another site than it reads; give it")
    if not sae.config.is_transcoder and target_site not in (None, site):
        raise ValueError(f"target_site: an SAE writes the site it reads ({site}), not {target_site}")
    return site, (target_site if sae.config.is_transcoder else None)
