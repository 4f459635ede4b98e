r"""The exact expected loss of the ReLU-output toy model with a few features.

A phase diagram is an argmin over configurations whose losses differ by very little near a
boundary, so the losses behind it are computed exactly rather than sampled: Monte Carlo with 10⁶
samples has a relative error of 10⁻³ or worse (far worse for sparse data, where most samples are
0), enough to move a boundary by a grid cell.

The data: feature j is active with probability p, independently, with magnitude U[0, 1] when
active, else 0. The model: x'_i = ReLU(Σ_j G_ij x_j + b_i) with G = W Wᵀ, so only the Gram matrix
matters. Conditioning on the set S of active features,

    E[(x_i − x'_i)²] = Σ_S p^|S| (1 − p)^(n − |S|) · T_{S,i},
    T_{S,i} = ∫_{[0,1]^S} (1[i ∈ S] u_i − ReLU(Σ_{j∈S} G_ij u_j + b_i))² du,

and the loss is Σ_i I_i E[(x_i − x'_i)²] / n. Each T_{S,i} is the integral over a cube of a
function that is a quadratic polynomial on either side of one hyperplane, G_i·u + b_i = 0. It is
integrated one coordinate at a time:

- the innermost coordinate in closed form (the hyperplane cuts its segment at most once), which
  leaves a cubic in the outer coordinates;
- every outer coordinate by Gauss–Legendre quadrature on the pieces between the points where the
  hyperplane passes through a vertex of the cube of the coordinates inside it. Between two such
  points the inner integral is a polynomial of degree 2 + j in this coordinate, j the number of
  coordinates inside it, so ⌈(j + 3) / 2⌉ nodes per piece integrate it exactly: 2 for the level
  just outside the closed form, 3 for the two beyond it.

The result is exact up to float64 rounding (about 1e-14 relative), and differentiable with JAX:
moving a split point does not change the integral of a polynomial, so gradients are exact too.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from toymodels.analysis._labeled import labeled

__all__ = ["MAX_FEATURES", "exact_loss", "loss_components"]

#: The most features `exact_loss` accepts (the quadrature orders are proven exact up to here).
MAX_FEATURES = 3
# A slope below this is treated as zero: the hyperplane is then parallel to that coordinate.
# Dividing by anything smaller could overflow, and would give NaN gradients through `clip`.
_FLAT = 1e-100


def _antiderivative(a, b, v):
    """∫_0^v (a + b t)² dt."""
    return v * (a * a + v * (a * b + v * b * b / 3.0))


def _innermost(A, B, c, gamma):
    """∫_0^1 (A + B v − ReLU(γ v + c))² dv in closed form, elementwise."""
    flat = jnp.abs(gamma) < _FLAT
    kink = jnp.clip(-c / jnp.where(flat, 1.0, gamma), 0.0, 1.0)
    # The segment where γ v + c > 0 is [lo, hi].
    lo = jnp.where(flat | (gamma < 0), 0.0, kink)
    hi = jnp.where(flat, jnp.where(c > 0, 1.0, 0.0), jnp.where(gamma > 0, 1.0, kink))
    on = _antiderivative(A - c, B - gamma, hi) - _antiderivative(A - c, B - gamma, lo)
    off = _antiderivative(A, B, hi) - _antiderivative(A, B, lo)
    return _antiderivative(A, B, 1.0) + on - off


def _order(inner: int) -> int:
    """Gauss–Legendre nodes that integrate a piece exactly, with `inner` coordinates inside it."""
    return (inner + 4) // 2


def _cube_integral(g, tau, c, A, level, order):
    """∫ over coordinates level … k−1 of the unit cube of (Σ_j τ_j u_j − ReLU(c + Σ_j g_j u_j))².

    g, tau: k arrays broadcastable against c (tau one-hot on the target coordinate, or all zero
    for a feature that is not active); c: the hyperplane offset with the outer coordinates fixed,
    with one *leading* axis per outer coordinate holding its quadrature nodes (leading, so that
    the long batch axis stays the minor one, which XLA vectorises); A: Σ τ_j u_j over the outer
    coordinates; order: nodes per piece, or None for the fewest that are exact.
    """
    k = len(g)
    if level == k - 1:
        return _innermost(A, tau[level], c, g[level])
    slope = g[level]
    flat = jnp.abs(slope) < _FLAT
    safe = jnp.where(flat, 1.0, slope)
    inner = g[level + 1 :]
    offsets = [sum((gj for gj, s in zip(inner, corner) if s), jnp.zeros_like(slope))
               for corner in itertools.product((0, 1), repeat=len(inner))]
    splits = jnp.stack([jnp.where(flat, 0.0, jnp.clip(-(c + o) / safe, 0.0, 1.0))
                        for o in offsets])
    # The splits lie in [0, 1] already, so only they need sorting.
    if len(offsets) == 2:
        splits = jnp.stack([jnp.min(splits, axis=0), jnp.max(splits, axis=0)])
    else:
        splits = jnp.sort(splits, axis=0)
    edges = jnp.concatenate([jnp.zeros_like(splits[:1]), splits, jnp.ones_like(splits[:1])])
    start, width = edges[:-1], jnp.diff(edges, axis=0)  # (pieces, ...)
    x, w = np.polynomial.legendre.leggauss(order or _order(k - 1 - level))
    x, w = ((x + 1) / 2).reshape(-1, *[1] * start.ndim), (w / 2).reshape(-1, *[1] * start.ndim)
    u = (start + width * x).reshape(-1, *start.shape[1:])  # (nodes × pieces, ...)
    weight = (width * w).reshape(u.shape)
    values = _cube_integral(g, tau, c + slope * u, A + tau[level] * u, level + 1, order)
    return jnp.sum(weight * values, axis=0)


def _subsets(n: int) -> list[tuple[int, ...]]:
    """All subsets of range(n), the s-th being the features j with bit j of s set."""
    return [tuple(j for j in range(n) if s >> j & 1) for s in range(2**n)]


@functools.partial(jax.jit, static_argnames="order")
def _gram_components(G, b, order: int | None = None):
    """(..., 2^n, n) T_{S,i} from the Gram matrix G = W Wᵀ (..., n, n) and b (..., n)."""
    # Every (active set S, feature i) pair with the same |S| = k is one integral over a k-cube,
    # so they are stacked along one axis and integrated together: n integrals in the program
    # instead of 2^n · n keeps tracing and compiling (of gradients especially) fast.
    n = G.shape[-1]
    G, b = jnp.broadcast_arrays(G, b[..., None, :])
    batch = b.shape[:-2]
    G, b = G.reshape(-1, n, n), b[..., 0, :].reshape(-1, n)
    subsets = _subsets(n)
    out = jnp.zeros((b.shape[0], 2**n, n), G.dtype)
    out = out.at[:, 0, :].set(jax.nn.relu(b) ** 2)
    for k in range(1, n + 1):
        terms = [(s, i) for s, active in enumerate(subsets) if len(active) == k for i in range(n)]
        sets = np.array([s for s, _ in terms])
        rows = np.array([i for _, i in terms])
        cols = np.array([subsets[s] for s in sets])  # (terms, k)
        target = np.array([[j == i for j in subsets[s]] for s, i in terms], dtype=G.dtype)
        g = G[:, rows[:, None], cols].T  # (k, terms, batch): the batch axis minor
        tau = [jnp.asarray(target[:, j, None]) for j in range(k)]
        c = b[:, rows].T
        value = _cube_integral(list(g), tau, c, jnp.zeros_like(c), 0, order)
        out = out.at[:, sets, rows].set(value.T)
    return out.reshape(*batch, 2**n, n)


# Rows per call of the compiled kernel on NumPy inputs: one fixed shape, so that each number of
# features compiles once, however many models are evaluated and in whatever batch shape.
_CHUNK = 256


def _float64_components(G, b, order: int | None = None) -> np.ndarray:
    """T (..., 2^n, n) in float64 NumPy from G (..., n, n) and b (..., n), in fixed chunks."""
    G, b = np.asarray(G, np.float64), np.asarray(b, np.float64)
    n = G.shape[-1]
    G, b = np.broadcast_arrays(G, b[..., None, :])
    batch = G.shape[:-2]
    G, b = G.reshape(-1, n, n), b[..., 0, :].reshape(-1, n)
    N = len(G)
    pad = -N % _CHUNK
    if pad:
        G, b = (np.concatenate([a, np.zeros((pad, *a.shape[1:]))]) for a in (G, b))
    with jax.enable_x64(True):
        T = [np.asarray(_gram_components(jnp.asarray(G[i : i + _CHUNK]),
                                         jnp.asarray(b[i : i + _CHUNK]), order=order))
             for i in range(0, N + pad, _CHUNK)]
    return np.concatenate(T)[:N].reshape(*batch, 2**n, n)


def _check_features(n: int) -> None:
    if not 1 <= n <= MAX_FEATURES:
        raise ValueError(f"W must have 1 to {MAX_FEATURES} features (rows); got {n}")


def loss_components(W, b, *, order: int | None = None):
    r"""The exact conditional errors T_{S,i}, for every set S of active features.

    T_{S,i} = E[(x_i − x'_i)² | exactly the features in S are active], where the s-th set S holds
    the features j with bit j of s set (s = 0 … 2^n − 1). The loss is then
    Σ_S p^|S| (1 − p)^(n−|S|) Σ_i I_i T_{S,i} / n; the split lets a phase-diagram solver weigh
    one evaluation for every (p, I) at once.

    NumPy inputs are computed in float64 (under `jax.enable_x64`); JAX inputs in their own dtype,
    and stay traceable and differentiable (exact gradients: moving a split point does not change
    the integral of a polynomial).

    Args:
      W: (..., feature, hidden), 1 ≤ feature ≤ `MAX_FEATURES`.
      b: (..., feature).
      order: Gauss–Legendre nodes per polynomial piece; None for the fewest that are exact
        (a higher order only checks that claim).

    Returns:
      (..., 2^feature, feature).
    """
    _check_features(np.shape(W)[-2])
    if isinstance(W, jax.Array) or isinstance(b, jax.Array):
        W = jnp.asarray(W)
        return _gram_components(W @ jnp.swapaxes(W, -1, -2), jnp.asarray(b), order=order)
    W = np.asarray(W, np.float64)
    return _float64_components(W @ np.swapaxes(W, -1, -2), b, order=order)


def _subset_weights(p, n: int):
    """(..., 2^n): the probability that exactly the s-th set of features is active."""
    p = p[..., None]
    size = np.array([len(s) for s in _subsets(n)])
    return p**size * (1 - p) ** (n - size)


@labeled(("feature", "hidden"), ("feature",), (), ("feature",), out=())
def exact_loss(W, b, feature_probability, importance=None):
    r"""The expected loss of x' = ReLU(x W Wᵀ + b), integrated exactly over the data.

    L = Σ_i I_i E[(x_i − x'_i)²] / n, with each feature independently active with probability p
    and U[0, 1] when active (the TMS data, and the loss the TMS notebook trains on, averaged
    over features). See the module docstring for how the expectation is computed.

    Args:
      W: (..., feature, hidden), 1 ≤ feature ≤ `MAX_FEATURES` = 3; row i is feature i's
        embedding.
      b: (..., feature).
      feature_probability: (...) probability p that each feature is active, in [0, 1].
      importance: (..., feature) importances I_i; None for all ones.

    Returns:
      (...) the loss: float64 NumPy for NumPy inputs, the inputs' dtype for JAX inputs.
    """
    n = np.shape(W)[-2]
    T = loss_components(W, b)
    xp = jnp if isinstance(T, jax.Array) else np
    I = xp.ones(n, T.dtype) if importance is None else xp.asarray(importance, T.dtype)
    weights = _subset_weights(xp.asarray(feature_probability, T.dtype), n)
    per_feature = xp.sum(weights[..., :, None] * T, axis=-2)
    return xp.sum(I * per_feature, axis=-1) / n

