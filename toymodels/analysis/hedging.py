"""Feature hedging against a known feature tree (Chanin et al. 2025, "Feature hedging").

An SAE narrower than the features it is trained on cannot give every feature its own latent;
where features are correlated (a parent and its children), a latent's decoder hedges: it mixes
in the directions of the features that fire with its own, to reconstruct them partly when they
have no latent. With ground truth each true feature is matched one-to-one to a latent
(`match_latents`), and the matched latent's decoder direction is split into the part along the
feature, the part on the feature's tree relatives, the part on unrelated features and the part
off the span of the dictionary altogether.

A pure function of the weights (`hedging_from_weights`), and `hedging(ds, truth)` over every SAE
of a sweep. Array-only: it sits beside the other metrics, below `tm.SAE`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from toymodels.analysis._sweep import check_sae_sweep, latent_rows, per_feature, points
from toymodels.analysis.recovery import match_latents

__all__ = ["Hedging", "hedging", "hedging_from_weights", "tree_relatives"]


class Hedging(NamedTuple):
    """Per true feature, shares of its matched latent's squared decoder norm (each (n_features,),
    NaN where the feature has no latent or the latent's decoder row is zero):
    hedging = relatives + unrelated + off_dictionary."""

    hedging: np.ndarray  # 1 − cos²(W_dec,ℓ, d_i): everything not along the feature's direction
    relatives: np.ndarray  # … of it, in the span of the feature's parent, children and siblings
    unrelated: np.ndarray  # … of it, in the span of the other true features
    off_dictionary: np.ndarray  # … of it, outside the span of the dictionary


def tree_relatives(parents) -> list[np.ndarray]:
    """For each feature of a forest given by `parents` ((n_features,) int, −1 for a root), its
    relatives: its parent, its children and its siblings (the other children of its parent;
    roots are not one another's siblings), as sorted index arrays."""
    parents = np.asarray(parents, np.int64)
    out = []
    for i, q in enumerate(parents):
        family = parents == i  # children
        if q >= 0:
            family |= parents == q  # siblings
            family[q] = True
        family[i] = False
        out.append(np.flatnonzero(family))
    return out


def _span(basis: np.ndarray) -> np.ndarray:
    """(d, rank) an orthonormal basis of the span of the rows of `basis` (any rank, by SVD)."""
    left, s, _ = np.linalg.svd(basis.T, full_matrices=False)
    return left[:, s > s.max() * max(basis.shape) * np.finfo(np.float64).eps]


def _projected_sq(basis: np.ndarray, u: np.ndarray) -> float:
    """‖P u‖², P the orthogonal projection onto the span of the rows of `basis`."""
    return float(np.sum((_span(basis).T @ u) ** 2))


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def hedging_from_weights(W_dec, dictionary, latent_of, parents=None) -> Hedging:
    r"""How far each feature's matched latent's decoder spreads beyond the feature (hedging).

    For feature i with latent ℓ = latent_of[i], u = W_dec,ℓ / ‖W_dec,ℓ‖, d̂ the unit true
    directions, R(i) its relatives (`tree_relatives`: parent, children, siblings, from `parents`) and
    P_S the orthogonal projection onto span{d_j : j ∈ S}:

        hedging_i        = 1 − (u · d̂_i)²
        relatives_i      = ‖P_{{i} ∪ R(i)} u‖² − (u · d̂_i)²
        unrelated_i      = ‖P_{all} u‖² − ‖P_{{i} ∪ R(i)} u‖²
        off_dictionary_i = 1 − ‖P_{all} u‖²

    The subspaces are nested, so each part is ≥ 0 and they sum to hedging_i ∈ [0, 1]; a
    component shared between a relative and an unrelated feature (non-orthogonal dictionaries)
    is credited to the relative. For orthonormal directions relatives_i = Σ_{j∈R(i)} (u · d_j)²
    and unrelated_i = Σ_{j∉R(i)∪{i}} (u · d_j)². Example: u = (d_a + d_b)/√2 with orthonormal
    d gives hedging_a = ½, all of it on relatives if b is a's child, parent or sibling.

    0 for every feature of the true dictionary used as the decoder; unchanged by relabelling
    latents (with `latent_of` alike), rescaling them, or a rotation of the input space applied
    to both sets. NaN where latent_of is −1 or the latent's decoder row is zero. A hedging
    latent's decoder spreads over correlated features, so relatives ≫ unrelated is the sign of
    hedging rather than of noise.

    Args:
      W_dec: (d_sae, d_in) the decoder, one latent per row.
      dictionary: (n_features, d_in) the true directions.
      latent_of: (n_features,) int, each feature's matched latent (−1: none), e.g.
        `match_latents(W_dec, dictionary)`.
      parents: (n_features,) int, −1 for a root; None: no tree (no feature has relatives).

    Returns:
      `Hedging(hedging, relatives, unrelated, off_dictionary)`, each (n_features,) float64.
    """
    W_dec, dictionary = np.asarray(W_dec, np.float64), np.asarray(dictionary, np.float64)
    n = len(dictionary)
    parents = np.full(n, -1) if parents is None else np.asarray(parents, np.int64)
    latent_of = np.asarray(latent_of, np.int64)
    if W_dec.ndim != 2 or dictionary.ndim != 2 or W_dec.shape[1] != dictionary.shape[1]:
        raise ValueError(
            "hedging_from_weights: W_dec (d_sae, d_in) and dictionary (n_features, d_in) must "
            f"share d_in, got shapes {W_dec.shape} and {dictionary.shape}")
    if parents.shape != (n,) or latent_of.shape != (n,):
        raise ValueError(
            f"hedging_from_weights: parents and latent_of must have shape (n_features={n},), "
            f"got {parents.shape} and {latent_of.shape}")
    truth = _unit(dictionary)
    span = _span(truth)  # ‖P_all u‖² needs one SVD of the dictionary, shared by every feature
    family = tree_relatives(parents)
    out = np.full((4, n), np.nan)
    for i in range(n):
        ell = latent_of[i]
        if ell < 0 or not np.any(W_dec[ell]):
            continue
        u = W_dec[ell] / np.linalg.norm(W_dec[ell])
        along = float(u @ truth[i]) ** 2
        with_family = max(_projected_sq(truth[np.append(i, family[i])], u), along)
        on_dictionary = max(float(np.sum((span.T @ u) ** 2)), with_family)
        # the max()es only absorb rounding, keeping every part ≥ 0 and the parts nested
        out[:, i] = (1 - along, with_family - along, on_dictionary - with_family,
                     max(1 - on_dictionary, 0.0))
    return Hedging(*out)


def hedging(ds: xr.Dataset, truth: Any) -> xr.Dataset:
    """`hedging_from_weights` of every SAE of a sweep on `truth` (a `GroundTruth`, with or
    without a feature tree): a Dataset over (*grid, "feature") with `hedging`,
    `hedging_relatives`, `hedging_unrelated` and `hedging_off_dictionary` (NaN for a feature
    with no latent: a narrow SAE leaves d_sae < n_features matched)."""
    dictionary, parents = np.asarray(truth.dictionary), np.asarray(truth.parents)
    grid = check_sae_sweep("hedging", ds, dictionary)
    names = {"hedging": "hedging", "relatives": "hedging_relatives",
             "unrelated": "hedging_unrelated", "off_dictionary": "hedging_off_dictionary"}
    rows: dict[str, list[np.ndarray]] = {name: [] for name in names.values()}
    for point in points(ds, grid):
        W_dec = latent_rows(point, "W_dec")
        parts = hedging_from_weights(W_dec, dictionary, match_latents(W_dec, dictionary), parents)
        for field, name in names.items():
            rows[name].append(getattr(parts, field))
    return per_feature(ds, grid, rows)
