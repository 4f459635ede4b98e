"""The geometry of superposition: D_i's named fractions and the polytopes features form.

Elhage et al. (2022) found features organised into small polytopes in orthogonal subspaces (a
"tegum product"): each polytope's features share their subspace evenly, so D_i sits on a
fraction set by the polytope. k features evenly spread around a plane give 2/k (pentagon 2/5);
d + 1 features at the vertices of a regular simplex in d dimensions give d/(d + 1) (triangle
2/3, tetrahedron 3/4); eight at a square antiprism in 3-D give 3/8. In trained models only a
minority of features sit on a line; the effect shows as dense clusters of D_i on them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.sparse.csgraph import connected_components

from toymodels.analysis._labeled import labeled
from toymodels.analysis.dimensionality import feature_dimensionality

__all__ = [
    "FRACTION_LINES",
    "POLYTOPES",
    "POLYTOPE_KINDS",
    "Polytopes",
    "fraction_line_counts",
    "nearest_fraction",
    "polytope_counts",
    "polytope_groups",
    "polytope_vertices",
]

#: The named values of D_i, largest first: name → fraction.
FRACTION_LINES: dict[str, float] = {
    "dedicated": 1.0,
    "5-simplex": 5 / 6,
    "4-simplex": 4 / 5,
    "tetrahedron": 3 / 4,
    "triangle": 2 / 3,
    "antipodal": 1 / 2,
    "pentagon": 2 / 5,
    "square antiprism": 3 / 8,
    "hexagon": 1 / 3,
}


def _nearest(D, values):
    """The index of the line nearest each D, and the distance to it."""
    distance = jnp.abs(jnp.asarray(D)[..., None] - values)
    return jnp.argmin(distance, axis=-1), jnp.min(distance, axis=-1)


def _values(lines: dict[str, float]) -> np.ndarray:
    # Passed to jit as an array: a dict would come back in sorted-key order.
    return np.asarray(list(lines.values()), dtype=np.float32)


@labeled((), out=(), name="nearest_fraction")
@jax.jit
def _nearest_fraction(D, tol, values):
    index, distance = _nearest(D, values)
    return jnp.where(distance <= tol, values[index], jnp.nan)


def nearest_fraction(D, tol: float = 0.02, lines: dict[str, float] = FRACTION_LINES):
    r"""The named fraction nearest D_i, when it is within tol: argmin_f |D_i − f| if ≤ tol, else NaN.

    Args:
      D: (...) dimensionalities, e.g. `feature_dimensionality(W)`.
      tol: how far from a line D_i may sit.
      lines: name → fraction; `FRACTION_LINES` by default.

    Returns:
      (...) float: a value of `lines`, or NaN.
    """
    return _nearest_fraction(D, tol, _values(lines))


@labeled(("feature",), out=("fraction",), name="fraction_line_counts")
@jax.jit
def _fraction_line_counts(D, tol, values):
    index, distance = _nearest(D, values)
    on_line = (distance <= tol)[..., None] & (index[..., None] == jnp.arange(len(values)))
    return jnp.sum(on_line, axis=-2)


def fraction_line_counts(D, tol: float = 0.02, lines: dict[str, float] = FRACTION_LINES):
    r"""n_f = #{i : f is the line nearest D_i and |D_i − f| ≤ tol}, for each named fraction f.

    Each feature counts once at most, on its nearest line (with tol = 0.02 the windows of 2/5 and
    3/8 overlap).

    Args:
      D: (..., feature) dimensionalities.
      tol: how far from a line D_i may sit.
      lines: name → fraction; `FRACTION_LINES` by default.

    Returns:
      (..., fraction) int, in the order of `lines`. A DataArray result has a `fraction`
      coordinate holding the values and a `line` coordinate holding the names.
    """
    counts = _fraction_line_counts(D, tol, _values(lines))
    if isinstance(counts, xr.DataArray):
        counts = counts.assign_coords(
            fraction=list(lines.values()), line=("fraction", list(lines))
        )
    return counts


#: The polytopes `polytope_groups` names: name → (number of features, rank of their span, D_i).
POLYTOPES: dict[str, tuple[int, int, float]] = {
    "dedicated": (1, 1, 1.0),
    "antipodal": (2, 1, 1 / 2),
    "triangle": (3, 2, 2 / 3),
    "tetrahedron": (4, 3, 3 / 4),
    "pentagon": (5, 2, 2 / 5),
    "square antiprism": (8, 3, 3 / 8),
}
#: The labels `polytope_counts` counts, in order: the named polytopes, then "other".
POLYTOPE_KINDS: tuple[str, ...] = (*POLYTOPES, "other")
#: The label of a feature whose norm is at or below the norm threshold.
UNREPRESENTED = "unrepresented"


def polytope_vertices(name: str) -> np.ndarray:
    """Unit vectors at the vertices of a named polytope, centred on the origin.

    Each vertex's D_i is the polytope's value in `POLYTOPES`: k-gons have vertices at angles
    2πj/k; the tetrahedron is (±1, ±1, ±1)/√3 with an even number of minus signs; the square
    antiprism is two squares at heights ±1/√3 turned 45° from each other, radius √(2/3), which
    makes its eight vertices a tight frame in 3-D (D_i = 3/8).

    Args:
      name: a key of `POLYTOPES`.

    Returns:
      (k, r) float64: k vertices spanning r dimensions, as in `POLYTOPES[name]`.
    """
    if name == "dedicated":
        return np.ones((1, 1))
    if name == "antipodal":
        return np.array([[1.0], [-1.0]])
    if name in ("triangle", "pentagon"):
        k = POLYTOPES[name][0]
        angle = 2 * np.pi * np.arange(k) / k
        return np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    if name == "tetrahedron":
        return np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    if name == "square antiprism":
        angle = np.pi / 4 * np.arange(8)
        height = np.where(np.arange(8) % 2 == 0, 1.0, -1.0) / np.sqrt(3)
        radius = np.sqrt(2 / 3)
        return np.stack([radius * np.cos(angle), radius * np.sin(angle), height], axis=-1)
    raise ValueError(f"name must be one of {list(POLYTOPES)}, got {name!r}")


class Polytopes(NamedTuple):
    """Which polytope each feature belongs to, from `polytope_groups`."""

    #: (feature,) str: a key of `POLYTOPES`, "other", or "unrepresented".
    label: np.ndarray
    #: (feature,) int: the group each feature belongs to, 0, 1, …; −1 for an unrepresented one.
    group: np.ndarray


def polytope_groups(
    W,
    norm_threshold: float = 0.5,
    cos_threshold: float = 0.2,
    d_tol: float = 0.05,
    rank_tol: float = 0.1,
) -> Polytopes:
    r"""Group the features of one model into the polytopes they form, and name each polytope.

    Features with ‖W_i‖ > norm_threshold are represented. Two represented features are linked
    when |cos(W_i, W_j)| > cos_threshold (they share a subspace); the connected components are the
    groups. A group of k features whose span has rank r (singular values above rank_tol × the
    largest) is named by `POLYTOPES` when (k, r) match an entry and every D_i of the group is
    within d_tol of its value — an antipodal pair must also point opposite ways — and "other"
    otherwise. The groups of a tegum product are its factors: a regular pentagon in one plane and
    a tetrahedron in an orthogonal 3-D subspace are a "pentagon" and a "tetrahedron".

    NumPy only, one model at a time, not jit-able; `polytope_counts` maps over leading axes.

    Args:
      W: (feature, hidden), row i feature i's embedding (a 2-D DataArray is accepted).
      norm_threshold: the norm a represented feature exceeds.
      cos_threshold: the |cosine| above which two features are linked.
      d_tol: how far each D_i of a named polytope may sit from its value.
      rank_tol: relative singular value below which a direction of the span is ignored.

    Returns:
      `Polytopes(label, group)`, two (feature,) NumPy arrays.
    """
    if isinstance(W, xr.DataArray) and {"feature", "hidden"} <= set(W.dims):
        W = W.transpose(..., "feature", "hidden")
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise ValueError(f"polytope_groups takes one (feature, hidden) matrix, got shape {W.shape}")
    D = np.asarray(feature_dimensionality(W), dtype=np.float64)
    norms = np.linalg.norm(W, axis=-1)
    represented = np.flatnonzero(norms > norm_threshold)
    unit = W[represented] / norms[represented, None]
    linked = np.abs(unit @ unit.T) > cos_threshold
    n_groups, component = (
        connected_components(linked, directed=False) if len(represented) else (0, [])
    )

    group = np.full(W.shape[0], -1)
    group[represented] = component
    label = np.full(W.shape[0], UNREPRESENTED, dtype=object)
    for g in range(n_groups):
        members = np.flatnonzero(group == g)
        label[members] = _name(W[members], D[members], d_tol, rank_tol)
    return Polytopes(label=label.astype(str), group=group)


def _name(W, D, d_tol, rank_tol) -> str:
    singular = np.linalg.svd(W, compute_uv=False)
    rank = int(np.sum(singular > rank_tol * singular[0]))
    for name, (k, r, d) in POLYTOPES.items():
        if (len(W), rank) == (k, r) and np.all(np.abs(D - d) <= d_tol):
            if name == "antipodal" and W[0] @ W[1] >= 0:
                continue
            return name
    return "other"


@labeled(("feature", "hidden"), out=("polytope",), name="polytope_counts")
def _polytope_counts(W, norm_threshold, cos_threshold, d_tol, rank_tol):
    W = np.asarray(W)
    counts = np.zeros((*W.shape[:-2], len(POLYTOPE_KINDS)), dtype=np.int32)
    for index in np.ndindex(W.shape[:-2]):
        label, group = polytope_groups(W[index], norm_threshold, cos_threshold, d_tol, rank_tol)
        for g in np.unique(group[group >= 0]):
            counts[(*index, POLYTOPE_KINDS.index(label[group == g][0]))] += 1
    return jnp.asarray(counts)


def polytope_counts(
    W,
    norm_threshold: float = 0.5,
    cos_threshold: float = 0.2,
    d_tol: float = 0.05,
    rank_tol: float = 0.1,
):
    r"""How many polytopes of each kind each model's features form (see `polytope_groups`).

    Counts groups, not features: a pentagon counts once. NumPy underneath: not jit-able.

    Args:
      W: (..., feature, hidden).
      norm_threshold, cos_threshold, d_tol, rank_tol: as for `polytope_groups`.

    Returns:
      (..., polytope) int, in the order of `POLYTOPE_KINDS`. A DataArray result has a
      `polytope` coordinate holding the names.
    """
    counts = _polytope_counts(W, norm_threshold, cos_threshold, d_tol, rank_tol)
    if isinstance(counts, xr.DataArray):
        counts = counts.assign_coords(polytope=list(POLYTOPE_KINDS))
    return counts
