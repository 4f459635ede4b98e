"""How well a learned dictionary recovers known directions: max cosine, MMCS, MCC, share found.

Sharkey, Braun & Millidge (2022) score an SAE trained on data with known ground-truth features by
the mean max cosine similarity (MMCS); the same score compares two learned dictionaries
(`toymodels.analysis.universality`). MMCS lets many true directions share one learned direction;
the mean correlation coefficient (MCC) of the identifiability literature matches them one to one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from toymodels.analysis._checks import check_in_range
from toymodels.analysis._cosines import matched_cosines, max_cosines
from toymodels.analysis._labeled import labeled

__all__ = ["fraction_recovered", "match_latents", "max_cosine", "mcc", "mmcs"]


def _max_cosine(learned, truth):
    return max_cosines(truth, learned)[0]


@labeled(("n_learned", "d"), ("n_true", "d"), out=("n_true",))
@jax.jit
def max_cosine(learned, truth):
    r"""max_k cos(learned_k, truth_i): how well the best learned direction matches true direction i.

    A zero vector has cosine 0 with everything. Unchanged by positive rescaling of any vector, by
    the order of the learned vectors and by a rotation applied to both sets.

    Args:
      learned: (..., n_learned, d) learned directions, one per row (an SAE's W_dec).
      truth: (..., n_true, d) true directions, one per row.

    Returns:
      (..., n_true) in [−1, 1].
    """
    return _max_cosine(learned, truth)


@labeled(("n_learned", "d"), ("n_true", "d"), out=())
@jax.jit
def mmcs(learned, truth):
    r"""Mean max cosine similarity: (1/n_true) Σ_i max_k cos(learned_k, truth_i)   (Sharkey et al.).

    1 when every true direction appears (at any positive scale, in any order) among the learned
    ones; random directions in d dimensions score far lower (`random_baseline`). A zero vector
    has cosine 0.

    Args:
      learned: (..., n_learned, d).
      truth: (..., n_true, d).

    Returns:
      (...) in [−1, 1].
    """
    return jnp.mean(_max_cosine(learned, truth), axis=-1)


@labeled(("n_learned", "d"), ("n_true", "d"), out=())
def mcc(learned, truth):
    r"""Mean correlation coefficient: mean |cos| over the best one-to-one match of learned to true.

    MCC = (1/m) max_π Σ_i |cos(learned_π(i), truth_i)|, m = min(n_learned, n_true), the max over
    injective assignments π between the two sets (the Hungarian algorithm,
    `scipy.optimize.linear_sum_assignment`). When n_learned < n_true only n_learned true
    directions are matched, and the mean is over those m pairs (so a narrow dictionary that finds
    m true directions exactly scores 1; `mmcs` and `fraction_recovered` say how much of the truth
    it covers). Unlike MMCS, two true directions cannot share one learned direction; like
    identifiability work (Khemakhem et al. 2020) it uses |cos|, so a flipped direction counts.

    1 when the learned set contains every true direction up to scale and sign (n_learned ≥
    n_true); in [0, 1]; a zero vector has cosine 0. Symmetric in its two arguments.

    Not jittable: each grid point is solved on the host by SciPy in a Python loop, in
    O(max(n_learned, n_true)³) time. Returns a NumPy array (a DataArray for DataArray input).

    Args:
      learned: (..., n_learned, d) learned directions, one per row (an SAE's W_dec).
      truth: (..., n_true, d) true directions, one per row.

    Returns:
      (...) float32 in [0, 1].
    """
    return matched_cosines(learned, truth, absolute=True, caller="mcc")


@jax.jit
def _fraction_recovered(learned, truth, threshold):
    return jnp.mean(_max_cosine(learned, truth) > threshold, axis=-1)


@labeled(("n_learned", "d"), ("n_true", "d"), out=())
def fraction_recovered(learned, truth, threshold: float = 0.9):
    r"""(1/n_true) #{i : max_k cos(learned_k, truth_i) > threshold}, the share of truth found.

    Signed cosine, as `mmcs`. Unchanged by positive rescaling, by the order of either set and by a
    rotation applied to both.

    Args:
      learned: (..., n_learned, d).
      truth: (..., n_true, d).
      threshold: the cosine a true direction's best learned match must exceed, in [−1, 1).

    Returns:
      (...) in [0, 1].
    """
    check_in_range("fraction_recovered", "threshold", threshold, -1, 1, closed="left")
    return _fraction_recovered(learned, truth, threshold)


def match_latents(W_dec, dictionary) -> np.ndarray:
    """(n_features,) the latent matched one-to-one to each true feature (−1 when there are fewer
    latents than features and it got none): the assignment maximising Σ |cos(W_dec,ℓ, d_i)|, the
    match `mcc` scores. The metrics against a feature tree (absorption, hedging) read each
    feature's latent from it.

    Not jittable (SciPy on the host, for one SAE).

    Args:
      W_dec: (d_sae, d_in) the SAE's decoder, one latent per row.
      dictionary: (n_features, d_in) the true directions.

    Returns:
      (n_features,) int64 latent indices.
    """
    W_dec, dictionary = np.asarray(W_dec, np.float64), np.asarray(dictionary, np.float64)
    learned = W_dec / np.maximum(np.linalg.norm(W_dec, axis=-1, keepdims=True), 1e-12)
    truth = dictionary / np.maximum(np.linalg.norm(dictionary, axis=-1, keepdims=True), 1e-12)
    cos = np.abs(truth @ learned.T)  # (feature, latent)
    rows, cols = linear_sum_assignment(-cos)
    out = np.full(len(truth), -1, np.int64)
    out[rows] = cols
    return out
