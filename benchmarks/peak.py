"""This machine's float32 matmul peak, measured in the calling process.

The speed benchmark reports achieved GFLOP/s as a fraction of what this machine can do, and "what
it can do" is measured, not looked up: a large square float32 matmul, best of several runs, with
both numpy (its BLAS) and JAX on CPU (XLA's). The larger of the two is the peak, so the fraction
reported against it is the conservative one.
"""

from __future__ import annotations

import time

import numpy as np


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm up: thread pools, page faults, and for JAX the compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s = 2n³ / t of an n×n float32 matmul with numpy, best of `repeats` runs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    t = _best_seconds(lambda: a @ b, repeats)
    return 2 * n**3 / t / 1e9


def jax_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s = 2n³ / t of an n×n float32 matmul with jitted JAX on CPU, best of `repeats` runs."""
    import jax
    import jax.numpy as jnp

    cpu = jax.devices("cpu")[0]
    ka, kb = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(ka, (n, n), jnp.float32), cpu)
    b = jax.device_put(jax.random.normal(kb, (n, n), jnp.float32), cpu)
    matmul = jax.jit(jnp.matmul)
    t = _best_seconds(lambda: matmul(a, b).block_until_ready(), repeats)
    return 2 * n**3 / t / 1e9


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The machine's float32 matmul peak in GFLOP/s: the best of numpy and JAX-on-CPU."""
    return max(numpy_matmul_gflops(n, repeats), jax_matmul_gflops(n, repeats))


if __name__ == "__main__":
    print(f"numpy matmul GFLOP/s={numpy_matmul_gflops():.1f}")
    print(f"jax matmul GFLOP/s={jax_matmul_gflops():.1f}")
