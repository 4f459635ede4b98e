"""Properties of max cosine and MMCS (Sharkey et al. 2022)."""

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

# Each example draws arrays and makes a few calls (~5 ms); 100 per property keeps the analysis
# tests well inside their 60 s budget on 2 cores.
EXAMPLES = settings(max_examples=100, deadline=None)
TOL = 1e-4
ELEMENTS = st.floats(-10, 10, width=32, allow_subnormal=False)


def directions(n, d):
    """(n, d) in [−10, 10], entries under 1e-3 in size set to 0 (so rescaling stays normal)."""
    return hnp.arrays(np.float32, (n, d), elements=ELEMENTS).map(
        lambda x: np.where(np.abs(x) < 1e-3, 0, x).astype(np.float32)
    )


def pairs():
    """(learned, truth) with a shared width d; few shapes, as each new one costs a compilation."""
    shapes = st.sampled_from([(1, 1, 1), (4, 3, 3), (9, 3, 5), (5, 4, 2)])  # n_learned ≥ n_true, d
    return shapes.flatmap(lambda s: st.tuples(directions(s[0], s[2]), directions(s[1], s[2])))


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def reference_max_cosine(learned, truth):
    def unit(x):
        x = np.asarray(x, np.float64)
        n = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    return (unit(truth) @ unit(learned).T).max(-1)


@EXAMPLES
@given(pairs())
def test_matches_a_reference_and_lies_in_minus_one_one(pair):
    learned, truth = pair
    expected = reference_max_cosine(learned, truth)
    np.testing.assert_allclose(A.max_cosine(learned, truth), expected, atol=TOL)
    score = float(A.mmcs(learned, truth))
    assert -1 - 1e-6 <= score <= 1 + 1e-6
    np.testing.assert_allclose(score, expected.mean(), atol=TOL)


@EXAMPLES
@given(pairs(), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_learned_containing_truth_scores_one(pair, seed, random):
    learned, truth = pair
    truth[~truth.any(axis=1)] = 1.0  # no zero rows
    scales = np.random.default_rng(seed).uniform(0.01, 100, size=(len(truth), 1))
    learned[: len(truth)] = truth * scales.astype(np.float32)
    learned = learned[random.sample(range(len(learned)), len(learned))]
    np.testing.assert_allclose(A.max_cosine(learned, truth), 1.0, atol=TOL)
    np.testing.assert_allclose(A.mmcs(learned, truth), 1.0, atol=TOL)


@EXAMPLES
@given(pairs(), st.data())
def test_more_learned_directions_never_lower_the_score(pair, data):
    learned, truth = pair
    k = data.draw(st.integers(1, len(learned)))
    fewer = learned.copy()
    fewer[k:] = learned[0]  # as a set of directions, learned[:k]; same shape, no recompilation
    assert float(A.mmcs(learned, truth)) >= float(A.mmcs(fewer, truth)) - 1e-6
    best = np.asarray(A.max_cosine(learned, truth))
    assert np.all(best >= np.asarray(A.max_cosine(fewer, truth)) - 1e-6)


@EXAMPLES
@given(pairs(), st.integers(0, 2**32 - 1), st.floats(0.01, 100), st.floats(0.01, 100))
def test_invariant_under_a_shared_rotation_and_positive_scales(pair, seed, a, b):
    learned, truth = pair
    Q = orthogonal(seed, truth.shape[1]).astype(np.float32)
    expected = np.asarray(A.max_cosine(learned, truth))
    a, b = np.float32(a), np.float32(b)
    np.testing.assert_allclose(A.max_cosine(a * learned @ Q, b * truth @ Q), expected, atol=TOL)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_random_directions_score_far_below_the_truth(seed):
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(32, 64)).astype(np.float32)
    random_learned = rng.normal(size=(32, 64)).astype(np.float32)
    # Max of 32 cosines with std 1/8: about 0.27 (Sharkey et al.'s random baseline is low).
    assert float(A.mmcs(random_learned, truth)) < 0.5
    assert float(A.mmcs(np.concatenate([random_learned, truth]), truth)) > 0.9999


def test_zero_vectors_have_cosine_zero():
    truth = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], np.float32)
    learned = np.array([[0.0, 0.0], [-1.0, 0.0], [0.0, 3.0]], np.float32)
    np.testing.assert_allclose(A.max_cosine(learned, truth), [0, 0, 1])
    np.testing.assert_allclose(A.mmcs(np.zeros((4, 2)), truth), 0.0)
    np.testing.assert_allclose(A.max_cosine(learned[1:2], truth), [-1, 0, 0])
    tiny = np.array([[1e-30, 0.0]], np.float32)  # a direction, however short
    np.testing.assert_allclose(A.max_cosine(tiny, truth), [1, 0, 0])
    grad = jax.grad(lambda x: A.mmcs(x, truth))(jnp.asarray(learned))
    assert np.all(np.isfinite(grad))


def test_dataarray_in_dataarray_out():
    rng = np.random.default_rng(0)
    learned = xr.DataArray(
        rng.normal(size=(3, 2, 8, 4)).astype(np.float32),
        dims=("feature_probability", "seed", "latent", "hidden"),
        coords={"feature_probability": [1.0, 0.1, 0.01], "seed": [7, 8]},
    )
    truth = xr.DataArray(
        rng.normal(size=(5, 4)).astype(np.float32),
        dims=("feature", "hidden"),
        coords={"feature": list("abcde")},
    )
    score = A.mmcs(learned, truth)
    assert score.dims == ("feature_probability", "seed")
    np.testing.assert_array_equal(score["seed"], [7, 8])
    np.testing.assert_allclose(score.values, A.mmcs(learned.values, truth.values), atol=1e-6)
    best = A.max_cosine(learned, truth)
    assert best.dims == ("feature_probability", "seed", "feature")
    np.testing.assert_array_equal(best["feature"], list("abcde"))
    # Two dictionaries with the same dim names still compare (their rows differ in number).
    assert A.mmcs(learned, learned.isel(latent=slice(0, 3))).dims == ("feature_probability", "seed")


def test_jit_of_vmap():
    rng = np.random.default_rng(2)
    learned = jnp.asarray(rng.normal(size=(4, 9, 3)), jnp.float32)
    truth = jnp.asarray(rng.normal(size=(4, 5, 3)), jnp.float32)
    for fn in (A.mmcs, A.max_cosine):
        eager = fn(learned, truth)
        # One compilation checks both: the functions trace under jit and map under vmap.
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(learned, truth), eager, rtol=1e-6)
