"""Properties of max cosine, MMCS (Sharkey et al. 2022), MCC and the fraction recovered."""

from itertools import permutations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import assume, given, settings
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


def reference_cosines(a, b):
    """cos(a_i, b_k) in float64, 0 for a zero vector."""

    def unit(x):
        x = np.asarray(x, np.float64)
        n = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    return unit(a) @ unit(b).T


def reference_max_cosine(learned, truth):
    return reference_cosines(truth, learned).max(-1)


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


def reference_mcc(learned, truth):
    """max over injective pairings of the smaller set into the larger one of the mean |cos|."""
    C = np.abs(reference_cosines(learned, truth))
    if C.shape[0] > C.shape[1]:
        C = C.T
    m = C.shape[0]
    return max(C[np.arange(m), list(p)].mean() for p in permutations(range(C.shape[1]), m))


#: Including n_learned < n_true, where only n_learned pairs are matched.
MCC_SHAPES = st.sampled_from([(1, 1, 1), (4, 3, 3), (2, 5, 3), (5, 4, 2)])


@EXAMPLES
@given(MCC_SHAPES.flatmap(lambda s: st.tuples(directions(s[0], s[2]), directions(s[1], s[2]))))
def test_mcc_matches_brute_force_and_lies_in_zero_one(pair):
    learned, truth = pair
    score = float(A.mcc(learned, truth))
    np.testing.assert_allclose(score, reference_mcc(learned, truth), atol=TOL)
    np.testing.assert_allclose(A.mcc(truth, learned), score, atol=TOL)  # symmetric
    assert -1e-6 <= score <= 1 + 1e-6
    # MMCS lets true directions share a learned one, so with n_learned ≥ n_true it bounds
    # the one-to-one match from above (on |cos|: mmcs of ±learned).
    if len(learned) >= len(truth):
        both_signs = np.concatenate([learned, -learned])
        assert score <= float(A.mmcs(both_signs, truth)) + TOL


@EXAMPLES
@given(pairs(), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_mcc_is_one_for_rescaled_flipped_and_permuted_truth(pair, seed, random):
    learned, truth = pair
    truth[~truth.any(axis=1)] = 1.0
    rng = np.random.default_rng(seed)
    scales = rng.uniform(0.01, 100, size=(len(truth), 1)) * rng.choice([-1, 1], (len(truth), 1))
    learned[: len(truth)] = truth * scales.astype(np.float32)
    learned = learned[random.sample(range(len(learned)), len(learned))]
    np.testing.assert_allclose(A.mcc(learned, truth), 1.0, atol=TOL)
    # Fewer learned than true directions: the mean is over the matched pairs only.
    np.testing.assert_allclose(A.mcc(truth[:1] * 3, truth), 1.0, atol=TOL)


def test_mcc_matches_one_to_one_where_mmcs_does_not():
    truth = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    learned = np.array([[1, 1, 0], [0, 0, 1]], np.float32)
    # Both true directions find (e_1 + e_2)/√2 at cosine 0.71; one to one, only one may.
    assert float(A.mmcs(learned, truth)) == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert float(A.mcc(learned, truth)) == pytest.approx(1 / np.sqrt(2) / 2, abs=1e-6)
    # Fewer learned directions than true ones: the mean is over the n_learned matched pairs.
    assert float(A.mcc(learned[:1], truth)) == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    with pytest.raises(ValueError, match="mcc: a must be finite"):
        A.mcc(np.full((2, 3), np.nan), truth)
    with pytest.raises(ValueError, match="mcc: both sets of directions need the same width d"):
        A.mcc(np.ones((2, 4)), truth)


@EXAMPLES
@given(pairs(), st.floats(-0.9, 0.99), st.integers(0, 2**32 - 1), st.floats(0.01, 100))
def test_fraction_recovered_matches_a_reference_and_ignores_rotation_and_scale(
    pair, threshold, seed, c
):
    learned, truth = pair
    best = reference_max_cosine(learned, truth)
    assume(np.all(np.abs(best - threshold) > 1e-5))
    expected = (best > threshold).mean()
    np.testing.assert_allclose(A.fraction_recovered(learned, truth, threshold), expected)
    Q = orthogonal(seed, truth.shape[1]).astype(np.float32)
    moved = A.fraction_recovered(np.float32(c) * learned[::-1] @ Q, truth @ Q, threshold)
    np.testing.assert_allclose(moved, expected)


def test_mcc_takes_a_sweep_decoder_and_a_plain_dictionary():
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(5, 4)).astype(np.float32)  # truth.dictionary: a NumPy array
    W_dec = xr.DataArray(
        rng.normal(size=(2, 3, 6, 4)).astype(np.float32),
        dims=("l1_coefficient", "seed", "latent", "d_in"),
        coords={"l1_coefficient": [0.01, 0.1], "seed": [0, 1, 2]},
    )
    W_dec[1, 2, :5] = truth[::-1] * 2
    for fn in (A.mcc, A.fraction_recovered, A.mmcs):
        score = fn(W_dec, truth)
        assert score.dims == ("l1_coefficient", "seed"), fn.__name__
        np.testing.assert_array_equal(score["seed"], [0, 1, 2])
        np.testing.assert_allclose(score.values, fn(W_dec.values, truth), atol=1e-6)
        assert float(score.sel(l1_coefficient=0.1, seed=2)) == pytest.approx(1.0, abs=1e-5)


def test_fraction_recovered_refuses_a_threshold_outside_its_range():
    x = np.eye(3, dtype=np.float32)
    np.testing.assert_allclose(A.fraction_recovered(x, x, -1.0), 1.0)
    with pytest.raises(ValueError, match=r"fraction_recovered: threshold must be in \[-1, 1\)"):
        A.fraction_recovered(x, x, 1.0)
