"""Superposition of datapoints on a finite dataset (Henighan et al. 2023): how many hidden
dimensions each training point gets, how the hidden space is shared, and the norms that mark the
memorizing regime.

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

__all__ = ["datapoint_dimensionality", "hidden_space_fraction", "weight_norm"]


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
def hidden_space_fraction(vectors):
    r"""The share of the hidden space a set of vectors takes: Σ_i D_i / d_hidden, in [0, 1].

    With a model's W (rows = features) it is the share given to features; with its training
    points' hidden vectors h it is the share given to datapoints (Σ D_X,i / d_hidden). Henighan
    et al.'s two regimes: datapoints take the space at small T, features at large T.

    Args:
      vectors: (..., vector, hidden) feature embeddings W_i or hidden vectors h_i.

    Returns:
      (...) Σ_i D_i / d_hidden with D_i = ‖v_i‖² / Σ_j (v̂_i · v_j)².
    """
    vectors = jnp.asarray(vectors)
    return jnp.sum(datapoint_dimensionality(vectors), axis=-1) / vectors.shape[-1]


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
