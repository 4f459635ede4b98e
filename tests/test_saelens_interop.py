"""SAELens itself (the version the `interop` extra pins, 6.54) loads what tm.saelens.save writes
and computes what tm.SAE computes; and what SAELens saves, its inference SAEs and its training
checkpoints, loads into tm.SAE as SAELens infers it: every architecture, both ways.

sae-lens is no dependency of toymodels, but `make test` installs it (the `interop` extra), so in
CI these tests run, never skip (tests/extras.py). tests/test_saelens.py checks SAELens 6.18's own
files and its equations without it.
"""

import copy

import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from extras import require  # tests/extras.py

sae_lens = require("sae_lens", "interop")
torch = require("torch", "lm")
from sae_lens import SAE as SAELensSAE  # noqa: E402
from sae_lens import saes  # noqa: E402
from sae_lens.training.activation_scaler import ActivationScaler  # noqa: E402

X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)


def _random(cfg: tm.SAEConfig, seed: int = 0) -> tm.SAE:
    rng = np.random.default_rng(seed)
    dims = tm.sae.architectures.param_dims(cfg)
    sizes = {"d_in": cfg.d_in, "latent": cfg.d_sae, "d_out": cfg.output_width}
    params = {n: rng.normal(size=[sizes[d] for d in dims[n]]).astype(np.float32) for n in dims}
    if "threshold" in params:
        params["threshold"] = np.abs(params["threshold"])
    return tm.SAE(cfg, params, {})


def _close(ours: tm.SAE, theirs, x=X):
    with torch.no_grad():
        f = theirs.encode(torch.from_numpy(x))
        x_hat = theirs.decode(f)
    assert (f > 0).any() and (f == 0).any()  # not a trivial comparison
    scale = float(x_hat.abs().max())
    np.testing.assert_allclose(ours.encode(x), f.numpy(), rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(ours.decode(f.numpy()), x_hat.numpy(), rtol=1e-5,
                               atol=1e-5 * scale)


# --- toymodels → SAELens → toymodels -----------------------------------------------------------

#: (tm config, the SAELens class that loads it). One row per tm architecture and transcoder form.
OURS = [
    (tm.SAEConfig(d_in=8, d_sae=24), "StandardSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, apply_b_dec_to_input=False), "StandardSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="topk", k=4), "TopKSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="jumprelu"), "JumpReLUSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="batchtopk", k=4), "JumpReLUSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="gated"), "GatedSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="matryoshka_batchtopk", k=4,
                  matryoshka_widths=(3, 10, 24)), "JumpReLUSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5), "Transcoder"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5, architecture="jumprelu"), "JumpReLUTranscoder"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5, architecture="batchtopk", k=3),
     "JumpReLUTranscoder"),
]


@pytest.mark.parametrize("config, saelens_class", OURS,
                         ids=lambda v: v if isinstance(v, str) else
                         f"{v.architecture}{'-transcoder' if v.is_transcoder else ''}")
def test_saelens_loads_what_we_save(config, saelens_class, tmp_path):
    sae = _random(config)
    tm.saelens.save(sae, tmp_path / "ours", hook_name="blocks.0.hook_resid_pre", model_name="m")
    theirs = SAELensSAE.load_from_disk(tmp_path / "ours")
    assert type(theirs).__name__ == saelens_class
    _close(sae, theirs)
    theirs.save_model(tmp_path / "theirs")  # and what SAELens writes back is the same SAE
    back = tm.saelens.load(tmp_path / "theirs")
    assert back.config == sae.config
    for name in sae.params:
        np.testing.assert_array_equal(back.params[name], sae.params[name])


# --- SAELens → toymodels -------------------------------------------------------------------------


def _randomise(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn_like(p) * (0.3 if name.startswith("b") else 1.0))
            if name == "threshold":  # SAELens keeps θ ≥ 0 (clamped before every training step)
                p.abs_()
    return module


#: (name, SAELens class, its config class, config fields, tm architecture it loads as).
#: Inference SAEs (what SAE.save_model writes) and training checkpoints (TrainingSAE.save_model,
#: what SAELens's trainer leaves behind), each compared with that same SAELens object.
THEIRS = [
    ("standard", "StandardSAE", "StandardSAEConfig", {}, "standard"),
    ("topk", "TopKSAE", "TopKSAEConfig", {"k": 4}, "topk"),
    ("topk-rescaled", "TopKSAE", "TopKSAEConfig",
     {"k": 4, "rescale_acts_by_decoder_norm": True}, "topk"),
    ("jumprelu", "JumpReLUSAE", "JumpReLUSAEConfig", {}, "jumprelu"),
    ("gated", "GatedSAE", "GatedSAEConfig", {}, "gated"),
    ("transcoder", "Transcoder", "TranscoderConfig",
     {"d_out": 5, "apply_b_dec_to_input": False}, "standard"),
    ("jumprelu-transcoder", "JumpReLUTranscoder", "JumpReLUTranscoderConfig",
     {"d_out": 5, "apply_b_dec_to_input": False}, "jumprelu"),
    ("standard-training", "StandardTrainingSAE", "StandardTrainingSAEConfig", {}, "standard"),
    # rescale_acts_by_decoder_norm is the training default: folded into the weights on loading
    ("topk-training", "TopKTrainingSAE", "TopKTrainingSAEConfig", {"k": 4}, "topk"),
    ("jumprelu-training", "JumpReLUTrainingSAE", "JumpReLUTrainingSAEConfig", {}, "jumprelu"),
    ("gated-training", "GatedTrainingSAE", "GatedTrainingSAEConfig", {}, "gated"),
]


@pytest.mark.parametrize("name, cls, cfg_cls, fields, architecture", THEIRS,
                         ids=[row[0] for row in THEIRS])
def test_what_saelens_saves_loads_as_saelens_computes(name, cls, cfg_cls, fields, architecture,
                                                      tmp_path):
    torch.manual_seed(0)
    theirs = _randomise(getattr(saes, cls)(getattr(saes, cfg_cls)(d_in=8, d_sae=24, **fields)))
    theirs.eval()
    theirs.save_model(tmp_path)
    ours = tm.saelens.load(tmp_path)
    assert (ours.architecture, ours.config.is_transcoder) == (architecture, "d_out" in fields)
    _close(ours, theirs)


#: Training checkpoints SAELens exports as another architecture: (name, class, config class,
#: config fields). Each is compared with SAELens's own inference export of it.
EXPORTED = [
    ("batchtopk", "BatchTopKTrainingSAE", "BatchTopKTrainingSAEConfig", {"k": 4}),
    ("matryoshka_batchtopk", "MatryoshkaBatchTopKTrainingSAE",
     "MatryoshkaBatchTopKTrainingSAEConfig", {"k": 4, "matryoshka_widths": [6, 24]}),
]


@pytest.mark.parametrize("name, cls, cfg_cls, fields", EXPORTED, ids=[r[0] for r in EXPORTED])
def test_batchtopk_checkpoints_load_as_their_jumprelu_export(name, cls, cfg_cls, fields,
                                                             tmp_path):
    torch.manual_seed(0)
    batch = _randomise(getattr(saes, cls)(getattr(saes, cfg_cls)(d_in=8, d_sae=24, **fields)))
    batch.topk_threshold = torch.tensor(1.3, dtype=torch.double)
    batch.save_model(tmp_path / "checkpoint")
    batch.save_inference_model(tmp_path / "inference")
    exported = SAELensSAE.load_from_disk(tmp_path / "inference")
    assert type(exported).__name__ == "JumpReLUSAE"
    ours = tm.saelens.load(tmp_path / "checkpoint")
    assert (ours.architecture, ours.config.k) == (name, 4)
    _close(ours, exported)


@pytest.mark.parametrize("cls", ["StandardTrainingSAE", "JumpReLUTrainingSAE",
                                 "GatedTrainingSAE", "TopKTrainingSAE", "BatchTopKTrainingSAE"])
def test_normalised_checkpoints_fold_their_scaler(cls, tmp_path):
    # A checkpoint mid-training: raw weights + activation_scaler.json. It loads as the SAE that
    # SAELens's trainer ends with: fold_activation_norm_scaling_factor, then
    # save_inference_model (which folds TopK's decoder norms, and makes BatchTopK a JumpReLU).
    torch.manual_seed(0)
    fields = {"k": 4} if "TopK" in cls else {}
    sae = _randomise(getattr(saes, cls)(getattr(saes, cls + "Config")(
        d_in=8, d_sae=24, normalize_activations="expected_average_only_in", **fields)))
    if cls == "BatchTopKTrainingSAE":
        sae.topk_threshold = torch.tensor(1.3, dtype=torch.double)
    sae.save_model(tmp_path / "checkpoint")
    ActivationScaler(scaling_factor=0.37).save(str(tmp_path / "checkpoint" /
                                                   "activation_scaler.json"))
    folded = copy.deepcopy(sae)
    folded.fold_activation_norm_scaling_factor(0.37)
    folded.save_inference_model(tmp_path / "final")
    _close(tm.saelens.load(tmp_path / "checkpoint"), SAELensSAE.load_from_disk(tmp_path / "final"))


def test_negative_jumprelu_threshold_loads_as_saelens_infers_it(tmp_path):
    # SAELens 6.54 trains θ itself (no longer log θ) and clamps it at 0 *before* each step, so a
    # checkpoint can hold θ_i < 0. Its training encode, π·H(π − θ), then passes negative π; its
    # inference JumpReLUSAE, which load_from_disk builds from that same file, takes ReLU(π)
    # first, and so does tm.SAE.
    torch.manual_seed(0)
    sae = _randomise(saes.JumpReLUTrainingSAE(saes.JumpReLUTrainingSAEConfig(d_in=8, d_sae=24)))
    with torch.no_grad():
        sae.threshold.copy_(-sae.threshold)
    sae.save_model(tmp_path)
    inferred = SAELensSAE.load_from_disk(tmp_path)
    with torch.no_grad():
        assert (sae.encode(torch.from_numpy(X)) < 0).any()  # the two SAELens forms differ here
    _close(tm.saelens.load(tmp_path), inferred)


def test_what_saelens_refuses_to_map_is_refused(tmp_path):
    torch.manual_seed(0)
    for cls, cfg, fields in [("AbsTopKSAE", "AbsTopKSAEConfig", {"k": 4}),
                             ("SkipTranscoder", "SkipTranscoderConfig",
                              {"d_out": 8, "apply_b_dec_to_input": False})]:
        sae = _randomise(getattr(saes, cls)(getattr(saes, cfg)(d_in=8, d_sae=24, **fields)))
        sae.save_model(tmp_path / cls)
        with pytest.raises(ValueError, match="is refused"):
            tm.saelens.load(tmp_path / cls)


# --- Matryoshka SAEs: SAELens 6.54's MatryoshkaBatchTopKTrainingSAE --------------------------


def _matryoshka_saelens(widths, per_group: bool, seed: int = 0):
    """SAELens's training SAE with random weights and unit-norm decoder rows (what toymodels
    keeps; rescale_acts_by_decoder_norm is then a no-op)."""
    torch.manual_seed(seed)
    cfg = saes.MatryoshkaBatchTopKTrainingSAEConfig(
        d_in=8, d_sae=widths[-1], k=3, matryoshka_widths=list(widths), aux_loss_coefficient=0.7,
        use_matryoshka_aux_loss=per_group)
    sae = _randomise(saes.MatryoshkaBatchTopKTrainingSAE(cfg))
    with torch.no_grad():
        sae.W_dec /= sae.W_dec.norm(dim=-1, keepdim=True)
    return sae


@pytest.mark.parametrize("per_group", [False, True])
def test_matryoshka_loss_equals_saelens(per_group, monkeypatch):
    """On identical weights and a dead mask, every loss term of toymodels' matryoshka_batchtopk
    equals SAELens 6.54's training_forward_pass (mse, inner_mse_loss_<w>, the AuxK).

    One known difference, shared with toymodels' topk and batchtopk: toymodels' AuxK ReLUs the
    dead latents' pre-activations it keeps (Gao et al.'s TopK is a ReLU of the top k), SAELens
    6.54's calculate_topk_aux_acts keeps them signed. The AuxK is compared with SAELens's
    helper ReLU'd; without, it is the only term that differs."""
    from sae_lens.saes import matryoshka_batchtopk_sae, topk_sae
    from sae_lens.saes.sae import TrainStepInput

    from toymodels import trainers
    from toymodels.sae.architectures import Context

    widths = (3, 7, 12)
    theirs = _matryoshka_saelens(widths, per_group)
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(32, 8)).astype(np.float32))
    dead = torch.zeros(12, dtype=torch.bool)
    dead[[1, 4, 5, 9, 10, 11]] = True
    step = TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=dead, n_training_steps=0,
                          is_logging_step=False)
    signed = theirs.training_forward_pass(step)
    aux_acts = topk_sae.calculate_topk_aux_acts
    for module in (topk_sae, matryoshka_batchtopk_sae):
        monkeypatch.setattr(module, "calculate_topk_aux_acts",
                            lambda *a, **kw: aux_acts(*a, **kw).relu())
    out = theirs.training_forward_pass(step)
    for name, value in out.losses.items():  # ReLU'd or not, only the AuxK changes
        if name != "auxiliary_reconstruction_loss":
            assert float(value) == float(signed.losses[name]), name

    cfg = tm.SAEConfig(d_in=8, d_sae=12, architecture="matryoshka_batchtopk", k=3,
                       matryoshka_widths=widths, use_matryoshka_aux_loss=per_group,
                       aux_loss_coefficient=0.7)
    trainer = trainers.make_trainer(cfg, tm.TrainConfig(steps=2, batch_size=32),
                                    tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0))
    params = {n: jnp.asarray(p.detach().numpy()) for n, p in theirs.named_parameters()}
    zero = jnp.float32(0.0)
    ctx = Context(l1_coefficient=zero, l0_coefficient=zero,
                  aux_loss_coefficient=jnp.float32(0.7), pre_act_loss_coefficient=zero,
                  jumprelu_bandwidth=jnp.float32(0.05), jumprelu_tanh_scale=jnp.float32(4.0),
                  dead=jnp.asarray(dead.numpy()), threshold=zero)
    total, (F, _, terms) = trainer.loss(params, jnp.asarray(x.numpy()), jnp.asarray(x.numpy()),
                                        ctx)
    np.testing.assert_allclose(F, out.feature_acts.detach().numpy(), rtol=1e-5, atol=1e-5)
    want = {"mse": out.losses["mse_loss"], "auxk": out.losses["auxiliary_reconstruction_loss"],
            **{f"inner_mse_{w}": out.losses[f"inner_mse_loss_{w}"] for w in widths[:-1]}}
    assert sorted(terms) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(terms[name], float(value), rtol=1e-4, err_msg=name)
    assert float(want["auxk"]) > 0  # the dead latents took part
    np.testing.assert_allclose(total, float(out.loss), rtol=1e-4)


def test_saelens_matryoshka_inference_export_loads_as_matryoshka(tmp_path):
    theirs = _matryoshka_saelens((2, 5, 12), per_group=False)
    theirs.topk_threshold = torch.tensor(0.4, dtype=torch.double)
    theirs.save_inference_model(tmp_path / "inference")
    theirs.save_model(tmp_path / "checkpoint")
    inference = SAELensSAE.load_from_disk(tmp_path / "inference")
    assert type(inference).__name__ == "JumpReLUSAE"
    for folder in ("inference", "checkpoint"):
        ours = tm.saelens.load(tmp_path / folder)
        assert ours.architecture == "matryoshka_batchtopk", folder
        assert ours.config.matryoshka_widths == (2, 5, 12) and ours.config.k == 3
        _close(ours, inference)
