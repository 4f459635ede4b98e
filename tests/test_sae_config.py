"""SAEConfig speaks SAELens's names for SAELens's concepts; the earlier names still work, warned."""

import dataclasses
import warnings

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import trainers
from toymodels.sae import train as sae_train
from toymodels.sae.config import RENAMED_FIELDS

#: SAELens 6.x's config field for each concept toymodels shares with it (sae_lens.saes.*Config
#: and LanguageModelSAERunnerConfig, read from sae-lens 6.54).
SAELENS_NAMES = (
    "d_in", "d_sae", "architecture", "k", "d_out", "apply_b_dec_to_input",
    "normalize_activations", "decoder_init_norm", "l1_coefficient", "l0_coefficient",
    "aux_loss_coefficient", "topk_threshold_lr", "jumprelu_init_threshold", "jumprelu_bandwidth",
    "jumprelu_sparsity_loss_mode", "jumprelu_tanh_scale", "pre_act_loss_coefficient",
    "dead_feature_window", "b_dec_init_method",
)


def test_the_fields_carry_saelens_names():
    fields = {f.name for f in dataclasses.fields(tm.SAEConfig)}
    assert set(SAELENS_NAMES) <= fields
    assert not set(RENAMED_FIELDS) & fields  # the earlier names are not stored


@pytest.mark.parametrize("old, new, value", [
    ("jumprelu_sparsity_loss", "jumprelu_sparsity_loss_mode", "tanh"),
    ("aux_coefficient", "aux_loss_coefficient", 0.5),
    ("dead_window", "dead_feature_window", 77),
    ("b_dec_init", "b_dec_init_method", "mean"),
])
def test_an_earlier_name_is_accepted_with_a_deprecation_warning(old, new, value):
    with pytest.warns(DeprecationWarning, match=f"{old} is now {new}"):
        cfg = tm.SAEConfig(d_in=4, d_sae=8, **{old: value})
    assert getattr(cfg, new) == value
    assert cfg == tm.SAEConfig(d_in=4, d_sae=8, **{new: value})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dataclasses.replace(cfg, d_sae=16).d_sae == 16  # replace keeps the new field
    assert getattr(dataclasses.replace(cfg, d_sae=16), new) == value


def test_both_names_at_once_is_an_error():
    with pytest.raises(ValueError, match="aux_loss_coefficient"):
        tm.SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2, aux_coefficient=0.5,
                     aux_loss_coefficient=0.25)


def test_an_earlier_name_as_a_grid_key_is_warned_and_relabelled():
    truth = tm.GroundTruth(d_in=4, n_features=6, mean_active=1.0)
    sae = tm.SAEConfig(d_in=4, d_sae=6, architecture="topk", k=2)
    train = tm.TrainConfig(steps=4, batch_size=8)
    with pytest.warns(DeprecationWarning, match="'aux_coefficient' is now 'aux_loss_coefficient'"):
        ds = tm.sweep(sae, {"aux_coefficient": [0.0, 0.5]}, train, data=truth, progress=False)
    assert ds.loss.dims == ("aux_loss_coefficient",)


@pytest.mark.parametrize("architecture, k, l0, warned", [
    ("jumprelu", None, [95.0, 96.0], 2), ("jumprelu", None, [10.0, 86.5], 1),
    ("standard", None, [3.0, 4.0], 0), ("topk", 96, [96.0, 96.0], 0),
])
def test_saes_that_never_became_sparse_are_reported(architecture, k, l0, warned):
    truth = tm.GroundTruth(d_in=32, n_features=64, mean_active=2.0)
    sae = tm.SAEConfig(d_in=32, d_sae=96, architecture=architecture, k=k)
    trainer = trainers.make_trainer(sae, tm.TrainConfig(steps=10), truth)
    results = xr.Dataset({"l0": ("seed", np.asarray(l0))})
    messages = trainer.check_results(results)
    assert len(messages) == (warned > 0)
    if warned:
        assert messages[0].startswith(f"{warned} of 2 {architecture} SAEs did not become sparse")
        assert "d_sae=96" in messages[0]


def test_a_sweep_issues_the_trainer_warnings(monkeypatch):
    monkeypatch.setattr(sae_train, "DENSE_L0_FRACTION", 0.0)  # every SAE counts as dense
    truth = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0)
    train = tm.TrainConfig(steps=20, batch_size=32)
    dense = tm.SAEConfig(d_in=8, d_sae=10, architecture="jumprelu")
    with pytest.warns(UserWarning, match=r"2 of 2 jumprelu SAEs did not become sparse.*l0_coeff"):
        tm.sweep(dense, {"seed": [0, 1]}, train, data=truth, progress=False)
