"""How well an SAE reconstructs its input: MSE, variance explained, and shrinkage.

Every function takes the inputs x and reconstructions x̂ = SAE(x) with shape (..., batch, d_in)
(SAELens's `sae_in` and `sae_out`) and reduces the batch, so a sweep's evaluation batch
(*grid, batch, d_in) gives one number per grid point. Sums run over d_in, means over the batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis._checks import check_same_trailing
from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import norm

__all__ = [
    "explained_variance",
    "fraction_of_variance_unexplained",
    "l2_ratio",
    "mse",
    "relative_reconstruction_bias",
]

_CORE = ("batch", "d_in")


def _pair(caller, x, x_hat):
    x, x_hat = jnp.asarray(x), jnp.asarray(x_hat)
    if x.ndim < 2:
        raise ValueError(f"{caller}: x needs shape (..., batch, d_in), got {x.shape}")
    check_same_trailing(caller, ("x", "x_hat"), x, x_hat, axes=2)
    dtype = jnp.result_type(x.dtype, x_hat.dtype, jnp.float32)
    return x.astype(dtype), x_hat.astype(dtype)


def _safe_ratio(numerator, denominator):
    """numerator / denominator, with 0/0 = 0 (and finite gradients there)."""
    defined = denominator != 0
    ratio = numerator / jnp.where(defined, denominator, 1.0)
    return jnp.where(defined, ratio, jnp.where(numerator == 0, 0.0, jnp.inf * jnp.sign(numerator)))


@labeled(_CORE, _CORE, out=())
@jax.jit
def mse(x, x_hat):
    r"""(1/B) Σ_b ‖x̂_b − x_b‖²: the squared error summed over d_in, averaged over the batch.

    SAELens's `mse_loss` (the reconstruction term of the standard SAE loss); d_in times the
    per-element mean squared error.

    Args:
      x: (..., batch, d_in) inputs.
      x_hat: (..., batch, d_in) reconstructions.

    Returns:
      (...) ≥ 0.
    """
    x, x_hat = _pair("mse", x, x_hat)
    return jnp.mean(jnp.sum((x_hat - x) ** 2, axis=-1), axis=-1)


def _fvu(x, x_hat):
    residual = jnp.sum((x - x_hat) ** 2, axis=(-2, -1))
    total = jnp.sum((x - jnp.mean(x, axis=-2, keepdims=True)) ** 2, axis=(-2, -1))
    return _safe_ratio(residual, total)


@labeled(_CORE, _CORE, out=())
@jax.jit
def fraction_of_variance_unexplained(x, x_hat):
    r"""FVU = Σ_b ‖x_b − x̂_b‖² / Σ_b ‖x_b − x̄‖², x̄ = (1/B) Σ_b x_b the batch mean.

    The variance is measured about the batch mean, so adding the same vector to every x_b and
    x̂_b leaves FVU unchanged; the mean itself is an FVU = 1 reconstruction. (One SAELens release
    divided by Σ_b ‖x_b‖², the spread about zero, which flatters SAEs on inputs with a large mean;
    that is a bug, not an option here.) FVU ≥ 0, 0 for a perfect reconstruction. A batch whose
    inputs are all equal has no variance: FVU is 0 if it is reconstructed exactly, else +inf.

    Args:
      x: (..., batch, d_in) inputs.
      x_hat: (..., batch, d_in) reconstructions.

    Returns:
      (...).
    """
    x, x_hat = _pair("fraction_of_variance_unexplained", x, x_hat)
    return _fvu(x, x_hat)


@labeled(_CORE, _CORE, out=())
@jax.jit
def explained_variance(x, x_hat):
    r"""1 − FVU = 1 − Σ_b ‖x_b − x̂_b‖² / Σ_b ‖x_b − x̄‖², the variance about the mean explained.

    1 for a perfect reconstruction, 0 for predicting the batch mean, negative when worse than
    that. See `fraction_of_variance_unexplained` for the conventions (about the mean; a batch
    without variance gives 1 or −inf).

    Args:
      x: (..., batch, d_in) inputs.
      x_hat: (..., batch, d_in) reconstructions.

    Returns:
      (...) ≤ 1.
    """
    x, x_hat = _pair("explained_variance", x, x_hat)
    return 1.0 - _fvu(x, x_hat)


@labeled(_CORE, _CORE, out=())
@jax.jit
def l2_ratio(x, x_hat):
    r"""(1/|B₊|) Σ_{b ∈ B₊} ‖x̂_b‖ / ‖x_b‖ over the examples B₊ with x_b ≠ 0 (SAELens's l2_ratio).

    Below 1 when reconstructions are shrunk towards zero (an L1 penalty's shrinkage). Examples
    with x_b = 0 have no ratio and are left out (SAELens divides those by 1 instead); a batch of
    zero inputs gives 0. Unchanged by a rotation of d_in applied to both, and by scaling both by
    the same c ≠ 0.

    Args:
      x: (..., batch, d_in) inputs.
      x_hat: (..., batch, d_in) reconstructions.

    Returns:
      (...) ≥ 0.
    """
    x, x_hat = _pair("l2_ratio", x, x_hat)
    x_norm = norm(x)
    nonzero = x_norm > 0
    ratios = jnp.where(nonzero, norm(x_hat) / jnp.where(nonzero, x_norm, 1.0), 0.0)
    count = jnp.sum(nonzero, axis=-1)
    return jnp.sum(ratios, axis=-1) / jnp.maximum(count, 1)


@labeled(_CORE, _CORE, out=())
@jax.jit
def relative_reconstruction_bias(x, x_hat):
    r"""γ = E_b ‖x̂_b‖² / E_b [x_b · x̂_b]   (Rajamanoharan et al. 2024, Gated SAEs).

    1/γ is the scale β that minimises E ‖β x̂ − x‖², so γ = 1 for unbiased reconstructions and
    γ < 1 for reconstructions shrunk towards zero; γ(c x̂) = c γ(x̂). x̂ = 0 gives 0 (the limit of
    ever stronger shrinkage); x̂ ≠ 0 orthogonal to x on average gives +inf, and x̂ pointing away
    from x on average a negative γ.

    Args:
      x: (..., batch, d_in) inputs.
      x_hat: (..., batch, d_in) reconstructions.

    Returns:
      (...).
    """
    x, x_hat = _pair("relative_reconstruction_bias", x, x_hat)
    squared = jnp.mean(jnp.sum(x_hat * x_hat, axis=-1), axis=-1)
    overlap = jnp.mean(jnp.sum(x * x_hat, axis=-1), axis=-1)
    return _safe_ratio(squared, overlap)
