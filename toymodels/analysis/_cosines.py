"""Best matches between two sets of directions: max cosines both ways, and the one-to-one match.

Every recovery and universality metric reduces the cosine matrix C_ik = cos(a_i, b_k) of two
dictionaries. For SAEs of realistic width that matrix is large (16,384² float32 is 1 GiB), so
`max_cosines` never holds it whole: it walks over blocks of a's rows, keeping each row's max and a
running max per column, and maps over grid pairs a few at a time. `matched_cosines` solves the
assignment problem on the host with SciPy, so it needs the whole matrix of one pair.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.optimize import linear_sum_assignment

from toymodels.analysis._vectors import unit

#: Cosines held in memory at once by `max_cosines` (64 MiB of float32).
BLOCK_ELEMENTS = 2**24


def _pair_max_cosines(a, b):
    """(n_a, d), (n_b, d) -> ((n_a,), (n_b,)): max_k C_ik and max_i C_ik, by blocks of rows."""
    n_a, n_b = a.shape[0], b.shape[0]
    ua, ub = unit(a), unit(b)
    rows = max(1, min(n_a, BLOCK_ELEMENTS // max(n_b, 1)))
    n_blocks = -(-n_a // rows)
    pad = n_blocks * rows - n_a
    blocks = jnp.pad(ua, ((0, pad), (0, 0))).reshape(n_blocks, rows, -1)
    valid = (jnp.arange(n_blocks * rows) < n_a).reshape(n_blocks, rows)

    def block(column_max, inputs):
        rows_block, rows_valid = inputs
        cosines = rows_block @ ub.T
        if pad:  # padded rows must not win a column's max
            cosines = jnp.where(rows_valid[:, None], cosines, -jnp.inf)
        return jnp.maximum(column_max, jnp.max(cosines, axis=0)), jnp.max(cosines, axis=1)

    start = jnp.full((n_b,), -jnp.inf, ua.dtype)
    column_max, row_max = jax.lax.scan(block, start, (blocks, valid))
    return row_max.reshape(-1)[:n_a], column_max


def max_cosines(a, b):
    r"""For each row of a the max cosine with a row of b, and for each row of b the max with a.

    (max_k cos(a_i, b_k), max_i cos(a_i, b_k)), signed; a zero vector has cosine 0 with
    everything. Leading axes broadcast; pairs of grid points are computed a few at a time so
    that at most about `BLOCK_ELEMENTS` cosines are held at once (small inputs take one batched
matmul). Works under jit, vmap and grad.

    Args:
      a: (..., n_a, d).
      b: (..., n_b, d).

    Returns:
      ((..., n_a), (..., n_b)).
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"the two sets of directions must have the same width d, got {a.shape[-1]} and "
            f"{b.shape[-1]}"
        )
    dtype = jnp.result_type(a.dtype, b.dtype, jnp.float32)
    a, b = a.astype(dtype), b.astype(dtype)
    lead = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    n_a, n_b = a.shape[-2], b.shape[-2]
    # Index arrays instead of broadcast copies: a (seed, 1) × (1, seed) grid stays seed-sized.
    index_a = np.broadcast_to(np.arange(int(np.prod(a.shape[:-2]))).reshape(a.shape[:-2]), lead)
    index_b = np.broadcast_to(np.arange(int(np.prod(b.shape[:-2]))).reshape(b.shape[:-2]), lead)
    flat_a, flat_b = a.reshape(-1, n_a, a.shape[-1]), b.reshape(-1, n_b, b.shape[-1])
    pairs = index_a.size
    if pairs == 0:
        return jnp.zeros(lead + (n_a,), dtype), jnp.zeros(lead + (n_b,), dtype)
    rows = max(1, min(n_a, BLOCK_ELEMENTS // max(n_b, 1)))
    per_batch = max(1, min(pairs, BLOCK_ELEMENTS // max(rows * n_b, 1)))
    if per_batch == pairs and rows == n_a:  # everything fits at once: one batched matmul
        cosines = unit(a) @ jnp.swapaxes(unit(b), -1, -2)
        return jnp.max(cosines, axis=-1), jnp.max(cosines, axis=-2)
    row_max, column_max = jax.lax.map(
        lambda ij: _pair_max_cosines(flat_a[ij[0]], flat_b[ij[1]]),
        (jnp.asarray(index_a.reshape(-1)), jnp.asarray(index_b.reshape(-1))),
        batch_size=per_batch,
    )
    return row_max.reshape(lead + (n_a,)), column_max.reshape(lead + (n_b,))


@jax.jit
def _cosine_matrix(a, b):
    return unit(a) @ unit(b).T


def matched_cosines(a, b, *, absolute: bool, caller: str):
    r"""Mean cosine over the one-to-one matching of rows of a to rows of b that maximises it.

    The assignment π (Hungarian algorithm, `scipy.optimize.linear_sum_assignment`) pairs
    min(n_a, n_b) rows of the shorter set with distinct rows of the longer one so that
    Σ_i s(a_i, b_π(i)) is largest, with s = |cos| if `absolute` else cos; the result is that sum
    over min(n_a, n_b). Leading axes broadcast and are looped over in Python: not jittable.
    O(max(n_a, n_b)³) time per pair.

    Args:
      a: (..., n_a, d).
      b: (..., n_b, d).
      absolute: match on |cos| (a flipped direction counts as found) instead of cos.
      caller: the public function's name, for error messages.

    Returns:
      (...) float32 NumPy array.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    for name, x in (("a", a), ("b", b)):
        if x.ndim < 2:
            raise ValueError(f"{caller}: {name} needs shape (..., n, d), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{caller}: {name} must be finite (no NaN or inf)")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"{caller}: both sets of directions need the same width d, got {a.shape[-1]} and "
            f"{b.shape[-1]}"
        )
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, lead + a.shape[-2:])
    b = np.broadcast_to(b, lead + b.shape[-2:])
    out = np.zeros(lead, np.float32)
    if min(a.shape[-2], b.shape[-2]) == 0:
        return out
    for index in np.ndindex(lead):
        scores = np.asarray(_cosine_matrix(a[index], b[index]), np.float64)
        if absolute:
            scores = np.abs(scores)
        rows, columns = linear_sum_assignment(scores, maximize=True)
        out[index] = scores[rows, columns].mean()
    return out


def pairs_above(a, b, threshold: float):
    r"""Every pair (i, k) with cos(a_i, b_k) > threshold, found one block of a's rows at a time.

    Args:
      a: (n_a, d).
      b: (n_b, d).
      threshold: the cosine a pair must exceed.

    Returns:
      (i, k, cosine): three 1-D NumPy arrays, ordered by i then k.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    rows = max(1, BLOCK_ELEMENTS // max(b.shape[0], 1))
    found = []
    for start in range(0, a.shape[0], rows):
        cosines = np.asarray(_cosine_matrix(a[start : start + rows], b))
        i, k = np.nonzero(cosines > threshold)
        found.append((i + start, k, cosines[i, k]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate(parts) for parts in zip(*found))
