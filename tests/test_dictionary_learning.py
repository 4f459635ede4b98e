"""tm.dictionary_learning: trainer folders written with dictionary_learning's key names and
shapes load into tm.SAE and reproduce each class's own forward pass, re-implemented here in torch
from dictionary.py and trainers/*.py; malformed folders name their file."""

import json
import sys

import numpy as np
import pytest

import toymodels as tm

torch = pytest.importorskip("torch")
nn = torch.nn

D, F, K = 6, 10, 3
X = torch.randn(32, D, generator=torch.Generator().manual_seed(0))


def _state(dict_class: str, seed: int = 0, threshold: float = 0.2) -> dict[str, "torch.Tensor"]:
    """A random state dict with the class's exact keys and shapes (nn.Linear stores [out, in])."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    linear = {"encoder.weight": r(F, D), "encoder.bias": r(F, scale=0.3),
              "decoder.weight": r(D, F)}
    topk = linear | {"b_dec": r(D, scale=0.3), "k": torch.tensor(K, dtype=torch.int),
                     "threshold": torch.tensor(threshold, dtype=torch.float32)}
    params = {"W_enc": r(D, F), "b_enc": r(F, scale=0.3), "W_dec": r(F, D),
              "b_dec": r(D, scale=0.3)}
    return {
        "AutoEncoder": lambda: linear | {"bias": r(D, scale=0.3)},
        "AutoEncoderNew": lambda: linear | {"decoder.bias": r(D, scale=0.3)},
        "AutoEncoderTopK": lambda: topk,
        "BatchTopKSAE": lambda: topk,
        "MatryoshkaBatchTopKSAE": lambda: params | {
            "k": torch.tensor(K, dtype=torch.int),
            "threshold": torch.tensor(threshold, dtype=torch.float32),
            "group_sizes": torch.tensor([2, 3, 5])},
        "JumpReluAutoEncoder": lambda: params | {"threshold": r(F).abs() * 0.5},
        "GatedAutoEncoder": lambda: {
            "decoder_bias": r(D, scale=0.3), "encoder.weight": r(F, D), "r_mag": r(F, scale=0.3),
            "gate_bias": r(F, scale=0.3), "mag_bias": r(F, scale=0.3), "decoder.weight": r(D, F)},
    }[dict_class]()


def _forward(dict_class: str, sd, x):
    """(f, x̂) of the class's encode/decode (dictionary_learning, commit 60ec6bf)."""
    relu = torch.relu
    if dict_class == "AutoEncoder":
        f = relu(nn.functional.linear(x - sd["bias"], sd["encoder.weight"], sd["encoder.bias"]))
        return f, nn.functional.linear(f, sd["decoder.weight"]) + sd["bias"]
    if dict_class == "AutoEncoderNew":
        f = relu(nn.functional.linear(x, sd["encoder.weight"], sd["encoder.bias"]))
        return f, nn.functional.linear(f, sd["decoder.weight"], sd["decoder.bias"])
    if dict_class in ("AutoEncoderTopK", "BatchTopKSAE"):
        post = relu(nn.functional.linear(x - sd["b_dec"], sd["encoder.weight"],
                                         sd["encoder.bias"]))
        if dict_class == "AutoEncoderTopK":  # encode(use_threshold=False), its default
            top = post.topk(int(sd["k"]), sorted=False, dim=-1)
            f = torch.zeros_like(post).scatter_(-1, top.indices, top.values)
        else:  # encode(use_threshold=True), its default
            f = post * (post > sd["threshold"])
        return f, nn.functional.linear(f, sd["decoder.weight"]) + sd["b_dec"]
    if dict_class == "MatryoshkaBatchTopKSAE":
        post = relu((x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"])
        f = post * (post > sd["threshold"])
        return f, f @ sd["W_dec"] + sd["b_dec"]
    if dict_class == "JumpReluAutoEncoder":  # apply_b_dec_to_input False
        pre = x @ sd["W_enc"] + sd["b_enc"]
        f = relu(pre * (pre > sd["threshold"]))
        return f, f @ sd["W_dec"] + sd["b_dec"]
    if dict_class == "GatedAutoEncoder":
        x_enc = nn.functional.linear(x - sd["decoder_bias"], sd["encoder.weight"])
        f = (x_enc + sd["gate_bias"] > 0).float() * relu(sd["r_mag"].exp() * x_enc
                                                          + sd["mag_bias"])
        return f, nn.functional.linear(f, sd["decoder.weight"]) + sd["decoder_bias"]
    raise AssertionError(dict_class)


def _write(folder, dict_class, sd, **trainer):
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"dict_class": dict_class, "trainer_class": "SomeTrainer", "activation_dim": D,
           "dict_size": F, "lr": 1e-3, "layer": 3, "lm_name": "EleutherAI/pythia-70m-deduped",
           "submodule_name": "resid_post_layer_3"} | trainer
    if "k" in sd:
        cfg["k"] = int(sd["k"])
    (folder / "config.json").write_text(json.dumps(
        {"trainer": cfg, "buffer": {"d_submodule": D, "io": "out", "n_ctxs": 100}}))
    torch.save(sd, folder / "ae.pt")
    return folder


@pytest.mark.parametrize("dict_class, architecture", [
    ("AutoEncoder", "standard"), ("AutoEncoderNew", "standard"), ("AutoEncoderTopK", "topk"),
    ("BatchTopKSAE", "batchtopk"), ("MatryoshkaBatchTopKSAE", "matryoshka_batchtopk"),
    ("JumpReluAutoEncoder", "jumprelu"), ("GatedAutoEncoder", "gated"),
])
def test_each_class_reproduces_its_forward(dict_class, architecture, tmp_path):
    sd = _state(dict_class)
    sae = tm.dictionary_learning.load(_write(tmp_path / "trainer_0", dict_class, sd))
    assert (sae.architecture, sae.d_in, sae.d_sae) == (architecture, D, F)
    f, x_hat = _forward(dict_class, sd, X)
    assert (f > 0).any() and (f == 0).any()  # the test is not trivial
    np.testing.assert_allclose(sae.encode(X.numpy()), f.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae.decode(f.numpy()), x_hat.numpy(), rtol=1e-5, atol=1e-5)
    assert sae.metadata["model_name"] == "EleutherAI/pythia-70m-deduped"
    assert sae.metadata["layer"] == 3
    assert sae.metadata["dictionary_learning"]["trainer"]["dict_class"] == dict_class
    if architecture in ("topk", "batchtopk", "matryoshka_batchtopk"):
        assert sae.config.k == K


def test_batchtopk_threshold_never_estimated(tmp_path):
    sd = _state("BatchTopKSAE", threshold=-1.0)  # its initial value: every positive π is kept
    sae = tm.dictionary_learning.load(_write(tmp_path, "BatchTopKSAE", sd))
    f, _ = _forward("BatchTopKSAE", sd, X)
    np.testing.assert_allclose(sae.encode(X.numpy()), f.numpy(), rtol=1e-5, atol=1e-5)


def test_matryoshka_widths_are_the_cumulative_group_sizes(tmp_path):
    sae = tm.dictionary_learning.load(_write(tmp_path, "MatryoshkaBatchTopKSAE",
                                             _state("MatryoshkaBatchTopKSAE")))
    assert sae.config.matryoshka_widths == (2, 5, 10)
    assert sae.metadata["group_sizes"] == [2, 3, 5]


def _matryoshka_sae(seed: int = 0, threshold: float = 0.2, **config) -> tm.SAE:
    cfg = tm.SAEConfig(d_in=D, d_sae=F, architecture="matryoshka_batchtopk", k=K,
                       matryoshka_widths=(1, 4, F), **config)
    rng = np.random.default_rng(seed)
    params = {"W_enc": rng.normal(size=(D, F)), "b_enc": rng.normal(size=F) * 0.3,
              "W_dec": rng.normal(size=(F, D)), "b_dec": rng.normal(size=D) * 0.3,
              "threshold": np.full(F, threshold)}
    return tm.SAE(cfg, params, {"model_name": "toy", "layer": 2})


def test_matryoshka_saved_as_dictionary_learning_writes_it(tmp_path):
    """save writes MatryoshkaBatchTopKSAE's exact state dict (the keys, dtypes and shapes its
    strict load_state_dict takes) and a config load_dictionary reads; load gives the SAE back,
    and the class's own forward on the saved state dict computes what the SAE computes."""
    sae = _matryoshka_sae(aux_loss_coefficient=0.5, resample="simple")
    folder = tm.dictionary_learning.save(sae, tmp_path / "trainer_0", submodule_name="resid")
    sd = torch.load(folder / "ae.pt", weights_only=True)
    assert {k: (v.dtype, tuple(v.shape)) for k, v in sd.items()} == {
        "W_enc": (torch.float32, (D, F)), "b_enc": (torch.float32, (F,)),
        "W_dec": (torch.float32, (F, D)), "b_dec": (torch.float32, (D,)),
        "k": (torch.int32, ()), "threshold": (torch.float32, ()),
        "group_sizes": (torch.int64, (3,))}
    assert sd["group_sizes"].tolist() == [1, 3, 6] and int(sd["k"]) == K
    trainer = json.loads((folder / "config.json").read_text())["trainer"]
    assert trainer["dict_class"] == "MatryoshkaBatchTopKSAE" and trainer["k"] == K
    assert (trainer["activation_dim"], trainer["dict_size"]) == (D, F)
    assert trainer["group_sizes"] == [1, 3, 6] and trainer["group_weights"] == [3.0] * 3
    assert (trainer["lm_name"], trainer["layer"], trainer["submodule_name"]) == ("toy", 2, "resid")
    f, x_hat = _forward("MatryoshkaBatchTopKSAE", sd, X)
    assert (f > 0).any() and (f == 0).any()
    np.testing.assert_allclose(sae.encode(X.numpy()), f.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae.decode(f.numpy()), x_hat.numpy(), rtol=1e-5, atol=1e-5)
    back = tm.dictionary_learning.load(folder)
    assert back.config == sae.config
    for name, value in sae.params.items():
        np.testing.assert_array_equal(back.params[name], value, err_msg=name)
    assert back.metadata["model_name"] == "toy" and back.metadata["layer"] == 2


def test_matryoshka_save_refuses_what_the_class_cannot_hold(tmp_path):
    sae = _matryoshka_sae()
    varying = tm.SAE(sae.config, sae.params | {"threshold": np.linspace(0, 1, F)})
    with pytest.raises(ValueError, match="one threshold for every latent"):
        tm.dictionary_learning.save(varying, tmp_path)
    with pytest.raises(ValueError, match="MatryoshkaBatchTopKSAE is an SAE"):
        tm.dictionary_learning.save(_matryoshka_sae(apply_b_dec_to_input=False), tmp_path)
    batchtopk = tm.SAE(tm.SAEConfig(d_in=D, d_sae=F, architecture="batchtopk", k=K), sae.params)
    with pytest.raises(ValueError, match="got architecture 'batchtopk'"):
        tm.dictionary_learning.save(batchtopk, tmp_path)
    folder = tm.dictionary_learning.save(sae, tmp_path / "t")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["trainer"]["toymodels_config"]["matryoshka_widths"] = [2, 4, F]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="config.json: trainer.toymodels_config says "
                       "matryoshka_widths=\\(2, 4, 10\\) but the dictionary says \\(1, 4, 10\\)"):
        tm.dictionary_learning.load(folder)


def test_normalize_decoder_as_from_pretrained(tmp_path):
    sd = _state("AutoEncoder")
    folder = _write(tmp_path, "AutoEncoder", sd)
    sae = tm.dictionary_learning.load(folder, normalize_decoder=True)
    # AutoEncoder.normalize_decoder: decoder columns / ‖·‖, encoder rows and bias · ‖·‖
    norms = sd["decoder.weight"].norm(dim=0)
    ref = dict(sd) | {"decoder.weight": sd["decoder.weight"] / norms,
                      "encoder.weight": sd["encoder.weight"] * norms[:, None],
                      "encoder.bias": sd["encoder.bias"] * norms}
    f, x_hat = _forward("AutoEncoder", ref, X)
    np.testing.assert_allclose(sae.encode(X.numpy()), f.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae(X.numpy()), _forward("AutoEncoder", sd, X)[1].numpy(),
                               rtol=1e-4, atol=1e-5)  # the reconstruction is unchanged
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec, axis=-1), 1.0, rtol=1e-6)
    folder = _write(tmp_path / "topk", "AutoEncoderTopK", _state("AutoEncoderTopK"))
    with pytest.raises(ValueError, match="normalize_decoder: only an AutoEncoder"):
        tm.dictionary_learning.load(folder, normalize_decoder=True)


def test_save_dir_trainers_and_checkpoints(tmp_path):
    first, second = _state("AutoEncoder", 0), _state("AutoEncoder", 1)
    _write(tmp_path / "trainer_0", "AutoEncoder", first)
    with pytest.raises(ValueError, match="missing: no such folder"):
        tm.dictionary_learning.load(tmp_path / "missing")
    # one trainer: found without trainer=
    np.testing.assert_array_equal(tm.dictionary_learning.load(tmp_path).b_dec, first["bias"])
    _write(tmp_path / "trainer_1", "AutoEncoder", second)
    with pytest.raises(ValueError, match="holds 2 trainers \\(trainer_0, trainer_1\\); choose"):
        tm.dictionary_learning.load(tmp_path)
    np.testing.assert_array_equal(tm.dictionary_learning.load(tmp_path, trainer=1).b_dec,
                                  second["bias"])
    (tmp_path / "trainer_1" / "checkpoints").mkdir()
    torch.save(first, tmp_path / "trainer_1" / "checkpoints" / "ae_100.pt")
    np.testing.assert_array_equal(
        tm.dictionary_learning.load(tmp_path, trainer=1, checkpoint=100).b_dec, first["bias"])
    with pytest.raises(ValueError, match="ae_200.pt: missing file"):
        tm.dictionary_learning.load(tmp_path, trainer=1, checkpoint=200)


# --- malformed folders -----------------------------------------------------------------------


def test_malformed_state_dicts(tmp_path):
    sd = _state("AutoEncoder")
    cases = [
        ({k: v for k, v in sd.items() if k != "bias"}, "ae.pt: missing tensor 'bias'"),
        (sd | {"decoder.bias": torch.zeros(D)}, "ae.pt: unexpected tensor 'decoder.bias'"),
        (sd | {"bias": torch.zeros(D + 1)}, "ae.pt: tensor 'bias' has shape \\(7,\\), but "
         "config.json says d=6"),
        (sd | {"encoder.weight": torch.zeros(F, D + 1)}, "tensor 'encoder.weight' has shape "
         "\\(10, 7\\), but config.json says F=10, d=6"),
        ({"ae": sd, "optimizer": {}, "step": 5, "config": {}, "norm_factor": 2.0},
         "ae.pt: a training backup \\(step 5\\)"),
    ]
    for i, (bad, message) in enumerate(cases):
        folder = tmp_path / str(i)
        _write(folder, "AutoEncoder", sd)
        torch.save(bad, folder / "ae.pt")
        with pytest.raises(ValueError, match=message):
            tm.dictionary_learning.load(folder)
    (folder / "ae.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="ae.pt: not a readable torch state dict"):
        tm.dictionary_learning.load(folder)


def test_malformed_configs(tmp_path):
    sd = _state("AutoEncoderTopK")
    folder = _write(tmp_path / "a", "IdentityDict", sd)
    with pytest.raises(ValueError, match="config.json: dict_class 'IdentityDict' has no exact"):
        tm.dictionary_learning.load(folder)
    folder = _write(tmp_path / "b", "AutoEncoderTopK", sd, activation_dim=5)
    with pytest.raises(ValueError, match="ae.pt: tensor 'encoder.weight' has shape \\(10, 6\\), "
                       "but config.json says F=10, d=5"):
        tm.dictionary_learning.load(folder)
    folder = _write(tmp_path / "c", "AutoEncoderTopK", sd)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["trainer"]["k"] = 4
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="ae.pt: k=3 but config.json says trainer.k=4"):
        tm.dictionary_learning.load(folder)
    del cfg["trainer"]["dict_size"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="config.json: field 'trainer.dict_size' must be an int"):
        tm.dictionary_learning.load(folder)
    (folder / "config.json").write_text(json.dumps({"buffer": {}}))
    with pytest.raises(ValueError, match="config.json: missing field 'trainer'"):
        tm.dictionary_learning.load(folder)
    (folder / "ae.pt").unlink()
    with pytest.raises(ValueError, match="ae.pt: missing file"):
        tm.dictionary_learning.load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ValueError, match="neither config.json nor trainer_<i>/ folders"):
        tm.dictionary_learning.load(folder)
    folder = _write(tmp_path / "d", "AutoEncoderTopK", sd | {"k": torch.tensor(F + 1)})
    with pytest.raises(ValueError, match="ae.pt: k must be an integer in \\[1, 10\\]"):
        tm.dictionary_learning.load(folder)


def test_without_torch_says_how_to_install(tmp_path, monkeypatch):
    folder = _write(tmp_path, "AutoEncoder", _state("AutoEncoder"))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install toymodels\\[torch\\]"):
        tm.dictionary_learning.load(folder)
