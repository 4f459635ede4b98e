"""The exact expected loss: against Monte Carlo, an independent closed form, and its own limits."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from toymodels.phase import exact_loss, loss_components
from toymodels.phase.exact import _float64_components


def monte_carlo_loss(W, b, p, importance, n_samples=2_000_000, seed=0):
    """Mean and standard error of Σ_i I_i (x_i − x'_i)² / n over sampled TMS data."""
    rng = np.random.default_rng(seed)
    n = W.shape[0]
    means, squares, done = 0.0, 0.0, 0
    for _ in range(4):  # in chunks, to keep memory small
        m = n_samples // 4
        x = rng.random((m, n)) * (rng.random((m, n)) < p)
        x_hat = np.maximum(x @ W @ W.T + b, 0.0)
        loss = ((x - x_hat) ** 2 * importance).sum(-1) / n
        means += loss.sum()
        squares += (loss**2).sum()
        done += m
    mean = means / done
    return mean, math.sqrt((squares / done - mean**2) / done)


@pytest.mark.parametrize("n, m, case", [(1, 1, 0), (2, 1, 1), (2, 2, 2), (3, 2, 0), (3, 2, 1),
                                        (3, 2, 2), (3, 3, 1)])
def test_exact_loss_matches_monte_carlo(n, m, case):
    rng = np.random.default_rng(100 * n + 10 * m + case)
    W = rng.normal(size=(n, m)) * rng.uniform(0.5, 1.3)
    b = rng.normal(size=n) * 0.3
    p = [1.0, 0.3, 0.05][case]
    importance = rng.uniform(0.2, 2.0, size=n)
    exact = float(exact_loss(W, b, p, importance))
    mean, se = monte_carlo_loss(W, b, p, importance, seed=case)
    assert abs(exact - mean) < 4 * se, (exact, mean, se)


def test_fewest_nodes_are_already_exact():
    """Raising the quadrature order changes nothing: the pieces really are polynomials."""
    rng = np.random.default_rng(1)
    for n in (3,):  # three features hold integrals over cubes of 1, 2 and 3 dims
        # Arbitrary (not only Gram) matrices reach every sign pattern of the slopes; some
        # entries exactly 0 or tiny test the parallel-hyperplane branch.
        G = rng.normal(size=(64, n, n))
        G[:8] *= rng.random((8, n, n)) < 0.5
        G[8:12] *= 1e-120
        b = rng.normal(size=(64, n)) * 0.7
        low = _float64_components(G, b)
        high = _float64_components(G, b, order=4)
        np.testing.assert_allclose(low, high, rtol=1e-12, atol=1e-13)


def _relu_power_moments(g, beta, q=2):
    """E[ReLU(z)^q] and its gradient in g, for z = β + g·u, u ~ U[0,1]^k, by the box-spline
    formula (every g_j ≠ 0):
        E[ReLU(z)^q] = q! / (q + k)! / Π g_j · Σ_S (−1)^(k−|S|) ReLU(z_S)^(q+k),
    z_S = β + Σ_{j∈S} g_j, over the subsets S of the k coordinates."""
    g = np.asarray(g, float)
    k = len(g)
    c = math.factorial(q) / math.factorial(q + k) / np.prod(g)
    total, grad = 0.0, np.zeros(k)
    for corner in itertools.product((0, 1), repeat=k):
        z = max(beta + g @ np.array(corner), 0.0)
        sign = (-1) ** (k - sum(corner))
        total += sign * z ** (q + k)
        grad += sign * (q + k) * z ** (q + k - 1) * np.array(corner)
    return c * total, c * grad - c * total / g


@pytest.mark.parametrize("k", [1, 2, 3])
def test_components_match_an_independent_closed_form(k):
    """T_{S,i} = 1/3 − 2 E[u_i ReLU(z)] + E[ReLU(z)²], with E[u_i ReLU(z)] = ½ ∂/∂g_i E[ReLU(z)²]
    from the box-spline formula, which shares nothing with the nested quadrature."""
    rng = np.random.default_rng(k)
    for _ in range(5):
        g = rng.choice([-1, 1], size=k) * rng.uniform(0.3, 1.5, size=k)
        beta = rng.normal() * 0.6
        G = np.zeros((k, k))
        G[0] = g  # feature 0's row: its slopes on the k active features
        T = _float64_components(G, np.array([beta] + [0.0] * (k - 1)))
        second, grad = _relu_power_moments(g, beta)
        # The last set (all k features active) with feature 0 the target.
        np.testing.assert_allclose(T[-1, 0], 1 / 3 - grad[0] + second, rtol=1e-10)
        if k > 1:
            # Feature 0 inactive (the set of all the others): no target, slopes g[1:].
            np.testing.assert_allclose(T[2**k - 2, 0], _relu_power_moments(g[1:], beta)[0],
                                       rtol=1e-10)


def test_limits_in_the_density():
    rng = np.random.default_rng(2)
    W, b = rng.normal(size=(3, 2)), rng.normal(size=3)
    importance = np.array([1.0, 2.0, 0.5])
    # p = 0: every x is 0, so the error is the output ReLU(b).
    assert np.isclose(exact_loss(W, b, 0.0, importance),
                      np.sum(importance * np.maximum(b, 0) ** 2) / 3, rtol=1e-14)
    # A perfect linear map W Wᵀ = I with b = 0 reconstructs exactly, at any density.
    assert exact_loss(np.eye(3), np.zeros(3), 0.37, importance) == pytest.approx(0, abs=1e-15)
    # W = 0, b = 0 outputs 0: each feature costs E[x²] = p/3.
    assert exact_loss(np.zeros((2, 1)), np.zeros(2), 0.4) == pytest.approx(0.4 / 3, rel=1e-14)


def test_components_sum_to_the_loss_and_shapes():
    rng = np.random.default_rng(3)
    W, b = rng.normal(size=(4, 5, 2, 1)), rng.normal(size=(4, 5, 2))
    T = loss_components(W, b)
    assert T.shape == (4, 5, 4, 2) and T.dtype == np.float64
    p = rng.uniform(0.01, 1, size=(4, 5))
    loss = exact_loss(W, b, p)
    assert loss.shape == (4, 5)
    one = exact_loss(W[1, 2], b[1, 2], p[1, 2])
    assert one == pytest.approx(loss[1, 2], rel=1e-14)


def test_jax_inputs_are_traceable_and_differentiable():
    rng = np.random.default_rng(4)
    with jax.enable_x64(True):
        W = jnp.asarray(rng.normal(size=(2, 1)))
        b = jnp.asarray(rng.normal(size=2) * 0.3)
        value_and_grad = jax.jit(jax.value_and_grad(lambda W: exact_loss(W, b, 0.2)))
        value, grad = value_and_grad(W)
        assert float(value) == pytest.approx(float(exact_loss(np.asarray(W), np.asarray(b), 0.2)),
                                             rel=1e-13)
        # The exact gradient against a central difference of the exact loss.
        f = lambda W: float(exact_loss(W, np.asarray(b), 0.2))  # noqa: E731
        step = np.array([[1e-6], [0.0]])
        fd = (f(np.asarray(W) + step) - f(np.asarray(W) - step)) / 2e-6
        assert float(grad[0, 0]) == pytest.approx(fd, rel=1e-6)
        # A zero row (a dropped feature) has finite gradients.
        _, g0 = value_and_grad(W.at[1].set(0.0))
        assert bool(jnp.all(jnp.isfinite(g0)))


def test_dataarray_in_dataarray_out():
    rng = np.random.default_rng(5)
    W = xr.DataArray(rng.normal(size=(3, 2, 1)), dims=("seed", "feature", "hidden"),
                     coords={"seed": [10, 11, 12]})
    b = xr.DataArray(rng.normal(size=(3, 2)), dims=("seed", "feature"))
    loss = exact_loss(W, b, 0.1)
    assert isinstance(loss, xr.DataArray) and loss.dims == ("seed",)
    assert list(loss.seed.values) == [10, 11, 12]
    np.testing.assert_allclose(loss.values, exact_loss(W.values, b.values, 0.1), rtol=1e-14)


def test_too_many_features_is_an_error():
    with pytest.raises(ValueError, match="features"):
        exact_loss(np.ones((4, 2)), np.zeros(4), 0.5)
