"""Absorption against a known tree: 0 for the true dictionary, 1 for an SAE built to absorb."""

import jax
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.analysis import absorption_directions, absorption_from_acts, match_latents

TRUTH = tm.GroundTruth.preset("chanin_absorption", seed=0)
N = 20_000


def coefficients(n=N, seed=1):
    return np.asarray(TRUTH.coefficients(jax.random.key(seed), n))


def tied_acts(c, W_enc, b_enc=None):
    x = c @ TRUTH.dictionary
    pre = x @ W_enc + (0 if b_enc is None else b_enc)
    return np.maximum(pre, 0)


def test_the_true_dictionary_as_a_tied_sae_scores_zero():
    c = coefficients()
    D = TRUTH.dictionary
    acts = tied_acts(c, D.T)  # orthogonal features: f = c exactly
    latent_of = match_latents(D, D)
    np.testing.assert_array_equal(latent_of, np.arange(4))
    a = absorption_from_acts(acts, c, TRUTH.parents, latent_of)
    assert np.isnan(a[0]) and np.allclose(a[1:], 0.0)


def test_an_sae_built_to_absorb_fully_scores_one():
    """Children's latents read child + parent; the parent's encoder subtracts every child, so
    it is off whenever a child is on and fires when the parent is on alone."""
    c = coefficients()
    D = TRUTH.dictionary
    W_dec = D.copy()
    W_dec[1:] = (D[1:] + D[0]) / np.sqrt(2)
    W_enc = D.T.copy()
    W_enc[:, 0] = D[0] - 1e6 * D[1:].sum(axis=0)
    acts = tied_acts(c, W_enc)
    a = absorption_from_acts(acts, c, TRUTH.parents, match_latents(W_dec, D))
    assert np.isnan(a[0]) and np.allclose(a[1:], 1.0)


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(4)), st.floats(0.1, 10.0))
def test_relabelling_and_rescaling_latents_changes_nothing(order, scale):
    c = coefficients(4000)
    D = TRUTH.dictionary
    W_enc = D.T.copy()
    W_enc[:, 0] = D[0] - 0.5 * D[1]  # partial: only child 1's strong draws silence the parent
    acts = tied_acts(c, W_enc)
    base = absorption_from_acts(acts, c, TRUTH.parents, match_latents(D, D))
    order = np.asarray(order)
    moved = absorption_from_acts(scale * acts[:, order], c, TRUTH.parents,
                                 match_latents(D[order], D))
    np.testing.assert_allclose(moved, base, equal_nan=True)
    assert 0 < base[1] < 1 and (base[2:] < base[1]).all()  # child 1 silences the parent most


def test_absorption_of_a_sweep_is_labelled_by_its_grid():
    sae = tm.SAEConfig(d_in=TRUTH.d_in, d_sae=4, architecture="topk", k=1)
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=30, batch_size=64), data=TRUTH,
                  progress=False)
    a = tm.analysis.absorption(ds, TRUTH, n_samples=4096)
    assert a.dims == ("seed", "feature") and a.shape == (2, 4)
    assert np.isnan(a.values[:, 0]).all()
    finite = a.values[:, 1:][np.isfinite(a.values[:, 1:])]
    assert ((finite >= 0) & (finite <= 1)).all()
    one = tm.analysis.absorption(ds.isel(seed=1), TRUTH, n_samples=4096)
    np.testing.assert_allclose(one.values, a.values[1], equal_nan=True)


def test_absorption_refuses_what_is_not_an_sae_sweep():
    with pytest.raises(ValueError, match="SAE sweep"):
        tm.analysis.absorption(tm.sweep(tm.ToyModelConfig(), {"seed": [0]},
                                        tm.TrainConfig(steps=10), progress=False), TRUTH)


# --- the direction view ------------------------------------------------------------------------


def absorbing_weights(D=TRUTH.dictionary):
    """Children's latents write child + parent; the parent's latent reads d_q − Σ children d_c."""
    W_dec = D.copy()
    W_dec[1:] = (D[1:] + D[0]) / np.linalg.norm(D[1:] + D[0], axis=-1, keepdims=True)
    W_enc = D.T.copy()
    W_enc[:, 0] = D[0] - D[1:].sum(axis=0)
    return W_enc, W_dec


def test_the_true_dictionary_as_a_tied_sae_has_no_direction_absorption():
    D = TRUTH.dictionary
    dec, enc = absorption_directions(D.T, D, D, TRUTH.parents, match_latents(D, D))
    assert np.isnan(dec[0]) and np.isnan(enc[0])
    np.testing.assert_allclose(dec[1:], 0.0, atol=1e-6)
    np.testing.assert_allclose(enc[1:], 0.0, atol=1e-6)


def test_an_sae_built_to_absorb_reads_positive_decoder_and_negative_encoder_cosines():
    D = TRUTH.dictionary
    W_enc, W_dec = absorbing_weights()
    latent_of = match_latents(W_dec, D)
    np.testing.assert_array_equal(latent_of, np.arange(4))
    dec, enc = absorption_directions(W_enc, W_dec, D, TRUTH.parents, latent_of)
    # orthonormal features: cos(d_c + d_q, d_q) = 1/√2; cos(d_q − Σ_3 d_c, d_c) = −1/2
    np.testing.assert_allclose(dec[1:], 1 / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(enc[1:], -0.5, rtol=1e-6)


def test_the_two_views_agree_on_the_sae_built_to_absorb():
    c = coefficients(4000)
    W_enc, W_dec = absorbing_weights()
    W_enc[:, 0] = TRUTH.dictionary[0] - 1e6 * TRUTH.dictionary[1:].sum(axis=0)
    latent_of = match_latents(W_dec, TRUTH.dictionary)
    fired = absorption_from_acts(tied_acts(c, W_enc), c, TRUTH.parents, latent_of)
    _, enc = absorption_directions(W_enc, W_dec, TRUTH.dictionary, TRUTH.parents, latent_of)
    assert np.allclose(fired[1:], 1.0) and (enc[1:] < -0.5).all()


@settings(max_examples=25, deadline=None)
@given(st.permutations(range(4)), st.lists(st.floats(0.01, 100.0), min_size=4, max_size=4),
       st.integers(0, 2**31 - 1))
def test_directions_ignore_latent_order_scale_and_a_rotation(order, scales, seed):
    D = TRUTH.dictionary
    W_enc, W_dec = absorbing_weights()
    W_enc[:, 1] -= 0.3 * D[0]  # unequal pairs, so that a wrong pairing would show
    W_dec[2] = D[2] + 0.2 * D[0] - 0.4 * D[3]
    base = absorption_directions(W_enc, W_dec, D, TRUTH.parents, match_latents(W_dec, D))
    order, s = np.asarray(order), np.asarray(scales)
    R = np.linalg.qr(np.random.default_rng(seed).normal(size=(TRUTH.d_in, TRUTH.d_in)))[0]
    moved_enc, moved_dec = R.T @ (W_enc[:, order] * s), (W_dec[order] / s[:, None]) @ R
    moved = absorption_directions(moved_enc, moved_dec, D @ R, TRUTH.parents,
                                  match_latents(moved_dec, D @ R))
    for a, b in zip(moved, base):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert base[0][2] != base[0][1] and base[1][1] != base[1][2]


def test_an_unmatched_latent_gives_nan():
    D = TRUTH.dictionary
    latent_of = np.array([-1, 1, 2, -1])
    dec, enc = absorption_directions(D.T, D, D, TRUTH.parents, latent_of)
    assert np.isnan(enc[1:]).all()  # the parent has no latent
    assert np.isfinite(dec[1:3]).all() and np.isnan(dec[3])


def test_direction_absorption_of_a_sweep_is_labelled_by_its_grid():
    sae = tm.SAEConfig(d_in=TRUTH.d_in, d_sae=4, architecture="topk", k=1)
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=30, batch_size=64), data=TRUTH,
                  progress=False)
    out = tm.analysis.absorption_direction(ds, TRUTH)
    assert set(out.data_vars) == {"decoder_parent_cos", "encoder_child_cos"}
    for v in out.data_vars.values():
        assert v.dims == ("seed", "feature") and v.shape == (2, 4)
        assert np.isnan(v.values[:, 0]).all() and np.isfinite(v.values[:, 1:]).all()
        assert (np.abs(v.values[:, 1:]) <= 1 + 1e-6).all()
    one = tm.analysis.absorption_direction(ds.isel(seed=1), TRUTH)
    for name in out.data_vars:
        np.testing.assert_allclose(one[name].values, out[name].values[1], equal_nan=True)
        assert one[name].dims == ("feature",)
    sae = tm.SAE.from_results(ds.isel(seed=0))
    dec, enc = absorption_directions(sae.W_enc, sae.W_dec, TRUTH.dictionary, TRUTH.parents,
                                     match_latents(sae.W_dec, TRUTH.dictionary))
    np.testing.assert_allclose(out["decoder_parent_cos"].values[0], dec, equal_nan=True)
    np.testing.assert_allclose(out["encoder_child_cos"].values[0], enc, equal_nan=True)


def test_direction_absorption_refuses_what_is_not_an_sae_sweep():
    with pytest.raises(ValueError, match="SAE sweep"):
        tm.analysis.absorption_direction(xr.Dataset(), TRUTH)
    with pytest.raises(ValueError, match="d_in"):
        absorption_directions(TRUTH.dictionary.T, TRUTH.dictionary[:, :10], TRUTH.dictionary,
                              TRUTH.parents, np.arange(4))
