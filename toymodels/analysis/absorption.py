"""Feature absorption against a known feature tree (Chanin et al. 2024, "A is for Absorption").

When a child feature implies its parent (dog ⇒ animal), a sparse SAE can let the child's latent
take in the parent's direction, and the parent's latent then stays silent exactly where the child
is on. With ground truth the answer is known, so absorption can be measured per (parent, child)
pair: each true feature is matched one-to-one to a latent (the Hungarian match of decoder rows to
true directions by |cos|, as `mcc` does), and the parent's latent is watched on inputs where the
child is on, against inputs where the parent is on with none of its children.

The core (`absorption_from_acts`) is a pure function of activations; `absorption(ds, truth)`
draws a fixed evaluation batch from the truth, encodes it with every SAE of a sweep and calls it.
It sits above `toymodels.sae` (it encodes with `tm.SAE`), unlike the array-only metrics.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import xarray as xr
from scipy.optimize import linear_sum_assignment

from toymodels.sae.model import SAE

__all__ = ["absorption", "absorption_from_acts", "match_latents"]

#: samples of the evaluation batch `absorption` draws from the truth.
EVAL_SAMPLES = 1 << 15


def match_latents(W_dec: np.ndarray, dictionary: np.ndarray) -> np.ndarray:
    """(n_features,) the latent matched one-to-one to each true feature (−1 when there are fewer
    latents than features and it got none): the assignment maximising Σ |cos(W_dec,ℓ, d_i)|.

    W_dec: (d_sae, d_in); dictionary: (n_features, d_in)."""
    learned = W_dec / np.maximum(np.linalg.norm(W_dec, axis=-1, keepdims=True), 1e-12)
    truth = dictionary / np.maximum(np.linalg.norm(dictionary, axis=-1, keepdims=True), 1e-12)
    cos = np.abs(truth @ learned.T)  # (feature, latent)
    rows, cols = linear_sum_assignment(-cos)
    out = np.full(len(truth), -1)
    out[rows] = cols
    return out


def absorption_from_acts(feature_acts: np.ndarray, coefficients: np.ndarray,
                         parents: np.ndarray, latent_of: np.ndarray) -> np.ndarray:
    r"""The firing view of absorption, per child feature.

    For a child c with parent q and q's matched latent ℓ = latent_of[q]:

        m_child = P(f_ℓ = 0 | c on),    m_alone = P(f_ℓ = 0 | q on, no child of q on)
        A_c = clip((m_child − m_alone) / (1 − m_alone), 0, 1)

    0: the parent's latent fires as reliably with the child as without (no absorption); 1: it is
    always silent when the child is on yet fires when the parent is on alone (full absorption).
    NaN for a root, for a child whose parent has no matched latent, and where either condition
    never occurs in the batch (or m_alone = 1: the parent's latent never fires at all).

    Args:
      feature_acts: (sample, d_sae) the SAE's latent activations.
      coefficients: (sample, n_features) the true feature coefficients (0 = off).
      parents: (n_features,) int, −1 for a root.
      latent_of: (n_features,) int, each feature's matched latent (−1: none).

    Returns:
      (n_features,) float64.
    """
    acts, on = np.asarray(feature_acts), np.asarray(coefficients) > 0
    parents, latent_of = np.asarray(parents), np.asarray(latent_of)
    out = np.full(len(parents), np.nan)
    for c, q in enumerate(parents):
        if q < 0 or latent_of[q] < 0:
            continue
        silent = acts[:, latent_of[q]] <= 0
        alone = on[:, q] & ~on[:, parents == q].any(axis=1)
        with_child = on[:, c]
        if not alone.any() or not with_child.any():
            continue
        m_alone, m_child = silent[alone].mean(), silent[with_child].mean()
        if m_alone < 1:
            out[c] = float(np.clip((m_child - m_alone) / (1 - m_alone), 0.0, 1.0))
    return out


def absorption(ds: xr.Dataset, truth: Any, *, n_samples: int = EVAL_SAMPLES,
               seed: int = 0) -> xr.DataArray:
    """(*grid, "feature") the firing view of absorption (`absorption_from_acts`) of every SAE
    of a sweep on `truth` (a `GroundTruth` with a feature tree), NaN for roots.

    Every SAE sees the same `n_samples` inputs, drawn from the truth with `seed`."""
    if "W_dec" not in ds or "sae" not in ds.attrs:
        raise ValueError("ds must be an SAE sweep's Dataset (with W_dec and its 'sae' attrs)")
    dictionary, parents = np.asarray(truth.dictionary), np.asarray(truth.parents)
    if ds.sizes.get("d_in") != dictionary.shape[1]:
        raise ValueError(f"truth has d_in={dictionary.shape[1]}, the SAEs d_in="
                         f"{ds.sizes.get('d_in')}")
    c = np.asarray(truth.coefficients(jax.random.key(seed), int(n_samples)))
    x = c @ dictionary
    grid = [d for d in ds["loss"].dims]
    stacked = ds.stack(__point__=grid) if grid else ds.expand_dims(__point__=[0])
    rows = []
    for i in range(stacked.sizes["__point__"]):
        point = stacked.isel(__point__=i)
        point = point.drop_vars("__point__", errors="ignore")
        sae = SAE.from_results(point)
        latent_of = match_latents(np.asarray(sae.params["W_dec"]), dictionary)
        rows.append(absorption_from_acts(np.asarray(sae.encode(x)), c, parents, latent_of))
    values = np.stack(rows)
    if not grid:
        return xr.DataArray(values[0], dims=("feature",), name="absorption")
    shape = [ds.sizes[d] for d in grid]
    coords = {d: ds[d] for d in grid if d in ds.coords}
    return xr.DataArray(values.reshape(*shape, -1), dims=(*grid, "feature"), coords=coords,
                        name="absorption")
