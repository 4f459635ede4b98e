"""How features form over training, from snapshots of W taken at increasing steps.

D_i and ‖W_i‖ over training are `feature_dimensionality` and `feature_norms` applied to the
snapshot array (..., step, feature, hidden); this module adds what needs the step axis itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import xarray as xr

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import unit

__all__ = ["direction_drift", "formation_step"]


@labeled(("step", "feature", "hidden"), out=("step", "feature"))
@jax.jit
def direction_drift(W_snapshots):
    r"""cos(W_i(t), W_i(T)): how far feature i's direction at snapshot t is from its final one.

    Rises to 1 at the last snapshot T as a feature settles; 0 where either vector is zero.

    Args:
      W_snapshots: (..., step, feature, hidden), snapshots in training order.

    Returns:
      (..., step, feature) in [−1, 1].
    """
    u = unit(W_snapshots)
    return jnp.sum(u * u[..., -1:, :, :], axis=-1)


@labeled(("step", "feature"), ("step",), out=("feature",), name="formation_step")
@jax.jit
def _formation_step(norms, steps, threshold):
    norms = jnp.asarray(norms)
    above = norms > threshold
    # stays[t] = above[t] and above[t + 1] and … and above[T]
    stays = jnp.flip(jnp.cumprod(jnp.flip(above, axis=-2), axis=-2), axis=-2).astype(bool)
    first = jnp.argmax(stays, axis=-2)
    if steps is None:
        steps = jnp.arange(norms.shape[-2])
    steps = jnp.broadcast_to(jnp.asarray(steps)[..., None], norms.shape)
    step = jnp.take_along_axis(steps, first[..., None, :], axis=-2)[..., 0, :]
    return jnp.where(stays[..., -1, :], step, jnp.nan)


def formation_step(norms, steps=None, threshold: float = 0.5):
    r"""min{s_t : ‖W_i(t')‖ > threshold for every t' ≥ t}: when feature i forms for good.

    NaN for a feature whose last norm is at or below the threshold.

    Args:
      norms: (..., step, feature), e.g. `feature_norms` of snapshots (..., step, feature, hidden).
      steps: (..., step) the training step of each snapshot. None: the snapshot index, or the
        step dim's coordinate when `norms` is a DataArray that has one.
      threshold: the norm a formed feature's embedding exceeds.

    Returns:
      (..., feature) float32 (exact for steps up to 2²⁴): a value from `steps`, or NaN.
    """
    if steps is None and isinstance(norms, xr.DataArray):
        step_dim = "step" if "step" in norms.dims else norms.dims[-2]
        if step_dim in norms.coords:
            steps = norms[step_dim]
    return _formation_step(norms, steps, threshold)
