"""Superposition of datapoints on a finite dataset (Henighan et al. 2023): how many hidden
dimensions each training point gets, the dimensions per represented feature or datapoint that tell
the two regimes apart, and the weight norm that peaks in the memorizing regime.

A model trained on T samples can store the *samples* rather than the features: the hidden vectors
h_i = W x_i of its training points then form a regular polygon, the way features do in the
infinite-data model. The datapoint dimensionality D_X,i measures this exactly as D_i measures a
feature (`toymodels.analysis.dimensionality`), with h_i in place of W_i.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import NORM_FLOOR, norm

__all__ = ["datapoint_dimensionality", "represented_dimensionality", "weight_norm"]


@labeled(("sample", "hidden"), out=("sample",))
@jax.jit
def datapoint_dimensionality(h):
    r"""Datapoint dimensionality D_X,i = ‖h_i‖² / Σ_j (ĥ_i · h_j)²   (Henighan et al. 2023).

    h_i = W x_i is training point i's hidden vector and ĥ_i = h_i / ‖h_i‖. The sum runs over
    the whole training set, j = i included; it is computed as ‖R ĥ_i‖² with R the
    (d_hidden × d_hidden) factor of h's QR decomposition, so T points cost O(T d²), not O(T²).
    As for D_i: 0 < D_X,i ≤ 1, Σ_i D_X,i ≤ d_hidden; T ≥ 3 points on a regular T-gon in a plane have D_X = 2/T each,
    orthogonal points 1; a rotation and h → c h leave it unchanged. A point with ‖h_i‖ < 1e-6
    gets 0.

    Args:
      h: (..., sample, hidden) the training points' hidden vectors.

    Returns:
      D_X: (..., sample).
    """
    h = jnp.asarray(h)
    norms = norm(h)
    represented = norms >= NORM_FLOOR
    unit = h / jnp.where(represented, norms, 1.0)[..., None]
    # Σ_j (ĥ_i · h_j)² = ‖H ĥ_i‖² = ‖R ĥ_i‖² for H = QR: a sum of squares from a backward-stable
    # factor, where forming G = HᵀH in float32 would lose the small points against the large.
    r = jnp.linalg.qr(h, mode="r")  # (..., min(sample, hidden), hidden)
    denominator = jnp.sum((unit @ jnp.swapaxes(r, -1, -2)) ** 2, axis=-1)
    return jnp.where(represented, norms**2 / jnp.where(represented, denominator, 1.0), 0.0)


@labeled(("vector", "hidden"), out=())
@jax.jit
def represented_dimensionality(vectors, threshold: float = 0.5):
    r"""The mean dimensionality of the represented vectors: mean of D_i over ‖v_i‖ > threshold.

    With a model's W (rows = features) it is the dimensions per represented feature, with its
    training points' hidden vectors h the dimensions per represented datapoint (D_X,i). This is
    what tells Henighan et al.'s regimes apart: datapoints in superposition have D_X ≈ m / T each
    (a T-gon in m = 2) while the features are scattered and small; features in superposition have
    D ≈ 2/5 (a pentagon) while each datapoint, sharing its features' directions with many others,
    gets little. (The plain sum Σ_i D_i / m does not: it is 1 for any balanced spanning set, a
    pentagon of features and a T-gon of datapoints alike.) D_i is computed against every vector,
    represented or not; NaN when none is represented.

    Args:
      vectors: (..., vector, hidden) feature embeddings W_i or hidden vectors h_i.
      threshold: the norm a vector must exceed to count (0.5, as `represented_features`).

    Returns:
      (...) mean_{i: ‖v_i‖ > threshold} D_i.
    """
    vectors = jnp.asarray(vectors)
    d = datapoint_dimensionality(vectors)
    represented = norm(vectors) > threshold
    count = jnp.sum(represented, axis=-1)
    total = jnp.sum(jnp.where(represented, d, 0.0), axis=-1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


@labeled(("feature", "hidden"), out=())
@jax.jit
def weight_norm(W):
    r"""The weights' Frobenius norm ‖W‖_F = √(Σ_ij W_ij²), which Henighan et al. find peaks in
    the memorizing regime (near T ≈ 30 at their size).

    Args:
      W: (..., feature, hidden).

    Returns:
      (...).
    """
    W = jnp.asarray(W)
    return jnp.sqrt(jnp.sum(W * W, axis=(-2, -1)))
