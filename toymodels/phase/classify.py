r"""Which phase a trained (or theoretical) W is in, for the TMS phase-change experiments.

The experiments of "Superposition as a Phase Change" (Elhage et al. 2022) have n = 2 features in
m = 1 dimension, or n = 3 in m = 2, with the *last* feature the "extra" one whose relative
importance is varied. Its phase is read off W alone, by asking two questions of the extra feature:
is it represented, and if so, does it share its direction with another represented feature?

    code  PHASES[code]       the extra feature e = n − 1 …
    0     "not represented"  has ‖W_e‖ ≤ threshold (or, when b is given, never fires alone:
                             ‖W_e‖² + b_e ≤ 0): it gets no dimension.
    1     "dedicated"        is represented, and every other represented feature j has
                             |cos(W_e, W_j)| ≤ overlap: the extra feature has a direction of its
                             own. For m = 1 this means it is the only represented feature (the
                             others were dropped to make room); for m = 2 it may take the
                             dimension of a dropped feature, or sit orthogonal to a pair of
                             features that are antipodal to each other.
    2     "superposition"    is represented, and some other represented feature j has
                             |cos(W_e, W_j)| > overlap: they share a direction. For m = 1, any
                             two represented features do (|cos| = 1; antipodal, W_0 = −c W_1, at
                             the optimum); for m = 2, e.g. the extra feature antipodal to one of
                             the others, or three features as a triangle (|cos| = ½ if regular).

A feature that is not represented counts for nothing: an extra feature sharing its direction
only with features below the threshold is "dedicated". The rule is written for the paper's
n = 2, m = 1 and n = 3, m = 2, and applies unchanged to any n ≥ 1 and m.

`overlap` defaults to 0.3, below the ½ of a regular triangle and well above the |cos| of a trained
orthogonal pair. The phase is unchanged by a rotation or reflection of the hidden space, by the
sign of any feature's row, by a permutation of the non-extra features, and by scaling a
represented feature's row up.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels.analysis._labeled import labeled
from toymodels.analysis._vectors import norm, unit

__all__ = ["PHASES", "agreement", "classify_phase", "lowest_loss"]

#: Phase names, indexed by the integer codes `classify_phase` returns.
PHASES = ("not represented", "dedicated", "superposition")


@labeled(("feature", "hidden"), ("feature",), out=())
def classify_phase(W, b=None, threshold: float = 0.5, overlap: float = 0.3):
    r"""The phase of the extra (last) feature: 0, 1 or 2, an index into `PHASES`.

    represented_i = ‖W_i‖ > threshold  (and, when b is given, ‖W_i‖² + b_i > 0: the feature alone
    at magnitude 1 gives a non-zero output x'_i = ReLU(‖W_i‖² + b_i));
    phase = 0 if the extra feature e = n − 1 is not represented, else 2 if some other represented
    feature j has |Ŵ_e · Ŵ_j| > overlap, else 1. See the module docstring for what they mean.

    Args:
      W: (..., feature, hidden) embeddings, one row per feature, the extra feature last.
      b: (..., feature) biases, or None to judge by the norms alone.
      threshold: the norm a represented feature's embedding must exceed.
      overlap: the |cosine| above which two represented features share a direction.

    Returns:
      (...) int32 phase codes (a DataArray with W's leading dims for a DataArray W).
    """
    return _classify(jnp.asarray(W), None if b is None else jnp.asarray(b), threshold, overlap)


@jax.jit
def _classify(W, b, threshold, overlap):
    norms = norm(W)
    represented = norms > threshold
    if b is not None:
        represented = represented & (norms**2 + b > 0)
    directions = unit(W)
    cosines = jnp.abs(jnp.sum(directions[..., :-1, :] * directions[..., -1:, :], axis=-1))
    shares = jnp.any(represented[..., :-1] & (cosines > overlap), axis=-1)
    return jnp.where(represented[..., -1], jnp.where(shares, 2, 1), 0).astype(jnp.int32)


def lowest_loss(results, dim="seed"):
    """Keep, at each grid point, the instance with the lowest loss along `dim` (the paper keeps
    the best of several trained models per point).

    Args:
      results: an `xarray.Dataset` with a `loss` variable that has the dim `dim` (variables
        without it are kept whole); or a mapping of name -> array with a "loss" entry, every
        array having the loss's axes first.
      dim: the dim to reduce (a name for a Dataset; an axis of the loss, an int, for arrays).

    Returns:
      The same kind of object indexed at the argmin of loss over `dim` (NaN losses skipped), that
      dim removed. For a Dataset, `dim`'s coordinate stays as a variable over the grid, saying
      which instance was kept.
    """
    if isinstance(results, xr.Dataset):
        if dim not in results["loss"].dims:
            raise ValueError(f"dim {dim!r} is not a dim of loss {results['loss'].dims}")
        return results.isel({dim: results["loss"].argmin(dim)})
    if not isinstance(results, Mapping) or "loss" not in results:
        raise ValueError("results must be an xarray.Dataset or a mapping with a 'loss' entry")
    loss = np.asarray(results["loss"])
    if not isinstance(dim, (int, np.integer)) or not -loss.ndim <= dim < loss.ndim:
        raise ValueError(f"dim must be an axis of loss (ndim {loss.ndim}); got {dim!r}")
    axis = int(dim) % loss.ndim
    index = np.expand_dims(np.nanargmin(loss, axis=axis), axis)
    out = {}
    for name, value in results.items():
        value = np.asarray(value)
        if value.shape[: loss.ndim] != loss.shape:
            raise ValueError(f"{name} has shape {value.shape}; its leading axes must be the "
                             f"loss's {loss.shape}")
        idx = index.reshape(index.shape + (1,) * (value.ndim - loss.ndim))
        out[name] = np.take_along_axis(value, idx, axis=axis).squeeze(axis)
    return out


def agreement(empirical_phase, theoretical_phase) -> float:
    """The fraction of grid points where two phase diagrams give the same code.

    DataArrays with the same dim names are matched by name (their coordinates must agree to
    1e-6 relative); otherwise the arrays are compared position by position and must have the
    same shape.
    """
    if (isinstance(empirical_phase, xr.DataArray) and isinstance(theoretical_phase, xr.DataArray)
            and set(empirical_phase.dims) == set(theoretical_phase.dims)):
        empirical_phase = empirical_phase.transpose(*theoretical_phase.dims)
        for d in theoretical_phase.dims:
            if d in empirical_phase.coords and d in theoretical_phase.coords:
                a, c = empirical_phase[d].values, theoretical_phase[d].values
                numeric = a.dtype.kind in "iuf" and c.dtype.kind in "iuf"
                same = a.shape == c.shape and (np.allclose(a, c, rtol=1e-6, atol=0) if numeric
                                               else np.array_equal(a, c))
                if not same:
                    raise ValueError(f"the two diagrams have different {d!r} coordinates")
    a, c = np.asarray(empirical_phase), np.asarray(theoretical_phase)
    if a.shape != c.shape:
        raise ValueError(f"phase diagrams must have the same shape; got {a.shape} and {c.shape}")
    if a.size == 0:
        raise ValueError("phase diagrams are empty")
    return float(np.mean(a == c))
