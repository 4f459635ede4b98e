"""Synthetic sparse features, generated inside the compiled training step.

One uniform draw u per (example, feature) makes both the mask and the magnitude: a feature with
probability p is active when u < p, and then u / p is again uniform on [0, 1). That halves the
random numbers of the usual `rand(mask) * rand(magnitude)` recipe, and random bits are what
costs most on a CPU.

The draws come from a *stream* that depends only on the model's seed and the step, so models that
differ only in swept values (sparsity, importance, lr …) see the same draws: a point's result
never depends on what else is in the grid, and the trainer draws each stream once per chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class FeatureLayout(NamedTuple):
    """Which uniform column gates and scales each feature. Static: built once per config.

    gate: (feature,) column whose draw decides whether the feature fires;
    flip: (feature,) use 1 − u for the gate (the second feature of an anticorrelated pair);
    own_magnitude: (feature,) magnitude is the feature's own draw u_i (the second feature of a
        correlated pair, whose gate is its partner's draw) instead of gate_u / p.
    """

    gate: tuple[int, ...]
    flip: tuple[bool, ...]
    own_magnitude: tuple[bool, ...]

    @classmethod
    def make(cls, n_features: int, n_correlated_pairs: int = 0, n_anticorrelated_pairs: int = 0):
        gate = list(range(n_features))
        flip = [False] * n_features
        own = [False] * n_features
        for k in range(n_correlated_pairs):
            gate[2 * k + 1] = 2 * k
            own[2 * k + 1] = True
        for k in range(n_anticorrelated_pairs):
            i = 2 * (n_correlated_pairs + k)
            gate[i + 1] = i
            flip[i + 1] = True
        return cls(tuple(gate), tuple(flip), tuple(own))

    @property
    def independent(self) -> bool:
        return self.gate == tuple(range(len(self.gate)))


def features_from_uniform(
    u: jax.Array, feature_probability: jax.Array, layout: FeatureLayout, signed: bool = False
) -> jax.Array:
    """Sparse features from uniform draws, feature-major.

    Args:
      u: (feature, ...) draws from U[0, 1); trailing axes are examples.
      feature_probability: (feature,) probability p_i that feature i is non-zero.
      layout: which draw gates each feature (independent, correlated or anticorrelated pairs).
      signed: magnitudes on [−1, 1) instead of [0, 1).

    Returns:
      x: (feature, ...) with x_i = m_i · 1[g_i < p_i], g_i the gating draw and m_i ~ U[0, 1)
      (mapped to 2 m_i − 1 if signed).
    """
    col = (slice(None),) + (None,) * (u.ndim - 1)
    p = feature_probability[col]
    if layout.independent:
        g = u
    else:
        g = u[np.asarray(layout.gate)]
        g = jnp.where(np.asarray(layout.flip)[col], 1.0 - g, g)
    magnitude = g / p
    if any(layout.own_magnitude):
        magnitude = jnp.where(np.asarray(layout.own_magnitude)[col], u, magnitude)
    if signed:
        magnitude = 2.0 * magnitude - 1.0
    return jnp.where(g < p, magnitude, 0.0)


def sample_features(key, batch_size: int, feature_probability, layout: FeatureLayout,
                    signed: bool = False) -> jax.Array:
    """(batch, feature) sparse features from a PRNG key; see `features_from_uniform`."""
    u = jax.random.uniform(key, (len(layout.gate), batch_size))
    return features_from_uniform(u, jnp.asarray(feature_probability), layout, signed).T


def power_law_probabilities(n_features: int, mean: float, exponent: float) -> np.ndarray:
    r"""Power-law feature frequencies: p_i = min(1, ε n i^−a / Σ_j j^−a), i = 1 … n.

    Jermyn et al.'s `sample_vectors_power_law`: frequencies ∝ i^−a (a = 1.1 in their runs),
    rescaled so that their mean is ε = `mean`, then clipped at 1. Clipping only happens when the
    most frequent features would pass 1, and then lowers the mean below ε (as in their code).

    Args:
      n_features: n.
      mean: ε in (0, 1].
      exponent: a ≥ 0 (0 gives every feature ε).

    Returns:
      (n_features,) float64 probabilities, non-increasing in i.
    """
    ranks = np.arange(1, n_features + 1, dtype=float)
    weights = ranks ** -float(exponent)
    return np.minimum(mean * n_features * weights / weights.sum(), 1.0)


def random_embeddings(n_features: int, d_embed: int, seed: int, count: int = 1) -> np.ndarray:
    r"""`count` fixed random embeddings of n features in d dims, with unit-norm rows.

    As Jermyn et al.'s `make_random_embedder`: a Gaussian (n, d) matrix's left singular vectors
    U (orthonormal columns, nearly orthogonal rows when d ≪ n), each row then scaled to unit
    norm. Feature i is embedded as row U[i]; a feature vector v ∈ R^n as x = v U ∈ R^d. The
    matrices are drawn one after another from `numpy.random.default_rng(seed)` (their code draws
    from NumPy's unseeded global generator, so their exact matrices cannot be reproduced).

    Args:
      n_features: n ≥ d_embed.
      d_embed: d ≥ 1.
      seed: the generator's seed.
      count: how many matrices (2 for the random-projection task: input, then target).

    Returns:
      (count, n_features, d_embed) float32.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((count, n_features, d_embed), np.float32)
    for c in range(count):
        u, _, _ = np.linalg.svd(rng.standard_normal((n_features, d_embed)), full_matrices=False)
        out[c] = u / np.linalg.norm(u, axis=1, keepdims=True)
    return out
