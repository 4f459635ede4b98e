"""Norms and unit vectors that stay finite (values and gradients) at the zero vector."""

from __future__ import annotations

import jax.numpy as jnp

#: The TMS notebook's floor on ‖W_i‖ when it normalises a feature's embedding.
NORM_FLOOR = 1e-6


def norm(x, axis=-1, keepdims: bool = False):
    """‖x‖₂ along `axis`; 0 with a zero (not NaN) gradient at x = 0."""
    x = jnp.asarray(x)
    sq = jnp.sum(x * x, axis=axis, keepdims=keepdims)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def clamped_unit(x, floor: float = NORM_FLOOR):
    """x / max(‖x‖, floor) along the last axis, as the TMS notebook normalises W_i."""
    x = jnp.asarray(x)
    return x / jnp.maximum(norm(x, keepdims=True), floor)


def unit(x):
    """x / ‖x‖ along the last axis, for cosines; a zero vector stays zero.

    Dividing by max|x| first keeps tiny and huge vectors from under- or overflowing in ‖x‖².
    """
    x = jnp.asarray(x)
    scale = jnp.max(jnp.abs(x), axis=-1, keepdims=True)
    nonzero = scale > 0
    y = x / jnp.where(nonzero, scale, 1.0)
    return y / jnp.where(nonzero, norm(y, keepdims=True), 1.0)
