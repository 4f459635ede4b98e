"""How many hidden dimensions each feature gets: D_i, D*, norms and which features are represented.

All functions take W with row `W[..., i, :]` the embedding of feature i, shape
(..., feature, hidden), and map over the leading axes. Applied to training snapshots
(..., step, feature, hidden) they give the same quantities over training.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import NORM_FLOOR, clamped_unit, norm

__all__ = [
    "capacity",
    "dimensions_per_feature",
    "feature_dimensionality",
    "feature_norms",
    "n_represented",
    "represented_features",
]


@labeled(("feature", "hidden"), out=("feature",))
@jax.jit
def feature_dimensionality(W):
    r"""Feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)²   (Elhage et al. 2022).

    Ŵ_i = W_i / max(‖W_i‖, 1e-6), as in the TMS notebook. The same quantity is Scherlis et al.'s
    (2022) capacity C_i = (W_i·W_i)² / Σ_j (W_i·W_j)², so `capacity` is this function.

    0 ≤ D_i ≤ 1 and Σ_i D_i ≤ d_hidden. D_i is 1 for a feature with a dimension to itself, 1/2
    for an antipodal pair, 2/5 for a regular pentagon in a plane, 3/4 for a tetrahedron; it is
    unchanged by a rotation of the hidden space and by W → cW. A feature with ‖W_i‖ < 1e-6 gets
    D_i = 0 (the notebook's formula gives 0/0 at zero norm and a ratio above 1 just over it).

    Args:
      W: (..., feature, hidden) embeddings, one row per feature.

    Returns:
      D: (..., feature).
    """
    W = jnp.asarray(W)
    norms = norm(W)
    overlap = clamped_unit(W) @ jnp.swapaxes(W, -1, -2)  # [..., i, j] = Ŵ_i · W_j
    denominator = jnp.sum(overlap**2, axis=-1)
    represented = norms >= NORM_FLOOR
    return jnp.where(represented, norms**2 / jnp.where(represented, denominator, 1.0), 0.0)


#: Scherlis et al.'s capacity C_i: the same quantity as `feature_dimensionality`'s D_i.
capacity = feature_dimensionality


@labeled(("feature", "hidden"), out=())
@jax.jit
def dimensions_per_feature(W):
    r"""Dimensions per feature D* = d_hidden / ‖W‖_F²   (Elhage et al. 2022).

    ‖W‖_F² = Σ_i ‖W_i‖² counts the features represented (a represented feature has norm about 1),
    so D* is the number of hidden dimensions per represented feature: 1 for an orthonormal set
    of d_hidden features, 1/2 for antipodal pairs. W = 0 gives +inf.

    Args:
      W: (..., feature, hidden).

    Returns:
      D*: (...).
    """
    W = jnp.asarray(W)
    return W.shape[-1] / jnp.sum(W * W, axis=(-2, -1))


@labeled(("feature", "hidden"), out=("feature",))
@jax.jit
def feature_norms(W):
    """‖W_i‖₂, the length of each feature's embedding.

    Args:
      W: (..., feature, hidden).

    Returns:
      (..., feature).
    """
    return norm(W)


@labeled(("feature", "hidden"), out=("feature",))
@jax.jit
def represented_features(W, threshold: float = 0.5):
    """Whether each feature is represented: ‖W_i‖ > threshold.

    Args:
      W: (..., feature, hidden).
      threshold: the norm a feature's embedding must exceed.

    Returns:
      (..., feature) bool.
    """
    return norm(W) > threshold


@labeled(("feature", "hidden"), out=())
@jax.jit
def n_represented(W, threshold: float = 0.5):
    """The number of represented features, #{i : ‖W_i‖ > threshold}.

    Args:
      W: (..., feature, hidden).
      threshold: the norm a feature's embedding must exceed.

    Returns:
      (...) int.
    """
    return jnp.sum(norm(W) > threshold, axis=-1)
