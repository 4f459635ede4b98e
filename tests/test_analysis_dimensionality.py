"""Properties of D_i, D*, feature norms and represented features, for every W."""

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
    """W (feature, hidden) in [−10, 10]; entries below 1e-3 in size set to 0, so every row is
    either zero or clear of the 1e-6 norm floor."""
    shape = st.sampled_from(shapes)
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    return (
        shape.flatmap(lambda s: hnp.arrays(np.float32, s, elements=elements))
        .map(lambda W: np.where(np.abs(W) < 1e-3, 0, W).astype(np.float32))
    )


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def notebook_dimensionality(W):
    """The TMS notebook's compute_dimensionality, in float64 NumPy."""
    W = np.asarray(W, np.float64)
    norms = np.linalg.norm(W, axis=-1)
    W_unit = W / np.clip(norms[..., None], 1e-6, None)
    interferences = ((W_unit @ W.T) ** 2).sum(-1)
    with np.errstate(invalid="ignore"):
        return norms**2 / interferences


@EXAMPLES
@given(weights())
def test_matches_the_notebook_formula(W):
    expected = np.nan_to_num(notebook_dimensionality(W), nan=0.0)  # its 0/0 at zero rows → 0
    np.testing.assert_allclose(A.feature_dimensionality(W), expected, atol=TOL, rtol=TOL)


@EXAMPLES
@given(weights(), st.integers(0, 2**32 - 1))
def test_invariant_under_rotation_of_the_hidden_space(W, seed):
    Q = orthogonal(seed, W.shape[1]).astype(np.float32)
    np.testing.assert_allclose(
        A.feature_dimensionality(W @ Q), A.feature_dimensionality(W), atol=TOL
    )
    np.testing.assert_allclose(
        A.dimensions_per_feature(W @ Q), A.dimensions_per_feature(W), rtol=TOL
    )


@EXAMPLES
@given(weights(), st.randoms(use_true_random=False))
def test_permuting_features_permutes_D(W, random):
    perm = np.array(random.sample(range(W.shape[0]), W.shape[0]))
    np.testing.assert_allclose(
        A.feature_dimensionality(W[perm]), np.asarray(A.feature_dimensionality(W))[perm], atol=TOL
    )


@EXAMPLES
@given(weights(), st.floats(0.1, 10))
def test_D_is_scale_invariant(W, c):
    np.testing.assert_allclose(
        A.feature_dimensionality(np.float32(c) * W), A.feature_dimensionality(W), atol=TOL
    )


@EXAMPLES
@given(weights())
def test_bounds(W):
    D = np.asarray(A.feature_dimensionality(W))
    assert np.all(np.isfinite(D))
    assert np.all(D >= 0) and np.all(D <= 1 + 1e-5)
    assert D.sum() <= W.shape[1] + TOL * W.shape[0]
    assert np.all(D[np.linalg.norm(W, axis=-1) == 0] == 0)


def embed(blocks, d_hidden, seed, scale=1.0):
    """Place each block (k, r) in its own orthogonal subspace of R^d_hidden, then rotate."""
    rows, offset = [], 0
    for V in blocks:
        padded = np.zeros((len(V), d_hidden))
        padded[:, offset : offset + V.shape[1]] = V
        rows.append(padded)
        offset += V.shape[1]
    return (scale * np.concatenate(rows) @ orthogonal(seed, d_hidden)).astype(np.float32)


@pytest.mark.parametrize("name", list(A.POLYTOPES))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(0.01, 100))
def test_exact_values_on_polytopes(name, seed, scale):
    V = A.polytope_vertices(name)
    # Padded with zero features to one (8, 4) shape: zero rows change no one's D (and it saves
    # a compilation per polytope).
    W = np.zeros((8, 4), np.float32)
    W[: len(V)] = embed([V], 4, seed, scale)
    expected = np.zeros(8)
    expected[: len(V)] = A.POLYTOPES[name][2]
    np.testing.assert_allclose(A.feature_dimensionality(W), expected, atol=TOL)


def test_exact_values_on_a_tegum_product_of_every_polytope():
    names = list(A.POLYTOPES)
    blocks = [A.polytope_vertices(n) for n in names]
    W = embed(blocks, sum(V.shape[1] for V in blocks) + 2, seed=0)
    expected = np.concatenate([np.full(len(V), A.POLYTOPES[n][2]) for n, V in zip(names, blocks)])
    np.testing.assert_allclose(A.feature_dimensionality(W), expected, atol=TOL)
    assert A.capacity is A.feature_dimensionality


@given(st.integers(1, 5), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
@settings(max_examples=50, deadline=None)
def test_orthonormal_set(k, seed, random):
    # k orthonormal features and 5 − k zero ones in 7 dimensions, in a random order.
    W = np.zeros((5, 7), np.float32)
    W[:k] = orthogonal(seed, 7)[:k]
    order = random.sample(range(5), 5)
    np.testing.assert_allclose(A.feature_dimensionality(W[order]), (np.arange(5) < k)[order], atol=TOL)
    # D* = d_hidden / ‖W‖²_F: 1 only when the set fills the hidden space.
    np.testing.assert_allclose(A.dimensions_per_feature(W), 7 / k, rtol=TOL)
    np.testing.assert_allclose(A.dimensions_per_feature(orthogonal(seed, 3)), 1.0, rtol=TOL)


def test_zero_features_give_zero_not_nan():
    W = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 2.0], [1e-9, 0.0]], np.float32)
    np.testing.assert_array_equal(A.feature_dimensionality(W), [0, 1, 0, 1, 0])
    np.testing.assert_array_equal(A.feature_dimensionality(np.zeros((3, 2))), 0)
    assert np.isinf(A.dimensions_per_feature(np.zeros((3, 2))))
    grad = jax.grad(lambda W: A.feature_dimensionality(W).sum())(jnp.asarray(W))
    assert np.all(np.isfinite(grad))


def test_dimensions_per_feature_of_antipodal_pairs_is_one_half():
    W = np.concatenate([np.eye(3), -np.eye(3)])
    np.testing.assert_allclose(A.dimensions_per_feature(W), 0.5)


@EXAMPLES
@given(weights(), st.floats(0.0, 5.0))
def test_norms_and_represented_features(W, threshold):
    norms = np.linalg.norm(W.astype(np.float64), axis=-1)
    with np.errstate(divide="ignore"):
        D_star = W.shape[1] / (norms**2).sum()
    np.testing.assert_allclose(A.feature_norms(W), norms, rtol=TOL, atol=1e-6)
    clear = np.abs(norms - threshold) > 1e-3 * max(threshold, 1)  # skip float32 ties
    np.testing.assert_array_equal(
        np.asarray(A.represented_features(W, threshold))[clear], (norms > threshold)[clear]
    )
    if clear.all():
        assert int(A.n_represented(W, threshold)) == int((norms > threshold).sum())
    np.testing.assert_allclose(A.dimensions_per_feature(W), D_star, rtol=TOL)


def sweep_W(shape=(3, 2, 10, 4), seed=0):
    W = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return xr.DataArray(
        W,
        dims=("feature_probability", "seed", "feature", "hidden"),
        coords={"feature_probability": [1.0, 0.1, 0.01], "seed": [7, 8], "feature": np.arange(10)},
    )


@pytest.mark.parametrize(
    "fn, core",
    [
        (A.feature_dimensionality, ("feature",)),
        (A.feature_norms, ("feature",)),
        (A.represented_features, ("feature",)),
        (A.dimensions_per_feature, ()),
        (A.n_represented, ()),
    ],
)
def test_dataarray_in_dataarray_out(fn, core):
    W = sweep_W()
    out = fn(W)
    assert isinstance(out, xr.DataArray)
    assert out.dims == ("feature_probability", "seed", *core)
    for dim in ("feature_probability", "seed", *core):
        np.testing.assert_array_equal(out[dim], W[dim])
    np.testing.assert_array_equal(out.values, np.asarray(fn(W.values)))
    # Core dims are found by name, whatever their position.
    transposed = fn(W.transpose("hidden", "seed", "feature", "feature_probability"))
    xr.testing.assert_allclose(transposed.transpose(*out.dims), out)


def test_dataarray_core_dims_named_otherwise_are_taken_from_the_end():
    W = sweep_W().rename(feature="latent", hidden="d_model")
    D = A.feature_dimensionality(W)
    assert D.dims == ("feature_probability", "seed", "latent")
    np.testing.assert_allclose(D.values, A.feature_dimensionality(W.values))


def test_over_training_snapshots():
    W = xr.DataArray(
        np.random.default_rng(1).normal(size=(2, 5, 6, 3)),
        dims=("seed", "step", "feature", "hidden"),
        coords={"step": [0, 10, 20, 30, 40]},
    )
    D = A.feature_dimensionality(W)
    assert D.dims == ("seed", "step", "feature")
    np.testing.assert_array_equal(D["step"], [0, 10, 20, 30, 40])
    np.testing.assert_allclose(D.isel(step=2).values, A.feature_dimensionality(W.values[:, 2]))


@pytest.mark.parametrize(
    "fn",
    [A.feature_dimensionality, A.dimensions_per_feature, A.feature_norms, A.represented_features,
     A.n_represented],
)
def test_jit_of_vmap(fn):
    W = jnp.asarray(np.random.default_rng(2).normal(size=(4, 7, 3)), jnp.float32)
    eager = fn(W)
    # One compilation checks both: the functions trace under jit and map under vmap.
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(W), eager, rtol=1e-5, atol=1e-6)
