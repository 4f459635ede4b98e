"""Absorption against a known tree: 0 for the true dictionary, 1 for an SAE built to absorb."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.analysis import absorption_from_acts, match_latents

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
