"""Properties of interference, polysemanticity and net interference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

# Each example draws arrays and makes a few calls (~5 ms); 100 per property keeps the analysis
# tests well inside their 60 s budget on 2 cores.
EXAMPLES = settings(max_examples=100, deadline=None)
TOL = 1e-4
#: (feature, hidden) shapes to draw from: few, as each new one costs a compilation.
SHAPES = [(1, 1), (2, 5), (3, 2), (8, 5)]


def weights(shapes=SHAPES):
    """W (feature, hidden) in [−10, 10], entries under 1e-3 in size set to 0."""
    shape = st.sampled_from(shapes)
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    return shape.flatmap(lambda s: hnp.arrays(np.float32, s, elements=elements)).map(
        lambda W: np.where(np.abs(W) < 1e-3, 0, W).astype(np.float32)
    )


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def notebook_interference(W):
    """Ŵ_i·W_j with the diagonal zeroed, in float64 NumPy (norm clamped at 1e-6)."""
    W = np.asarray(W, np.float64)
    W_unit = W / np.clip(np.linalg.norm(W, axis=-1, keepdims=True), 1e-6, None)
    out = W_unit @ W.T
    np.fill_diagonal(out, 0)
    return out


@EXAMPLES
@given(weights())
def test_matches_the_notebook_formula(W):
    scale = max(1.0, np.abs(W).max())
    expected = notebook_interference(W)
    np.testing.assert_allclose(A.interference(W), expected, atol=TOL * scale)
    np.testing.assert_allclose(
        A.polysemanticity(W), np.linalg.norm(expected, axis=-1), atol=TOL * scale * len(W)
    )
    assert np.all(np.diagonal(np.asarray(A.interference(W))) == 0)


@EXAMPLES
@given(weights(), st.integers(0, 2**32 - 1))
def test_invariant_under_rotation_of_the_hidden_space(W, seed):
    Q = orthogonal(seed, W.shape[1]).astype(np.float32)
    scale = max(1.0, np.abs(W).max())
    np.testing.assert_allclose(A.interference(W @ Q), A.interference(W), atol=TOL * scale)
    np.testing.assert_allclose(
        A.polysemanticity(W @ Q), A.polysemanticity(W), atol=TOL * scale * len(W)
    )


@EXAMPLES
@given(weights(), st.randoms(use_true_random=False))
def test_permuting_features_permutes_rows_and_columns(W, random):
    perm = np.array(random.sample(range(W.shape[0]), W.shape[0]))
    scale = max(1.0, np.abs(W).max())
    np.testing.assert_allclose(
        A.interference(W[perm]), np.asarray(A.interference(W))[perm][:, perm], atol=TOL * scale
    )
    np.testing.assert_allclose(
        A.polysemanticity(W[perm]), np.asarray(A.polysemanticity(W))[perm],
        atol=TOL * scale * len(W),
    )


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from([(1, 0), (2, 1), (3, 2), (5, 0)]),  # (features, zero features)
    st.integers(0, 2**32 - 1),
    hnp.arrays(np.float64, 5, elements=st.floats(0.01, 10)),
)
def test_orthogonal_features_have_no_polysemanticity(shape, seed, scales):
    k, n_zero = shape
    W = orthogonal(seed, 5)[:k] * scales[:k, None]
    W = np.concatenate([W, np.zeros((n_zero, 5))]).astype(np.float32)
    np.testing.assert_allclose(A.polysemanticity(W), 0, atol=TOL * scales.max())
    np.testing.assert_allclose(A.net_interference(W, 0.3), 0, atol=TOL * scales.max() ** 2)


def test_an_antipodal_pair_interferes_fully():
    W = np.array([[2.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], np.float32)
    np.testing.assert_allclose(
        A.interference(W), [[0, -1, 0], [-2, 0, 0], [0, 0, 0]], atol=1e-6
    )
    np.testing.assert_allclose(A.polysemanticity(W), [1, 2, 0], atol=1e-6)


@EXAMPLES
@given(weights(), st.floats(0.0, 1.0), st.data())
def test_net_interference(W, p, data):
    I2 = notebook_interference(W) ** 2
    scale = max(1.0, np.abs(W).max()) ** 2 * len(W)
    np.testing.assert_allclose(A.net_interference(W, p), p * I2.sum(-1), atol=TOL * scale)
    p_vec = data.draw(hnp.arrays(np.float32, len(W), elements=st.floats(0, 1, width=32)))
    np.testing.assert_allclose(A.net_interference(W, p_vec), I2 @ p_vec, atol=TOL * scale)


def sweep_W():
    W = np.random.default_rng(0).normal(size=(3, 2, 6, 4)).astype(np.float32)
    return xr.DataArray(
        W,
        dims=("feature_probability", "seed", "feature", "hidden"),
        coords={"feature_probability": [1.0, 0.1, 0.01], "seed": [7, 8], "feature": np.arange(6)},
    )


def test_dataarray_in_dataarray_out():
    W = sweep_W()
    I = A.interference(W)
    assert I.dims == ("feature_probability", "seed", "feature", "feature_j")
    np.testing.assert_array_equal(I["feature_probability"], W["feature_probability"])
    np.testing.assert_array_equal(I["seed"], [7, 8])
    np.testing.assert_allclose(I.values, A.interference(W.values))
    P = A.polysemanticity(W)
    assert P.dims == ("feature_probability", "seed", "feature")
    np.testing.assert_allclose(P.values, A.polysemanticity(W.values))


def test_net_interference_broadcasts_a_per_model_probability_by_name():
    W = sweep_W()
    net = A.net_interference(W, W["feature_probability"])
    assert net.dims == ("feature_probability", "seed", "feature")
    for k, p in enumerate(W["feature_probability"].values):
        np.testing.assert_allclose(
            net.values[k], A.net_interference(W.values[k], p), rtol=1e-5, atol=1e-6
        )
    # A per-feature probability DataArray is matched on the feature dim.
    p_feature = xr.DataArray(np.linspace(0.1, 1, 6), dims="feature")
    net = A.net_interference(W, p_feature)
    assert net.dims == ("feature_probability", "seed", "feature")
    np.testing.assert_allclose(
        net.values, A.net_interference(W.values, p_feature.values), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("fn", [A.interference, A.polysemanticity])
def test_jit_of_vmap(fn):
    W = jnp.asarray(np.random.default_rng(2).normal(size=(4, 7, 3)), jnp.float32)
    eager = fn(W)
    # One compilation checks both: the functions trace under jit and map under vmap.
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(W), eager, rtol=1e-5, atol=1e-6)
    p = jnp.linspace(0.1, 1, 7)
    np.testing.assert_allclose(
        jax.jit(A.net_interference)(W, p), A.net_interference(W, p), rtol=1e-5, atol=1e-6
    )
