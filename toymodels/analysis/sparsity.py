"""How sparse an SAE's latents are: L0, how often each latent fires, dead and dense latents.

Every function takes latent activations f = feature_acts with shape (..., batch, d_sae)
(SAELens's `feature_acts`) and reduces the batch. A latent *fires* on an example when its
activation is non-zero; for ReLU, TopK, JumpReLU and gated SAEs, whose activations are ≥ 0, that
is SAELens's f > 0. Densities measured on one batch are multiples of 1/batch: to tell rare latents
from dead ones, pass a batch much larger than 1/density (or average `latent_density` over
batches yourself and use `density_histogram`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels.analysis._checks import check_in_range
from toymodels.analysis._labeled import labeled

__all__ = [
    "DENSITY_BINS",
    "dead_fraction",
    "dead_latents",
    "dense_fraction",
    "dense_latents",
    "density_histogram",
    "l0",
    "latent_density",
]

_CORE = ("batch", "latent")

#: Default log10-density bin edges of `density_histogram`: quarter decades from 1e-8 to 1.
DENSITY_BINS = np.linspace(-8.0, 0.0, 33)


def _fires(feature_acts):
    feature_acts = jnp.asarray(feature_acts)
    if feature_acts.ndim < 2:
        raise ValueError(
            f"feature_acts needs shape (..., batch, d_sae), got {feature_acts.shape}"
        )
    return feature_acts != 0


def _density(feature_acts):
    return jnp.mean(_fires(feature_acts), axis=-2, dtype=jnp.float32)


@labeled(_CORE, out=())
@jax.jit
def l0(feature_acts):
    r"""L0 = (1/B) Σ_b #{i : f_bi ≠ 0}: the mean number of latents firing per example.

    Args:
      feature_acts: (..., batch, d_sae) latent activations.

    Returns:
      (...) in [0, d_sae].
    """
    return jnp.mean(jnp.sum(_fires(feature_acts), axis=-1, dtype=jnp.float32), axis=-1)


@labeled(_CORE, out=("latent",))
@jax.jit
def latent_density(feature_acts):
    r"""p_i = (1/B) #{b : f_bi ≠ 0}: the fraction of examples latent i fires on (its density).

    Σ_i p_i = L0.

    Args:
      feature_acts: (..., batch, d_sae).

    Returns:
      (..., d_sae) in [0, 1].
    """
    return _density(feature_acts)


@jax.jit
def _dead(feature_acts, threshold):
    return _density(feature_acts) <= threshold


@jax.jit
def _dense(feature_acts, threshold):
    return _density(feature_acts) > threshold


@labeled(_CORE, out=("latent",))
def dead_latents(feature_acts, threshold: float = 0.0):
    r"""Whether each latent is dead: p_i ≤ threshold (by default, it never fires on the batch).

    ARENA's toy SAEs call a latent dead when it fired on at most 1e-8 of a window's examples,
    which for any practical window is `threshold=0`.

    Args:
      feature_acts: (..., batch, d_sae).
      threshold: the density at or below which a latent is dead, in [0, 1).

    Returns:
      (..., d_sae) bool.
    """
    check_in_range("dead_latents", "threshold", threshold, 0, 1, closed="left")
    return _dead(feature_acts, threshold)


@labeled(_CORE, out=())
def dead_fraction(feature_acts, threshold: float = 0.0):
    r"""(1/d_sae) #{i : p_i ≤ threshold}: the fraction of dead latents (see `dead_latents`).

    Args:
      feature_acts: (..., batch, d_sae).
      threshold: the density at or below which a latent is dead, in [0, 1).

    Returns:
      (...) in [0, 1].
    """
    check_in_range("dead_fraction", "threshold", threshold, 0, 1, closed="left")
    return jnp.mean(_dead(feature_acts, threshold), axis=-1)


@labeled(_CORE, out=("latent",))
def dense_latents(feature_acts, threshold: float = 0.1):
    r"""Whether each latent is dense: p_i > threshold, firing on more than that share of examples.

    The default 0.1 (a latent on more than one example in ten) is a common cut for the
    hard-to-interpret dense latents of large SAEs; it is a convention, not a published constant.

    Args:
      feature_acts: (..., batch, d_sae).
      threshold: the density a dense latent exceeds, in [0, 1).

    Returns:
      (..., d_sae) bool.
    """
    check_in_range("dense_latents", "threshold", threshold, 0, 1, closed="left")
    return _dense(feature_acts, threshold)


@labeled(_CORE, out=())
def dense_fraction(feature_acts, threshold: float = 0.1):
    r"""(1/d_sae) #{i : p_i > threshold}: the fraction of dense latents (see `dense_latents`).

    Args:
      feature_acts: (..., batch, d_sae).
      threshold: the density a dense latent exceeds, in [0, 1).

    Returns:
      (...) in [0, 1].
    """
    check_in_range("dense_fraction", "threshold", threshold, 0, 1, closed="left")
    return jnp.mean(_dense(feature_acts, threshold), axis=-1)


@labeled(("latent",), out=("log10_density",), name="density_histogram")
@jax.jit
def _density_histogram(density, edges):
    density = jnp.asarray(density)
    n_bins = edges.shape[0] - 1
    alive = density > 0
    log_density = jnp.log10(jnp.where(alive, density, 1.0))
    bin_index = jnp.clip(jnp.searchsorted(edges, log_density, side="right") - 1, 0, n_bins - 1)
    in_bin = jax.nn.one_hot(bin_index, n_bins, dtype=jnp.int32) * alive[..., None]
    dead = jnp.sum(~alive, axis=-1, dtype=jnp.int32)
    return jnp.concatenate([dead[..., None], jnp.sum(in_bin, axis=-2)], axis=-1)


def density_histogram(density, bins=DENSITY_BINS):
    r"""Histogram of log10 p_i over the latents, with the dead latents (p_i = 0) counted first.

    Entry 0 counts the latents with p_i = 0 (log10 p = −inf); entry k ≥ 1 counts those with
    bins[k−1] ≤ log10 p_i < bins[k], the last bin closed on the right as in `numpy.histogram`.
    Densities below bins[0] are counted in the first bin and above bins[−1] in the last, so the
    entries sum to d_sae. A DataArray result has the coordinate `log10_density`: −inf, then
    the bin centres, ready for `counts[..., 1:].plot.step()`.

    Args:
      density: (..., d_sae) densities in [0, 1], e.g. from `latent_density`.
      bins: the n_bins + 1 bin edges in log10 density, finite and strictly increasing; by
        default `DENSITY_BINS`, quarter decades from 1e-8 to 1.

    Returns:
      (..., 1 + n_bins) int32 counts.
    """
    edges = np.asarray(bins, np.float64)
    if edges.ndim != 1 or len(edges) < 2:
        raise ValueError(f"density_histogram: bins must be ≥ 2 edges in a 1-D array, got {edges}")
    if not (np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)):
        raise ValueError(
            f"density_histogram: bins must be finite and strictly increasing, got {edges}"
        )
    counts = _density_histogram(density, edges.astype(np.float32))
    if isinstance(counts, xr.DataArray):
        centres = np.concatenate([[-np.inf], (edges[:-1] + edges[1:]) / 2])
        counts = counts.assign_coords(log10_density=centres)
    return counts
