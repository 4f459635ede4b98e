"""Hedging against a known tree: 0 for the true dictionary, ½ for a latent mixing two features."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.analysis import hedging_from_weights, match_latents, tree_relatives

CHANIN = tm.GroundTruth.preset("chanin_absorption", seed=0)  # 0 the parent of 1, 2, 3
TREE = tm.GroundTruth.preset("matryoshka_tree", seed=0)


def test_relatives_are_parent_children_and_siblings_not_other_roots():
    parents = np.array([-1, 0, 0, 1, -1, 4])
    family = tree_relatives(parents)
    assert [f.tolist() for f in family] == [[1, 2], [0, 2, 3], [0, 1], [1], [5], [4]]


def test_the_true_dictionary_does_not_hedge():
    for truth in (CHANIN, TREE):
        D = truth.dictionary
        parts = hedging_from_weights(D, D, match_latents(D, D), truth.parents)
        for part in parts:
            np.testing.assert_allclose(part, 0.0, atol=1e-6)


def mixed(truth, a, b):
    """The true dictionary with latent a's decoder (d_a + d_b)/√2."""
    W_dec = np.asarray(truth.dictionary, np.float64).copy()
    W_dec[a] = (W_dec[a] + W_dec[b]) / np.sqrt(2)
    latent_of = match_latents(W_dec, truth.dictionary)
    np.testing.assert_array_equal(latent_of, np.arange(truth.n_features))
    return hedging_from_weights(W_dec, truth.dictionary, latent_of, truth.parents)


@pytest.mark.parametrize("a, b", [(0, 1), (1, 0), (1, 2)])  # child, parent, sibling
def test_a_latent_mixing_in_a_relative_hedges_half_all_on_the_relative(a, b):
    parts = mixed(CHANIN, a, b)
    np.testing.assert_allclose(parts.hedging[a], 0.5, atol=1e-6)
    np.testing.assert_allclose(parts.relatives[a], 0.5, atol=1e-6)
    np.testing.assert_allclose([parts.unrelated[a], parts.off_dictionary[a]], 0.0, atol=1e-6)
    others = np.arange(4) != a
    np.testing.assert_allclose(parts.hedging[others], 0.0, atol=1e-6)


def test_a_latent_mixing_in_another_tree_hedges_half_on_unrelated():
    parents = TREE.parents
    a = int(np.flatnonzero(parents >= 0)[0])
    b = int(np.flatnonzero((parents >= 0) & (parents != parents[a]))[0])  # another tree's child
    parts = mixed(TREE, a, b)
    np.testing.assert_allclose(parts.hedging[a], 0.5, atol=1e-6)
    np.testing.assert_allclose(parts.unrelated[a], 0.5, atol=1e-6)
    np.testing.assert_allclose(parts.relatives[a], 0.0, atol=1e-6)


def test_a_direction_off_the_dictionary_counts_as_off_dictionary():
    D = CHANIN.dictionary
    W_dec = np.asarray(D, np.float64).copy()
    off = np.linalg.qr(np.concatenate([D, np.eye(CHANIN.d_in)[:1]]).T)[0][:, 4]  # ⟂ every d_i
    W_dec[2] = D[2] + np.sqrt(3) * off  # cos² = 1/4 along d_2
    parts = hedging_from_weights(W_dec, D, np.arange(4), CHANIN.parents)
    np.testing.assert_allclose([parts.hedging[2], parts.off_dictionary[2]], 0.75, atol=1e-6)


def test_no_latent_or_a_zero_decoder_gives_nan():
    D = CHANIN.dictionary
    W_dec = np.asarray(D, np.float64).copy()
    W_dec[1] = 0
    parts = hedging_from_weights(W_dec, D, np.array([0, 1, -1, 3]), CHANIN.parents)
    for part in parts:
        assert np.isnan(part[[1, 2]]).all() and np.isfinite(part[[0, 3]]).all()


@st.composite
def problems(draw):
    """A random forest over random (not orthogonal, possibly overcomplete) true directions and a
    random decoder."""
    n, d_in, d_sae = draw(st.integers(2, 8)), draw(st.integers(2, 6)), draw(st.integers(1, 9))
    parents = [-1] + [draw(st.integers(-1, i - 1)) for i in range(1, n)]
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    return rng.normal(size=(d_sae, d_in)), rng.normal(size=(n, d_in)), np.array(parents), rng


@settings(max_examples=60, deadline=None)
@given(problems())
def test_parts_are_nonnegative_and_sum_to_hedging_in_zero_one(problem):
    W_dec, D, parents, _ = problem
    parts = hedging_from_weights(W_dec, D, match_latents(W_dec, D), parents)
    found = np.isfinite(parts.hedging)
    assert found.sum() == min(len(W_dec), len(D))
    total = parts.relatives + parts.unrelated + parts.off_dictionary
    np.testing.assert_allclose(total[found], parts.hedging[found], atol=1e-9)
    for part in parts:
        assert (part[found] >= -1e-12).all() and (part[found] <= 1 + 1e-12).all()


@settings(max_examples=40, deadline=None)
@given(problems())
def test_hedging_ignores_latent_order_scale_and_a_rotation(problem):
    W_dec, D, parents, rng = problem
    base = hedging_from_weights(W_dec, D, match_latents(W_dec, D), parents)
    order = rng.permutation(len(W_dec))
    scale = rng.uniform(0.01, 100, size=(len(W_dec), 1))
    R = np.linalg.qr(rng.normal(size=(D.shape[1], D.shape[1])))[0]
    moved_dec = (scale * W_dec)[order] @ R
    moved = hedging_from_weights(moved_dec, D @ R, match_latents(moved_dec, D @ R), parents)
    for a, b in zip(moved, base):
        np.testing.assert_allclose(a, b, atol=1e-9, equal_nan=True)


@pytest.mark.filterwarnings("ignore:.*did not become sparse")
def test_hedging_of_a_sweep_is_labelled_by_its_grid():
    sae = tm.SAEConfig(d_in=CHANIN.d_in, d_sae=2, l1_coefficient=3e-2)  # narrower than the truth
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=30, batch_size=64), data=CHANIN,
                  progress=False)
    out = tm.analysis.hedging(ds, CHANIN)
    assert set(out.data_vars) == {"hedging", "hedging_relatives", "hedging_unrelated",
                                  "hedging_off_dictionary"}
    for v in out.data_vars.values():
        assert v.dims == ("seed", "feature") and v.shape == (2, 4)
        assert (np.isfinite(v.values).sum(axis=1) == 2).all()  # two latents, two features matched
    one = tm.analysis.hedging(ds.isel(seed=1), CHANIN)
    W_dec = ds.W_dec.isel(seed=1).values
    direct = hedging_from_weights(W_dec, CHANIN.dictionary,
                                  match_latents(W_dec, CHANIN.dictionary), CHANIN.parents)
    np.testing.assert_allclose(one["hedging"].values, direct.hedging, equal_nan=True)
    np.testing.assert_allclose(out["hedging_relatives"].values[1], direct.relatives,
                               equal_nan=True)


def test_hedging_of_a_width_sweep_drops_the_padding():
    sae = tm.SAEConfig(d_in=CHANIN.d_in, d_sae=2)
    ds = tm.sweep(sae, {"d_sae": [2, 6]}, tm.TrainConfig(steps=20, batch_size=64), data=CHANIN,
                  progress=False)
    out = tm.analysis.hedging(ds, CHANIN)
    assert out["hedging"].dims == ("d_sae", "feature")
    assert np.isfinite(out["hedging"].sel(d_sae=2).values).sum() == 2  # padding never matched
    assert np.isfinite(out["hedging"].sel(d_sae=6).values).all()


def test_hedging_refuses_what_is_not_an_sae_sweep():
    with pytest.raises(ValueError, match="SAE sweep"):
        tm.analysis.hedging(xr.Dataset(), CHANIN)
    with pytest.raises(ValueError, match="d_in"):
        hedging_from_weights(np.ones((2, 3)), CHANIN.dictionary, np.arange(4))


def test_a_one_latent_sae_on_a_tree_hedges_its_parent_into_the_children():
    """Chanin et al.'s setting: too few latents for the tree, so the parent's latent mixes in
    its (co-occurring) children. 2,000 steps give ≈ 0.045 here, almost all on the relatives."""
    sae = tm.SAEConfig(d_in=CHANIN.d_in, d_sae=1, l1_coefficient=3e-2)
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=2000, batch_size=1024, lr=3e-4),
                  data=CHANIN, progress=False)
    out = tm.analysis.hedging(ds, CHANIN)
    assert np.isfinite(out["hedging"].values[:, 0]).all()  # the latent is the parent's
    assert (out["hedging"].values[:, 0] > 0.02).all()
    np.testing.assert_allclose(out["hedging_relatives"].values[:, 0],
                               out["hedging"].values[:, 0], rtol=0.05)
