"""evaluate_on_truth: the true dictionary as a tied SAE is perfect; an absorbing SAE scores 1."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm

TRUTH = tm.GroundTruth.preset("chanin_absorption", seed=0)


def sweep(architecture="standard", **kwargs):
    sae = tm.SAEConfig(d_in=TRUTH.d_in, d_sae=4, architecture=architecture, **kwargs)
    return tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=20, batch_size=64), data=TRUTH,
                    progress=False)


def with_weights(ds, W_enc, W_dec):
    """ds with every SAE's weights replaced by these; b_dec zero, and b_enc just below zero so
    that float32 rounding of the zero coefficients (x · d_j ≈ ±1e-8) does not count as firing."""
    ds = ds.copy(deep=True)
    ds["W_enc"].values[:] = W_enc
    ds["W_dec"].values[:] = W_dec
    ds["b_enc"].values[:] = -1e-6
    ds["b_dec"].values[:] = 0.0
    return ds


def test_the_true_dictionary_as_a_tied_sae_is_perfect():
    D = np.asarray(TRUTH.dictionary)
    report = tm.analysis.evaluate_on_truth(with_weights(sweep(), D.T, D), TRUTH, n_samples=8192)
    assert report["l0"].dims == ("seed",)
    np.testing.assert_allclose(report["l0"], report.attrs["true_l0"], rtol=1e-6)
    np.testing.assert_allclose(report["mse"], 0.0, atol=1e-10)
    np.testing.assert_allclose(report["fvu"], 0.0, atol=1e-10)
    np.testing.assert_allclose(report["mcc"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(report["dead_fraction"], 0.0)
    np.testing.assert_allclose(report["absorption"], 0.0, atol=1e-12)
    np.testing.assert_allclose(report["absorbed_children"], 0.0)
    np.testing.assert_allclose(report["decoder_parent_cos"], 0.0, atol=1e-6)
    assert abs(report.attrs["true_l0"] - 0.3625) < 5 * np.sqrt(0.3 / 8192)


def test_an_sae_built_to_absorb_scores_one():
    """Children's latents write child + parent; the parent's encoder subtracts every child."""
    D = np.asarray(TRUTH.dictionary)
    W_dec = D.copy()
    W_dec[1:] = (D[1:] + D[0]) / np.sqrt(2)
    W_enc = D.T.copy()
    W_enc[:, 0] = D[0] - 1e6 * D[1:].sum(axis=0)
    report = tm.analysis.evaluate_on_truth(with_weights(sweep(), W_enc, W_dec), TRUTH,
                                           n_samples=8192)
    np.testing.assert_allclose(report["absorption"], 1.0)
    np.testing.assert_allclose(report["absorbed_children"], 1.0)
    np.testing.assert_allclose(report["decoder_parent_cos"], 1 / np.sqrt(2), rtol=1e-5)
    assert (report["fvu"] > 0).all()  # the parent's direction is written twice on children


def test_a_dead_latent_and_a_trained_sweep_are_counted():
    D = np.asarray(TRUTH.dictionary)
    W_enc = D.T.copy()
    W_enc[:, 3] = 0.0  # latent 3 never fires
    report = tm.analysis.evaluate_on_truth(with_weights(sweep(), W_enc, D), TRUTH, n_samples=4096)
    np.testing.assert_allclose(report["dead_fraction"], 0.25)
    trained = tm.analysis.evaluate_on_truth(sweep("topk", k=1), TRUTH, n_samples=4096)
    np.testing.assert_allclose(trained["l0"], 1.0)  # TopK keeps exactly k (ReLU'd values > 0)
    assert ((trained["fvu"] >= 0) & np.isfinite(trained["mcc"])).all()


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="n_samples"):
        tm.analysis.evaluate_on_truth(sweep(), TRUTH, n_samples=1)
    with pytest.raises(ValueError, match="d_in"):
        tm.analysis.evaluate_on_truth(sweep(), tm.GroundTruth(d_in=8, n_features=16))


@pytest.fixture(scope="module")
def trained():
    return sweep()


@settings(max_examples=8, deadline=None)
@given(order=st.permutations(range(4)), scales=st.lists(st.floats(0.25, 4.0), min_size=4,
                                                        max_size=4))
def test_relabelling_and_rescaling_latents_changes_nothing(trained, order, scales):
    """A standard SAE with its latents permuted, and latent i's encoder scaled by s_i and its
    decoder by 1/s_i, encodes the same inputs to the same reconstruction and the same firing
    pattern: every measure is unchanged."""
    order, s = np.asarray(order), np.asarray(scales, np.float32)
    moved = trained.copy(deep=True)
    moved["W_enc"].values[:] = trained["W_enc"].values[..., order] * s
    moved["b_enc"].values[:] = trained["b_enc"].values[..., order] * s
    moved["W_dec"].values[:] = trained["W_dec"].values[:, order] / s[:, None]
    base = tm.analysis.evaluate_on_truth(trained, TRUTH, n_samples=2048)
    after = tm.analysis.evaluate_on_truth(moved, TRUTH, n_samples=2048)
    for name in base.data_vars:
        np.testing.assert_allclose(after[name], base[name], rtol=1e-4, atol=1e-6,
                                   equal_nan=True, err_msg=name)
