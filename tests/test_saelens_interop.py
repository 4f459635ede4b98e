"""SAELens 6.18 itself loads what tm.saelens.save writes and computes what tm.SAE computes; and
its own training checkpoints load into tm.SAE as SAELens infers them.

Runs only where `sae_lens` is installed (it is no dependency of toymodels: it pulls in
transformer-lens); everywhere else tests/test_saelens.py checks the same files against SAELens's
fixtures and its equations.
"""

import copy

import numpy as np
import pytest

import toymodels as tm

sae_lens = pytest.importorskip("sae_lens")
torch = pytest.importorskip("torch")
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
    scale = float(x_hat.abs().max())
    np.testing.assert_allclose(ours.encode(x), f.numpy(), rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(ours.decode(f.numpy()), x_hat.numpy(), rtol=1e-5,
                               atol=1e-5 * scale)


@pytest.mark.parametrize("config, saelens_class", [
    (tm.SAEConfig(d_in=8, d_sae=24), "StandardSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, apply_b_dec_to_input=False), "StandardSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="topk", k=4), "TopKSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="jumprelu"), "JumpReLUSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="batchtopk", k=4), "JumpReLUSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, architecture="gated"), "GatedSAE"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5), "Transcoder"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5, architecture="jumprelu"), "JumpReLUTranscoder"),
    (tm.SAEConfig(d_in=8, d_sae=24, d_out=5, architecture="batchtopk", k=3),
     "JumpReLUTranscoder"),
])
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


def _randomise(module):
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn_like(p) * (0.3 if name.startswith("b") else 1.0))
    return module


def test_training_checkpoints_load_as_saelens_infers_them(tmp_path):
    torch.manual_seed(0)
    topk = _randomise(saes.TopKTrainingSAE(saes.TopKTrainingSAEConfig(d_in=8, d_sae=24, k=4)))
    topk.eval()
    topk.save_model(tmp_path / "topk")  # rescale_acts_by_decoder_norm, not folded
    _close(tm.saelens.load(tmp_path / "topk"), topk)

    batch = _randomise(saes.BatchTopKTrainingSAE(
        saes.BatchTopKTrainingSAEConfig(d_in=8, d_sae=24, k=4)))
    batch.topk_threshold = torch.tensor(1.3, dtype=torch.double)
    batch.save_model(tmp_path / "batch")
    batch.save_inference_model(tmp_path / "batch_inference")
    _close(tm.saelens.load(tmp_path / "batch"),
           SAELensSAE.load_from_disk(tmp_path / "batch_inference"))

    for cls, cfg in [(saes.StandardTrainingSAE, saes.StandardTrainingSAEConfig),
                     (saes.JumpReLUTrainingSAE, saes.JumpReLUTrainingSAEConfig),
                     (saes.GatedTrainingSAE, saes.GatedTrainingSAEConfig)]:
        sae = _randomise(cls(cfg(d_in=8, d_sae=24,
                                 normalize_activations="expected_average_only_in")))
        folder = tmp_path / cls.__name__
        sae.save_model(folder)
        ActivationScaler(scaling_factor=0.37).save(str(folder / "activation_scaler.json"))
        folded = copy.deepcopy(sae)
        folded.fold_activation_norm_scaling_factor(0.37)
        _close(tm.saelens.load(folder), folded)
