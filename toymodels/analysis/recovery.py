"""How well a learned dictionary recovers known directions: max cosine and MMCS.

Sharkey, Braun & Millidge (2022) score an SAE trained on data with known ground-truth features by
the mean max cosine similarity (MMCS); the same score compares two learned dictionaries.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import unit

__all__ = ["max_cosine", "mmcs"]


def _max_cosine(learned, truth):
    cosines = unit(truth) @ jnp.swapaxes(unit(learned), -1, -2)  # [..., true, learned]
    return jnp.max(cosines, axis=-1)


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
    ones; random directions in d dimensions score far lower. A zero vector has cosine 0.

    Args:
      learned: (..., n_learned, d).
      truth: (..., n_true, d).

    Returns:
      (...) in [−1, 1].
    """
    return jnp.mean(_max_cosine(learned, truth), axis=-1)
