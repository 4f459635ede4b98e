"""How much features get in each other's way: interference, polysemanticity, net interference.

These are the quantities behind the TMS notebook's feature bar charts: bar length ‖W_i‖, bar
colour the polysemanticity ‖interference_i‖₂.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import xarray as xr

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import clamped_unit, norm

__all__ = ["interference", "net_interference", "polysemanticity"]


def _interference(W):
    W = jnp.asarray(W)
    overlap = clamped_unit(W) @ jnp.swapaxes(W, -1, -2)
    return overlap * (1 - jnp.eye(W.shape[-2], dtype=overlap.dtype))


@labeled(("feature", "hidden"), out=("feature", "feature_j"))
@jax.jit
def interference(W):
    r"""Interference of feature j on feature i: Ŵ_i · W_j for i ≠ j, and 0 on the diagonal.

    Ŵ_i = W_i / max(‖W_i‖, 1e-6) (the TMS notebook's `render_features` divides by
    1e-5 + ‖W_i‖ instead, which differs by under 1e-5 relative for a represented feature).
    Not symmetric: row i is what feature i's readout direction picks up from the others.

    Args:
      W: (..., feature, hidden).

    Returns:
      (..., feature, feature_j).
    """
    return _interference(W)


@labeled(("feature", "hidden"), out=("feature",))
@jax.jit
def polysemanticity(W):
    r"""Polysemanticity of feature i: ‖interference_i‖₂ = (Σ_{j≠i} (Ŵ_i · W_j)²)^½.

    The TMS bar colour: 0 for a feature orthogonal to all others.

    Args:
      W: (..., feature, hidden).

    Returns:
      (..., feature).
    """
    return norm(_interference(W))


def _net(W, feature_probability):
    return jnp.sum(_interference(W) ** 2 * jnp.asarray(feature_probability), axis=-1)


@labeled(("feature", "hidden"), ("feature",), out=("feature",), name="net_interference")
@jax.jit
def _net_per_feature(W, feature_probability):
    return _net(W, feature_probability)


@labeled(("feature", "hidden"), (), out=("feature",), name="net_interference")
@jax.jit
def _net_per_model(W, feature_probability):
    return _net(W, jnp.asarray(feature_probability)[..., None, None])


def net_interference(W, feature_probability):
    r"""Expected interference on feature i: Σ_j (Ŵ_i · W_j)² p_j over j ≠ i.

    Args:
      W: (..., feature, hidden).
      feature_probability: p_j, the probability that feature j is active: a scalar, or
        (..., feature). A DataArray without W's feature dim (a sweep's `feature_probability`
        coordinate, say) is one probability per model, broadcast against W by dim name.

    Returns:
      (..., feature).
    """
    p = feature_probability
    if isinstance(p, xr.DataArray):
        feature_dim = "feature"
        if isinstance(W, xr.DataArray) and "feature" not in W.dims:
            feature_dim = W.dims[-2]
        if feature_dim not in p.dims:
            return _net_per_model(W, p)
    return _net_per_feature(W, p)
