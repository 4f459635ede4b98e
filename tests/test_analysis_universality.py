"""Properties of the SAE universality metrics: decoder and activation similarity, their random
baseline, all-pairs similarity and feature splitting."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A
from toymodels.analysis import _cosines

# ~5 ms per example after each shape's first compilation, which dominates; 30 per property keeps
# this file well inside its 60 s budget on 2 cores.
EXAMPLES = settings(max_examples=30, deadline=None)
TOL = 1e-4
ELEMENTS = st.floats(-10, 10, width=32, allow_subnormal=False)
#: (n_a, n_b, d): few, as each new one costs a compilation; n ≤ 5 so brute force stays cheap.
SHAPES = [(1, 1, 1), (3, 3, 4), (2, 5, 3), (5, 4, 2)]


def directions(n, d):
    """(n, d) in [−10, 10], entries under 1e-3 in size set to 0 (so rescaling stays normal)."""
    return hnp.arrays(np.float32, (n, d), elements=ELEMENTS).map(
        lambda x: np.where(np.abs(x) < 1e-3, 0, x).astype(np.float32)
    )


def pairs(shapes=SHAPES):
    return st.sampled_from(shapes).flatmap(
        lambda s: st.tuples(directions(s[0], s[2]), directions(s[1], s[2]))
    )


def nonzero_rows(x):
    x = x.copy()
    x[~x.any(axis=1)] = 1.0
    return x


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def cosines(a, b):
    def unit(x):
        x = np.asarray(x, np.float64)
        n = np.linalg.norm(x, axis=-1, keepdims=True)
        return np.divide(x, n, out=np.zeros_like(x), where=n > 0)

    return unit(a) @ unit(b).T


def brute_force_matching(a, b, absolute=False):
    """max over injective pairings of the smaller set into the larger one, by enumeration."""
    C = cosines(a, b)
    if absolute:
        C = np.abs(C)
    if C.shape[0] > C.shape[1]:
        C = C.T
    m = C.shape[0]
    pairings = itertools.permutations(range(C.shape[1]), m)
    return max(C[np.arange(m), list(p)].mean() for p in pairings)


@EXAMPLES
@given(pairs())
def test_mean_max_cosine_is_mmcs_both_ways(pair):
    a, b = pair
    C = cosines(a, b)
    expected = 0.5 * (C.max(axis=1).mean() + C.max(axis=0).mean())
    np.testing.assert_allclose(A.mean_max_cosine(a, b), expected, atol=TOL)
    np.testing.assert_allclose(
        A.mean_max_cosine(a, b), 0.5 * (A.mmcs(a, b) + A.mmcs(b, a)), atol=1e-6
    )
    np.testing.assert_allclose(A.mean_max_cosine(b, a), A.mean_max_cosine(a, b), atol=1e-6)
    assert -1 - 1e-6 <= float(A.mean_max_cosine(a, b)) <= 1 + 1e-6


@EXAMPLES
@given(pairs(), st.booleans())
def test_matched_similarity_and_mcc_match_brute_force(pair, absolute):
    a, b = pair
    expected = brute_force_matching(a, b, absolute)
    np.testing.assert_allclose(A.matched_similarity(a, b, absolute=absolute), expected, atol=TOL)
    np.testing.assert_allclose(A.matched_similarity(b, a, absolute=absolute), expected, atol=TOL)
    if absolute:
        np.testing.assert_allclose(A.mcc(a, b), expected, atol=TOL)
        assert -1e-6 <= float(A.mcc(a, b)) <= 1 + 1e-6
    # One-to-one can only do worse than each row of the smaller set taking its best match.
    C = cosines(a, b)
    C = np.abs(C) if absolute else C
    best = C.max(axis=1).mean() if len(a) <= len(b) else C.max(axis=0).mean()
    assert float(A.matched_similarity(a, b, absolute=absolute)) <= best + TOL


@EXAMPLES
@given(
    pairs(),
    st.integers(0, 2**32 - 1),
    st.floats(0.01, 100),
    st.floats(0.01, 100),
    st.randoms(use_true_random=False),
)
def test_similarities_ignore_rotation_rescaling_and_order(pair, seed, c_a, c_b, random):
    a, b = pair
    Q = orthogonal(seed, a.shape[1]).astype(np.float32)
    moved_a = (np.float32(c_a) * a @ Q)[random.sample(range(len(a)), len(a))]
    moved_b = (np.float32(c_b) * b @ Q)[random.sample(range(len(b)), len(b))]
    for fn in (A.mean_max_cosine, A.matched_similarity, A.mcc):
        np.testing.assert_allclose(fn(moved_a, moved_b), fn(a, b), atol=TOL, err_msg=fn.__name__)


@EXAMPLES
@given(pairs(), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_identical_or_permuted_and_rescaled_dictionaries_score_one(pair, seed, random):
    a = nonzero_rows(pair[0])
    scales = np.random.default_rng(seed).uniform(0.01, 100, size=(len(a), 1)).astype(np.float32)
    permuted = (a * scales)[random.sample(range(len(a)), len(a))]
    for fn in (A.mean_max_cosine, A.matched_similarity, A.mcc):
        np.testing.assert_allclose(fn(a, a), 1.0, atol=TOL, err_msg=fn.__name__)
        np.testing.assert_allclose(fn(a, permuted), 1.0, atol=TOL, err_msg=fn.__name__)
    signs = np.where(np.random.default_rng(seed).random((len(a), 1)) < 0.5, -1, 1)
    np.testing.assert_allclose(A.mcc(a, a * signs), 1.0, atol=TOL)  # |cos|: signs do not matter


def test_signed_matching_tells_a_direction_from_its_negation():
    a = np.eye(3, dtype=np.float32)
    flipped = a * np.array([[-1], [1], [1]], np.float32)
    assert float(A.matched_similarity(a, flipped)) == pytest.approx(1 / 3)
    assert float(A.matched_similarity(a, flipped, absolute=True)) == pytest.approx(1.0)
    assert float(A.mcc(a, flipped)) == pytest.approx(1.0)
    assert float(A.mean_max_cosine(a, flipped)) == pytest.approx(2 / 3)


def reference_max_correlation(acts_a, acts_b):
    a, b = np.float64(acts_a), np.float64(acts_b)
    a, b = a - a.mean(0), b - b.mean(0)
    norm_a, norm_b = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    corr = (a.T @ b) / np.outer(norm_a, norm_b).clip(1e-300)
    corr[norm_a == 0] = 0
    corr[:, norm_b == 0] = 0
    return corr.max(axis=1)


def activations(batch, d):
    element = st.one_of(st.just(0.0), st.floats(0, 10, width=32, allow_subnormal=False))
    return hnp.arrays(np.float32, (batch, d), elements=element)


def clear_spread(acts):
    """Every latent constant or clearly varying: nearly constant ones have ill-conditioned
    correlations (and an affine map in float32 can make them constant)."""
    spread = np.float64(acts).std(0)
    return bool(np.all((spread == 0) | (spread > 0.1)))


ACT_PAIRS = st.sampled_from([(1, 1, 1), (12, 3, 4), (12, 5, 2)]).flatmap(
    lambda s: st.tuples(activations(s[0], s[1]), activations(s[0], s[2]))
)


@EXAMPLES
@given(ACT_PAIRS)
def test_max_activation_correlation_matches_pearson(pair):
    acts_a, acts_b = pair
    assume(clear_spread(acts_a) and clear_spread(acts_b))
    expected = reference_max_correlation(acts_a, acts_b)
    rho = np.asarray(A.max_activation_correlation(acts_a, acts_b))
    np.testing.assert_allclose(rho, expected, atol=1e-4)
    np.testing.assert_allclose(A.mean_max_activation_correlation(acts_a, acts_b), expected.mean(),
                               atol=1e-4)
    assert np.all(np.isfinite(rho)) and np.all(np.abs(rho) <= 1 + 1e-5)
    assert np.all(rho[np.float64(acts_a).std(0) == 0] == 0)  # dead latents get 0


@EXAMPLES
@given(ACT_PAIRS, st.floats(0.1, 10), st.floats(-5, 5), st.randoms(use_true_random=False))
def test_activation_correlation_ignores_affine_maps_and_finds_shared_latents(pair, s, t, random):
    acts_a, acts_b = pair
    assume(clear_spread(acts_a) and clear_spread(acts_b))
    rho = np.asarray(A.max_activation_correlation(acts_a, acts_b))
    moved_b = (np.float32(s) * acts_b + np.float32(t))[:, random.sample(range(acts_b.shape[1]),
                                                                        acts_b.shape[1])]
    np.testing.assert_allclose(A.max_activation_correlation(acts_a, moved_b), rho, atol=1e-4)
    # B containing A's latents: every live latent of A is found with correlation 1.
    both = np.concatenate([acts_b, acts_a], axis=1)
    live = np.float64(acts_a).std(0) > 0
    np.testing.assert_allclose(np.asarray(A.max_activation_correlation(acts_a, both))[live], 1.0,
                               atol=1e-4)


def test_dead_latents_have_no_nan_correlation():
    acts = np.zeros((8, 3), np.float32)
    acts[:, 1] = 2.5  # a latent that is constant but not zero
    live = np.random.default_rng(0).random((8, 2)).astype(np.float32)
    np.testing.assert_array_equal(A.max_activation_correlation(acts, live), [0, 0, 0])
    np.testing.assert_array_equal(A.max_activation_correlation(live, acts), [0, 0])
    with pytest.raises(ValueError, match="same batch"):
        A.max_activation_correlation(acts, live[:4])


@pytest.mark.parametrize("d", [1, 2, 3, 5, 64])
@pytest.mark.parametrize("n", [1, 2, 7, 100])
def test_expected_max_cosine_has_the_closed_forms(n, d):
    exact = A.random_baseline(n, 1, d, similarity=A.mmcs)
    if d == 1:  # cos = ±1 with probability ½
        assert exact == pytest.approx(1 - 2.0 ** (1 - n), abs=1e-9)
    if d == 3:  # cos uniform on [−1, 1] (Archimedes): E max of n = (n − 1)/(n + 1)
        assert exact == pytest.approx((n - 1) / (n + 1), abs=1e-9)
    if n == 1:
        assert exact == pytest.approx(0.0, abs=1e-9)
    if n > 1:  # more draws, a larger max (at d = 1 it is 1 − 2^(1−n), 1.0 in float at n = 100)
        fewer = A.random_baseline(n - 1, 1, d, similarity=A.mmcs)
        assert exact > fewer if d > 1 else exact >= fewer


@pytest.mark.parametrize(
    ("n_a", "n_b", "d", "similarity"),
    [(8, 16, 8, A.mean_max_cosine), (40, 10, 20, A.mmcs), (3, 5, 2, A.mean_max_cosine)],
)
def test_exact_baseline_agrees_with_sampling_and_with_random_dictionaries(n_a, n_b, d, similarity):
    exact = A.random_baseline(n_a, n_b, d, similarity=similarity)
    sampled = A.random_baseline(n_a, n_b, d, similarity=similarity, method="sample",
                                n_samples=400, seed=1)
    # Independent random dictionaries, drawn here another way (uniform on the sphere via
    # normalised Gaussians from another generator), land on it within sampling error.
    rng = np.random.default_rng(12345)
    scores = np.asarray(similarity(rng.normal(size=(400, n_a, d)).astype(np.float32),
                                   rng.normal(size=(400, n_b, d)).astype(np.float32)))
    error = scores.std() / np.sqrt(len(scores))
    assert abs(scores.mean() - exact) < 4 * error
    assert abs(sampled - exact) < 4 * error


def test_sampled_baselines_for_matched_similarities():
    kwargs = dict(method="sample", n_samples=200)
    matched = A.random_baseline(6, 12, 5, similarity=A.matched_similarity, seed=3, **kwargs)
    assert matched == A.random_baseline(6, 12, 5, similarity=A.matched_similarity, seed=3, **kwargs)
    rng = np.random.default_rng(99)
    a, b = rng.normal(size=(200, 6, 5)), rng.normal(size=(200, 12, 5))
    scores = np.asarray(A.matched_similarity(a, b))
    assert abs(scores.mean() - matched) < 5 * scores.std() / np.sqrt(200)
    # Matching one to one cannot beat each of the 6 taking its best of 12 (mmcs(b, a)).
    assert matched < A.random_baseline(12, 6, 5, similarity=A.mmcs) + 0.02
    mcc = A.random_baseline(6, 12, 5, similarity=A.mcc, **kwargs)
    assert matched < mcc <= 1


def test_random_baseline_refuses_bad_options():
    with pytest.raises(ValueError, match="random_baseline: d must be an integer ≥ 1"):
        A.random_baseline(4, 4, 0)
    with pytest.raises(ValueError, match="random_baseline: n_a must be an integer ≥ 1"):
        A.random_baseline(2.5, 4, 3)
    with pytest.raises(ValueError, match="method='exact' is known for similarity in"):
        A.random_baseline(4, 4, 3, similarity=A.matched_similarity)
    with pytest.raises(ValueError, match="method must be 'exact' or 'sample'"):
        A.random_baseline(4, 4, 3, method="simulate")


def seeds_by_ratio(rng, ratios=(1, 2, 4), d=6, n_true=4):
    return {
        r: xr.DataArray(
            rng.normal(size=(3, n_true * r, d)).astype(np.float32),
            dims=("seed", "latent", "d_in"),
            coords={"seed": [0, 1, 2]},
        )
        for r in ratios
    }


REFERENCES = {  # independent NumPy versions, so the all-pairs check costs no compilations
    A.mean_max_cosine: lambda a, b: (cosines(a, b).max(1).mean() + cosines(a, b).max(0).mean()) / 2,
    A.mmcs: lambda learned, truth: cosines(truth, learned).max(1).mean(),
    A.matched_similarity: brute_force_matching,
}


@pytest.mark.parametrize("similarity", list(REFERENCES))
def test_pairwise_similarity_is_every_pair_labeled(similarity):
    runs = seeds_by_ratio(np.random.default_rng(0), ratios=(1, 2), n_true=2, d=4)
    S = A.pairwise_similarity(runs, dim="ratio", similarity=similarity)
    assert S.dims == ("ratio_a", "seed_a", "ratio_b", "seed_b")
    assert S.name == similarity.__name__
    np.testing.assert_array_equal(S["ratio_b"], [1, 2])
    np.testing.assert_array_equal(S["seed_a"], [0, 1, 2])
    for (ra, a), (rb, b) in itertools.product(runs.items(), repeat=2):
        for sa, sb in itertools.product(range(3), repeat=2):
            expected = REFERENCES[similarity](a.values[sa], b.values[sb])
            got = float(S.sel(ratio_a=ra, ratio_b=rb, seed_a=sa, seed_b=sb))
            assert got == pytest.approx(expected, abs=1e-5)
    if similarity is not A.mmcs:
        np.testing.assert_allclose(
            S.values, S.transpose("ratio_b", "seed_b", "ratio_a", "seed_a").values, atol=1e-6
        )
        diagonal = S.values.reshape(6, 6)[np.arange(6), np.arange(6)]
        np.testing.assert_allclose(diagonal, 1.0, atol=1e-5)


def test_pairwise_similarity_forms_of_input():
    rng = np.random.default_rng(1)
    runs = seeds_by_ratio(rng, ratios=(1, 2))
    single = A.pairwise_similarity(runs[2])
    assert single.dims == ("seed_a", "seed_b")
    np.testing.assert_allclose(
        single.values,
        A.pairwise_similarity(runs, dim="ratio").sel(ratio_a=2, ratio_b=2).values,
        atol=1e-6,
    )
    plain = [rng.normal(size=(n, 5)) for n in (3, 6)]
    S = A.pairwise_similarity(plain)
    assert S.dims == ("model_a", "model_b")
    assert float(S[0, 1]) == pytest.approx(float(A.mean_max_cosine(*plain)), abs=1e-6)
    with pytest.raises(ValueError, match="share d_in"):
        A.pairwise_similarity({"x": plain[0], "y": rng.normal(size=(3, 4))})
    with pytest.raises(ValueError, match="same grid"):
        A.pairwise_similarity({1: runs[1], 2: runs[2].isel(seed=[0, 1])})
    with pytest.raises(ValueError, match="same grid"):
        A.pairwise_similarity({1: runs[1], 2: runs[2].assign_coords(seed=[5, 6, 7])})
    with pytest.raises(ValueError, match=r"must be a \(d_sae, d_in\) array"):
        A.pairwise_similarity({1: rng.normal(size=(2, 3, 4))})


def test_universality_experiment_scale_in_bounded_memory(monkeypatch):
    # Blocks of rows and batches of pairs give the same numbers as one big cosine matrix.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(2, 37, 8)).astype(np.float32)
    b = rng.normal(size=(3, 23, 8)).astype(np.float32)
    whole = [np.asarray(x) for x in _cosines.max_cosines(a[:, None], b[None])]
    monkeypatch.setattr(_cosines, "BLOCK_ELEMENTS", 100)  # 4 rows a block, pairs one at a time
    blocked = [np.asarray(x) for x in _cosines.max_cosines(a[:, None], b[None])]
    for w, bl in zip(whole, blocked):
        np.testing.assert_allclose(bl, w, atol=1e-6)
    C = np.einsum("ind,jmd->ijnm", a / np.linalg.norm(a, axis=-1, keepdims=True),
                  b / np.linalg.norm(b, axis=-1, keepdims=True))
    np.testing.assert_allclose(blocked[0], C.max(-1), atol=1e-5)
    np.testing.assert_allclose(blocked[1], C.max(-2), atol=1e-5)


def test_dataarray_in_dataarray_out():
    rng = np.random.default_rng(3)
    grid = {"l1_coefficient": [0.1, 1.0], "seed": [0, 1, 2]}
    a = xr.DataArray(rng.normal(size=(2, 3, 6, 4)).astype(np.float32),
                     dims=(*grid, "latent", "d_in"), coords=grid)
    b = a.isel(latent=slice(0, 4)) + 0.1
    for fn in (A.mean_max_cosine, A.matched_similarity, A.mcc):
        out = fn(a, b)
        assert out.dims == ("l1_coefficient", "seed"), fn.__name__
        np.testing.assert_allclose(out.values, fn(a.values, b.values), atol=1e-6)
    acts = xr.DataArray(np.maximum(rng.normal(size=(2, 3, 20, 6)), 0).astype(np.float32),
                        dims=(*grid, "token", "latent"), coords={**grid, "latent": list("abcdef")})
    rho = A.max_activation_correlation(acts, acts.isel(latent=[0, 2]))
    assert rho.dims == ("l1_coefficient", "seed", "latent")
    np.testing.assert_array_equal(rho["latent"], list("abcdef"))
    assert A.mean_max_activation_correlation(acts, acts).dims == ("l1_coefficient", "seed")
    np.testing.assert_allclose(A.mean_max_activation_correlation(acts, acts).values, 1.0, atol=1e-5)


def test_jit_of_vmap():
    rng = np.random.default_rng(4)
    a = jnp.asarray(rng.normal(size=(3, 7, 4)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(3, 5, 4)), jnp.float32)
    acts_a = jnp.asarray(rng.random((3, 16, 7)), jnp.float32)
    acts_b = jnp.asarray(rng.random((3, 16, 5)), jnp.float32)
    for fn, args in [
        (A.mean_max_cosine, (a, b)),
        (A.max_activation_correlation, (acts_a, acts_b)),
        (A.mean_max_activation_correlation, (acts_a, acts_b)),
    ]:
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(*args), fn(*args), rtol=1e-5, atol=1e-6)
    grad = jax.grad(lambda x: A.mean_max_cosine(x, b[0]))(a[0])
    assert np.all(np.isfinite(grad))


def split_setup(rng, d=32):
    """4 narrow latents; the wide SAE splits latent 0 into 3 children, keeps 1–3, and adds a
    decoy near latent 0 that fires where latent 0 does not."""
    narrow = np.linalg.qr(rng.normal(size=(d, 4)))[0].T.astype(np.float32)
    children = narrow[0] + 0.25 * np.linalg.qr(rng.normal(size=(d, 3)))[0].T
    decoy = narrow[0] + 0.2 * narrow[1]
    wide = np.concatenate([children, narrow[1:], decoy[None]]).astype(np.float32)
    batch = 600
    parent = rng.random(batch) < 0.3
    which = rng.integers(0, 3, batch)
    acts_narrow = np.where(rng.random((batch, 4)) < 0.2, rng.random((batch, 4)), 0)
    acts_narrow[:, 0] = parent * (1 + rng.random(batch))
    acts_wide = np.zeros((batch, 7))
    acts_wide[:, :3] = (parent[:, None] & (which[:, None] == np.arange(3))) * 2.0
    acts_wide[:, 3:6] = acts_narrow[:, 1:]
    acts_wide[:, 6] = ~parent & (rng.random(batch) < 0.3)
    return narrow, wide, acts_narrow.astype(np.float32), acts_wide.astype(np.float32)


def test_feature_splits_finds_the_children():
    narrow, wide, acts_narrow, acts_wide = split_setup(np.random.default_rng(5))
    by_direction = A.feature_splits(narrow, wide, cos_threshold=0.8)
    assert list(by_direction.columns) == ["narrow_latent", "wide_latent", "cosine", "n_split"]
    assert set(by_direction.query("narrow_latent == 0").wide_latent) == {0, 1, 2, 6}
    table = A.feature_splits(narrow, wide, acts_narrow, acts_wide, cos_threshold=0.8)
    assert list(table.columns) == [
        "narrow_latent", "wide_latent", "cosine", "coactivation", "n_split"
    ]
    children = table.groupby("narrow_latent").wide_latent.apply(set).to_dict()
    assert children == {0: {0, 1, 2}, 1: {3}, 2: {4}, 3: {5}}
    assert table.query("narrow_latent == 0").n_split.tolist() == [3, 3, 3]
    np.testing.assert_allclose(table.coactivation, 1.0)
    assert table.query("narrow_latent == 0").cosine.is_monotonic_decreasing


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-0.5, 0.9), st.floats(0, 0.9))
def test_feature_splits_match_a_brute_force_table(seed, cos_threshold, coact_threshold):
    rng = np.random.default_rng(seed)
    narrow, wide = rng.normal(size=(5, 3)), rng.normal(size=(9, 3))
    acts_narrow = np.where(rng.random((40, 5)) < 0.4, 1.0, 0.0)
    acts_wide = np.where(rng.random((40, 9)) < 0.4, 1.0, 0.0)
    acts_wide[:, 0] = 0  # a wide latent that never fires
    C = cosines(narrow, wide)
    rows = []
    for i, k in itertools.product(range(5), range(9)):
        fired = acts_wide[:, k] != 0
        coact = (acts_narrow[fired, i] != 0).mean() if fired.any() else 0.0
        if C[i, k] > cos_threshold and coact > coact_threshold:
            rows.append((i, k, C[i, k], coact))
    assume(all(abs(C.ravel() - cos_threshold) > 1e-5))
    table = A.feature_splits(narrow, wide, acts_narrow, acts_wide,
                             cos_threshold=cos_threshold, coact_threshold=coact_threshold)
    expected = pd.DataFrame(
        np.array(rows, np.float64).reshape(-1, 4),
        columns=["narrow_latent", "wide_latent", "cosine", "coactivation"],
    )
    got = table.sort_values(["narrow_latent", "wide_latent"]).reset_index(drop=True)
    expected = expected.sort_values(["narrow_latent", "wide_latent"]).reset_index(drop=True)
    np.testing.assert_array_equal(got.narrow_latent, expected.narrow_latent)
    np.testing.assert_array_equal(got.wide_latent, expected.wide_latent)
    np.testing.assert_allclose(got.cosine, expected.cosine, atol=1e-5)
    np.testing.assert_allclose(got.coactivation, expected.coactivation)
    assert not table.isna().any().any()


def test_feature_splits_refuses_bad_input():
    narrow, wide, acts_narrow, acts_wide = split_setup(np.random.default_rng(6))
    with pytest.raises(ValueError, match="give both acts_narrow and acts_wide"):
        A.feature_splits(narrow, wide, acts_narrow)
    with pytest.raises(ValueError, match="W_dec_wide must have 32 columns"):
        A.feature_splits(narrow, wide[:, :5])
    with pytest.raises(ValueError, match="W_dec_narrow must be 2-D for one SAE"):
        A.feature_splits(narrow[None], wide)
    with pytest.raises(ValueError, match="acts_wide must have 7 columns"):
        A.feature_splits(narrow, wide, acts_narrow, acts_wide[:, :3])
    with pytest.raises(ValueError, match="same batch"):
        A.feature_splits(narrow, wide, acts_narrow, acts_wide[:10])
    with pytest.raises(ValueError, match=r"cos_threshold must be in \[-1, 1\)"):
        A.feature_splits(narrow, wide, cos_threshold=1.0)
    with pytest.raises(ValueError, match=r"coact_threshold must be in \[0, 1\)"):
        A.feature_splits(narrow, wide, coact_threshold=-0.1)


def test_dictionaries_of_different_widths_are_refused():
    for fn in (A.mean_max_cosine, A.matched_similarity, A.mcc):
        with pytest.raises(ValueError, match="same width d"):
            fn(np.ones((2, 3)), np.ones((2, 4)))
