"""Feature absorption against a known feature tree (Chanin et al. 2024, "A is for Absorption").

When a child feature implies its parent (dog ⇒ animal), a sparse SAE can let the child's latent
take in the parent's direction, and the parent's latent then stays silent exactly where the child
is on. With ground truth the answer is known, so absorption can be measured per (parent, child)
pair: each true feature is matched one-to-one to a latent (`match_latents`, the Hungarian match
of decoder rows to true directions by |cos|, as `mcc` does), and

- the firing view (`absorption_from_acts`) watches the parent's latent on inputs where the child
  is on, against inputs where the parent is on with none of its children;
- the direction view (`absorption_directions`) reads the weights: how much of the parent's
  direction the child's latent writes, and how strongly the child's direction switches the
  parent's latent off.

The cores are pure functions of arrays; `absorption(ds, truth)` and
`absorption_direction(ds, truth)` run them over every SAE of a sweep. This module sits above
`toymodels.sae` (it encodes with `tm.SAE`), unlike the array-only metrics.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import xarray as xr

from toymodels.analysis._sweep import check_sae_sweep, per_feature, points
from toymodels.analysis.recovery import match_latents
from toymodels.sae.model import SAE

__all__ = ["absorption", "absorption_direction", "absorption_directions", "absorption_from_acts",
           "match_latents"]

#: samples of the evaluation batch `absorption` draws from the truth.
EVAL_SAMPLES = 1 << 15


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


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row over its norm; a zero row stays zero (cosine 0 with everything)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def absorption_directions(W_enc, W_dec, dictionary, parents,
                          latent_of) -> tuple[np.ndarray, np.ndarray]:
    r"""The direction view of absorption, per child feature: what the weights say.

    For a child c with parent q, ℓ_c = latent_of[c], ℓ_q = latent_of[q] and d the true directions:

        decoder_cos_c = cos(W_dec[ℓ_c], d_q)      the child's latent writing the parent's direction
        encoder_cos_c = cos(W_enc[:, ℓ_q], d_c)   the parent's latent reading the child's direction

    An SAE that does not absorb (the true dictionary as a tied SAE, orthogonal features) scores 0
    for both. Absorbing, the child's latent takes in the parent (decoder_cos_c > 0) and the
    parent's encoder subtracts the child so that it is off whenever the child is on
    (encoder_cos_c < 0). Both lie in [−1, 1] and are unchanged by relabelling latents (with
    `latent_of` relabelled alike), by rescaling any latent by a positive factor, and by a
    rotation of the input space applied to the weights and the truth together. NaN for a root,
    and where the latent read is unmatched (latent_of −1). A zero vector has cosine 0.

    Args:
      W_enc: (d_in, d_sae) the encoder, one latent per column.
      W_dec: (d_sae, d_in) the decoder, one latent per row.
      dictionary: (n_features, d_in) the true directions.
      parents: (n_features,) int, −1 for a root.
      latent_of: (n_features,) int, each feature's matched latent (−1: none), e.g.
        `match_latents(W_dec, dictionary)`.

    Returns:
      (decoder_cos, encoder_cos), each (n_features,) float64.
    """
    W_enc, W_dec = np.asarray(W_enc, np.float64), np.asarray(W_dec, np.float64)
    dictionary = np.asarray(dictionary, np.float64)
    parents, latent_of = np.asarray(parents, np.int64), np.asarray(latent_of, np.int64)
    n, d_in = dictionary.shape
    if W_dec.shape[1] != d_in or W_enc.shape != (d_in, W_dec.shape[0]):
        raise ValueError(
            f"absorption_directions: W_enc (d_in, d_sae) and W_dec (d_sae, d_in) must match the "
            f"dictionary's d_in={d_in}, got shapes {W_enc.shape} and {W_dec.shape}")
    if parents.shape != (n,) or latent_of.shape != (n,):
        raise ValueError(
            f"absorption_directions: parents and latent_of must have shape (n_features={n},), "
            f"got {parents.shape} and {latent_of.shape}")
    dec, enc, truth = _unit_rows(W_dec), _unit_rows(W_enc.T), _unit_rows(dictionary)
    decoder_cos, encoder_cos = np.full(n, np.nan), np.full(n, np.nan)
    child = parents >= 0
    q = np.where(child, parents, 0)
    # a child's own latent, and its parent's latent; either may be unmatched
    has_own = child & (latent_of >= 0)
    has_parent = child & (latent_of[q] >= 0)
    decoder_cos[has_own] = np.sum(dec[latent_of[has_own]] * truth[q[has_own]], axis=-1)
    encoder_cos[has_parent] = np.sum(enc[latent_of[q[has_parent]]] * truth[has_parent], axis=-1)
    return decoder_cos, encoder_cos


def absorption(ds: xr.Dataset, truth: Any, *, n_samples: int = EVAL_SAMPLES,
               seed: int = 0) -> xr.DataArray:
    """(*grid, "feature") the firing view of absorption (`absorption_from_acts`) of every SAE
    of a sweep on `truth` (a `GroundTruth` with a feature tree), NaN for roots.

    Every SAE sees the same `n_samples` inputs, drawn from the truth with `seed`."""
    dictionary, parents = np.asarray(truth.dictionary), np.asarray(truth.parents)
    grid = check_sae_sweep("absorption", ds, dictionary)
    c = np.asarray(truth.coefficients(jax.random.key(seed), int(n_samples)))
    x = c @ dictionary
    rows = []
    for point in points(ds, grid):
        sae = SAE.from_results(point)
        latent_of = match_latents(sae.params["W_dec"], dictionary)
        rows.append(absorption_from_acts(np.asarray(sae.encode(x)), c, parents, latent_of))
    return per_feature(ds, grid, {"absorption": rows})["absorption"]


def absorption_direction(ds: xr.Dataset, truth: Any) -> xr.Dataset:
    """The direction view of absorption (`absorption_directions`) of every SAE of a sweep on
    `truth` (a `GroundTruth` with a feature tree): a Dataset over (*grid, "feature") with
    `decoder_parent_cos` (the child's latent's decoder with the parent's direction) and
    `encoder_child_cos` (the parent's latent's encoder with the child's direction), NaN for
    roots."""
    dictionary, parents = np.asarray(truth.dictionary), np.asarray(truth.parents)
    grid = check_sae_sweep("absorption_direction", ds, dictionary)
    rows: dict[str, list[np.ndarray]] = {"decoder_parent_cos": [], "encoder_child_cos": []}
    for point in points(ds, grid):
        sae = SAE.from_results(point)
        W_enc, W_dec = sae.params["W_enc"], sae.params["W_dec"]
        decoder_cos, encoder_cos = absorption_directions(
            W_enc, W_dec, dictionary, parents, match_latents(W_dec, dictionary))
        rows["decoder_parent_cos"].append(decoder_cos)
        rows["encoder_child_cos"].append(encoder_cos)
    return per_feature(ds, grid, rows)
