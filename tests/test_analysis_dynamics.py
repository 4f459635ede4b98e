"""Direction drift and formation step over training snapshots."""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

CHEAP = settings(max_examples=200, deadline=None)
EXAMPLES = settings(max_examples=100, deadline=None)  # larger arrays, ~5 ms an example
TOL = 1e-4
#: (step, feature, hidden) shapes to draw from: few, as each new one costs a compilation.
SHAPES = [(1, 1, 1), (4, 3, 2), (6, 5, 3)]


def snapshots():
    """W (step, feature, hidden) in [−10, 10], entries under 1e-3 in size set to 0."""
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    return st.sampled_from(SHAPES).flatmap(
        lambda s: hnp.arrays(np.float32, s, elements=elements)
    ).map(lambda W: np.where(np.abs(W) < 1e-3, 0, W).astype(np.float32))


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def reference_drift(W):
    W = np.asarray(W, np.float64)
    n = np.linalg.norm(W, axis=-1, keepdims=True)
    u = np.divide(W, n, out=np.zeros_like(W), where=n > 0)
    return (u * u[-1]).sum(-1)


@EXAMPLES
@given(snapshots(), st.integers(0, 2**32 - 1))
def test_direction_drift(W, seed):
    drift = np.asarray(A.direction_drift(W))
    np.testing.assert_allclose(drift, reference_drift(W), atol=TOL)
    assert np.all(np.abs(drift) <= 1 + 1e-6)
    final = np.linalg.norm(W[-1], axis=-1)
    np.testing.assert_allclose(drift[-1], np.where(final > 0, 1.0, 0.0), atol=TOL)
    Q = orthogonal(seed, W.shape[-1]).astype(np.float32)  # one rotation for every snapshot
    np.testing.assert_allclose(A.direction_drift(W @ Q), drift, atol=TOL)


def test_direction_drift_of_a_turning_feature():
    angle = np.linspace(0, np.pi / 2, 5)
    W = np.stack([np.cos(angle), np.sin(angle)], -1)[:, None, :] * np.arange(1, 6)[:, None, None]
    np.testing.assert_allclose(A.direction_drift(W)[:, 0], np.sin(angle), atol=1e-6)


def reference_formation(norms, steps, threshold):
    out = np.full(norms.shape[1], np.nan)
    for i in range(norms.shape[1]):
        for t in range(len(steps)):
            if np.all(norms[t:, i] > threshold):
                out[i] = steps[t]
                break
    return out


NORMS = hnp.arrays(np.float32, (7, 4), elements=st.sampled_from([0.0, 0.2, 0.5, 0.7, 1.3]))


@CHEAP
@given(NORMS, st.sampled_from([0.2, 0.5, 1.0]), hnp.arrays(np.int32, 7, elements=st.integers(0, 99)))
def test_formation_step_is_the_first_step_that_stays_above_the_threshold(norms, threshold, gaps):
    steps = np.cumsum(gaps)
    expected = reference_formation(norms, steps, threshold)
    np.testing.assert_array_equal(A.formation_step(norms, steps, threshold), expected)
    np.testing.assert_array_equal(
        A.formation_step(norms, threshold=threshold), reference_formation(norms, range(7), threshold)
    )
    assert np.all(np.isnan(expected) == (norms[-1] <= threshold))


def test_formation_step_uses_the_step_coordinate_of_a_dataarray():
    rng = np.random.default_rng(0)
    W = xr.DataArray(
        rng.normal(size=(2, 3, 5, 6, 3)).astype(np.float32),
        dims=("feature_probability", "seed", "step", "feature", "hidden"),
        coords={"feature_probability": [1.0, 0.1], "seed": [5, 6, 7], "step": [0, 5, 10, 50, 100]},
    )
    norms = A.feature_norms(W)
    assert norms.dims == ("feature_probability", "seed", "step", "feature")
    formed = A.formation_step(norms, threshold=1.5)
    assert formed.dims == ("feature_probability", "seed", "feature")
    np.testing.assert_array_equal(formed["seed"], [5, 6, 7])
    for k in range(2):
        for s in range(3):
            np.testing.assert_array_equal(
                formed.values[k, s], reference_formation(norms.values[k, s], W["step"].values, 1.5)
            )
    # A step dim named otherwise is taken from its position, and keeps its coordinate.
    by_epoch = A.formation_step(norms.rename(step="epoch"), threshold=1.5)
    xr.testing.assert_equal(by_epoch, formed)
    drift = A.direction_drift(W)
    assert drift.dims == ("feature_probability", "seed", "step", "feature")
    np.testing.assert_array_equal(drift["step"], W["step"])
    np.testing.assert_allclose(drift.values, A.direction_drift(W.values))


def test_jit_of_vmap():
    W = jnp.asarray(np.random.default_rng(1).normal(size=(3, 4, 5, 2)), jnp.float32)
    np.testing.assert_allclose(
        jax.jit(jax.vmap(A.direction_drift))(W), A.direction_drift(W), rtol=1e-6, atol=1e-6
    )
    norms = A.feature_norms(W)
    steps = jnp.array([0, 10, 20, 30])
    formed = jax.jit(jax.vmap(A.formation_step, in_axes=(0, None)))(norms, steps)
    np.testing.assert_array_equal(formed, A.formation_step(norms, steps))
