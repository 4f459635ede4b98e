"""tm.saelens: SAELens 6.18's own files load and reproduce its outputs; save → load is exact for
every architecture; what SAELens writes back is byte for byte what SAELens wrote; a malformed
folder raises a ValueError naming its file and what is wrong."""

import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import toymodels as tm

ARCHITECTURES = ("standard", "topk", "jumprelu", "gated")


#: SAELens's fixtures, copied into the repository from the project's shared/fixtures/saelens:
#: tiny SAEs SAELens 6.18.0 wrote itself, with its own encode/decode outputs (see their README).
IN_REPO = Path(__file__).parent / "fixtures" / "saelens"


def _find_fixtures() -> Path | None:
    """SAELens's fixtures: $TOYMODELS_FIXTURES (a folder holding them, or its saelens/), else the
    copy in tests/fixtures/saelens."""
    env = os.environ.get("TOYMODELS_FIXTURES")
    for folder in ([Path(env) / "saelens", Path(env)] if env else [IN_REPO]):
        if (folder / "standard" / "cfg.json").is_file():
            return folder
    return None


FIXTURES = _find_fixtures()
if FIXTURES is None:  # a failure, not a skip: these are the tests that SAELens's files load
    raise FileNotFoundError(f"SAELens's fixtures are missing: {IN_REPO} (or $TOYMODELS_FIXTURES)")


# --- SAELens's own files ---------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fixture_reproduces_saelens_outputs(architecture):
    sae = tm.saelens.load(FIXTURES / architecture)
    ref = load_file(FIXTURES / architecture / "reference_io.safetensors")
    acts = np.asarray(sae.encode(ref["x"]))
    np.testing.assert_allclose(acts, ref["feature_acts"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae.decode(acts), ref["reconstruction"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae(ref["x"]), ref["reconstruction"], rtol=1e-5, atol=1e-5)
    assert sae.architecture == architecture and (sae.d_in, sae.d_sae) == (8, 24)
    assert sae.metadata["hook_name"] == "blocks.0.hook_resid_pre"
    assert sae.metadata["model_name"] == "toy-5x2"
    assert (ref["feature_acts"] > 0).any() and (ref["feature_acts"] == 0).any()  # not trivial


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_fixture_saves_back_byte_for_byte(architecture, tmp_path):
    out = tm.saelens.save(tm.saelens.load(FIXTURES / architecture), tmp_path / "sae")
    for name in ("cfg.json", "sae_weights.safetensors"):
        assert (out / name).read_bytes() == (FIXTURES / architecture / name).read_bytes(), name


def test_fixture_cfg_fields_kept():
    sae = tm.saelens.load(FIXTURES / "jumprelu")  # written with apply_b_dec_to_input false
    assert sae.config.apply_b_dec_to_input is False
    assert tm.saelens.load(FIXTURES / "topk").config.k == 4


# --- save → load -----------------------------------------------------------------------------

TRUTH = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0, seed=0)
TRUTH_PAIRS = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0, d_out=6, seed=0)
TRAIN = tm.TrainConfig(steps=20, batch_size=64, log_every=10)


def _trained(architecture: str, d_out: int | None = None) -> tm.SAE:
    k = 3 if architecture in ("topk", "batchtopk", "matryoshka_batchtopk") else None
    widths = (4, 9, 16) if architecture == "matryoshka_batchtopk" else None
    cfg = tm.SAEConfig(d_in=8, d_sae=16, architecture=architecture, k=k, d_out=d_out,
                       normalize_activations="expected_average_only_in",
                       matryoshka_widths=widths)
    ds = tm.sweep(cfg, {"seed": [0]}, TRAIN, data=TRUTH if d_out is None else TRUTH_PAIRS,
                  progress=False).isel(seed=0)
    assert float(ds.activation_scale) != pytest.approx(1.0)  # the normalisation was on
    return tm.SAE.from_results(ds, {"hook_name": "blocks.1.hook_resid_post"})


def _assert_same(a: tm.SAE, b: tm.SAE, x: np.ndarray) -> None:
    assert a.config == b.config
    assert set(a.params) == set(b.params)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    np.testing.assert_array_equal(a.encode(x), b.encode(x))
    np.testing.assert_array_equal(a(x), b(x))
    assert a.metadata.items() <= b.metadata.items()


def _weights_header(path: Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


@pytest.mark.parametrize("architecture, d_out, saved_as, tensors", [
    ("standard", None, "standard", {"W_enc", "b_enc", "W_dec", "b_dec"}),
    ("topk", None, "topk", {"W_enc", "b_enc", "W_dec", "b_dec"}),
    ("batchtopk", None, "jumprelu", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    ("jumprelu", None, "jumprelu", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    ("gated", None, "gated", {"W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag"}),
    ("standard", 6, "transcoder", {"W_enc", "b_enc", "W_dec", "b_dec"}),
    ("batchtopk", 6, "jumprelu_transcoder", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    ("matryoshka_batchtopk", None, "jumprelu", {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
    ("matryoshka_batchtopk", 6, "jumprelu_transcoder",
     {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"}),
])
def test_trained_sae_round_trips_exactly(architecture, d_out, saved_as, tensors, tmp_path):
    sae = _trained(architecture, d_out)
    out = tm.saelens.save(sae, tmp_path / "sae", model_name="toy")
    loaded = tm.saelens.load(out)
    x = np.asarray(TRUTH.sample(jax.random.key(1), 32))
    _assert_same(sae, loaded, x)

    cfg = json.loads((out / "cfg.json").read_text())
    assert cfg["architecture"] == saved_as
    assert cfg["normalize_activations"] == "none"  # folded into the weights by the trainer
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"], cfg["device"]) == (8, 16, "float32", "cpu")
    assert cfg["apply_b_dec_to_input"] is (d_out is None)
    assert cfg.get("d_out") == d_out
    assert cfg["metadata"]["sae_lens_version"] == "6.18.0"
    assert cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"
    assert cfg["metadata"]["model_name"] == "toy"
    if architecture == "topk":
        assert (cfg["k"], cfg["rescale_acts_by_decoder_norm"]) == (3, False)
    if architecture == "matryoshka_batchtopk" and d_out is None:  # as SAELens 6.54 exports one
        assert cfg["metadata"]["training_architecture"] == "matryoshka_batchtopk"
        details = cfg["metadata"]["training_architecture_details"]
        assert list(details) == MATRYOSHKA_DETAILS
        assert (details["k"], details["matryoshka_widths"]) == (3, [4, 9, 16])
    header = _weights_header(out / "sae_weights.safetensors")
    assert set(header) == tensors  # no __metadata__, nothing SAELens would refuse
    assert {v["dtype"] for v in header.values()} == {"F32"}
    assert tuple(header["W_dec"]["shape"]) == (16, d_out or 8)


#: SAELens 6.54's get_training_architecture_details of a MatryoshkaBatchTopKTrainingSAEConfig:
#: its dataclass fields (TrainingSAEConfig, TopK…, BatchTopK…, Matryoshka…) that the inference
#: JumpReLUSAEConfig (SAEConfig's d_in … metadata) lacks, in field order.
MATRYOSHKA_DETAILS = ["decoder_init_norm", "k", "use_sparse_activations", "aux_loss_coefficient",
                      "rescale_acts_by_decoder_norm", "topk_threshold_lr", "matryoshka_widths",
                      "use_matryoshka_aux_loss"]
#: the keys of SAELens 6.54's inference cfg.json (get_inference_sae_cfg_dict of a jumprelu).
INFERENCE_KEYS = {"d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input",
                  "normalize_activations", "reshape_activations", "metadata", "architecture"}


@settings(max_examples=15, deadline=None)
@given(architecture=st.sampled_from(("standard", "topk", "batchtopk", "jumprelu", "gated",
                                     "matryoshka_batchtopk")),
       d_in=st.integers(1, 6), d_sae=st.integers(1, 9), subtract=st.sampled_from((None, False)),
       transcoder=st.booleans(), seed=st.integers(0, 2**16))
def test_any_sae_round_trips_exactly(architecture, d_in, d_sae, subtract, transcoder, seed):
    if transcoder and architecture in ("topk", "gated"):
        transcoder = False  # SAELens has no such transcoder (refused, tested below)
    d_out = d_in + 1 if transcoder else None
    k = (seed % d_sae) + 1 if architecture in ("topk", "batchtopk", "matryoshka_batchtopk") else None
    widths = None
    if architecture == "matryoshka_batchtopk":  # a random nesting ending at d_sae
        inner = np.random.default_rng(seed).permutation(np.arange(1, d_sae))[:seed % 3]
        widths = tuple(sorted(int(w) for w in inner)) + (d_sae,)
    cfg = tm.SAEConfig(d_in=d_in, d_sae=d_sae, architecture=architecture, k=k, d_out=d_out,
                       apply_b_dec_to_input=subtract, l1_coefficient=0.5,
                       matryoshka_widths=widths)
    sae = _random_sae(cfg, seed)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = tm.saelens.load(tm.saelens.save(sae, tmp))
    x = np.random.default_rng(seed).normal(size=(5, d_in)).astype(np.float32)
    _assert_same(sae, loaded, x)


def _random_sae(cfg: tm.SAEConfig, seed: int) -> tm.SAE:
    rng = np.random.default_rng(seed)
    dims = tm.sae.architectures.param_dims(cfg)
    sizes = {"d_in": cfg.d_in, "latent": cfg.d_sae, "d_out": cfg.output_width}
    params = {name: rng.normal(size=[sizes[d] for d in dims[name]]).astype(np.float32)
              for name in dims}
    if "threshold" in params:
        params["threshold"] = np.abs(params["threshold"])
    return tm.SAE(cfg, params, {"hook_name": "blocks.0.hook_resid_pre"})


def test_loaded_without_toymodels_config_has_plain_training_fields(tmp_path):
    cfg = tm.SAEConfig(d_in=4, d_sae=6, apply_b_dec_to_input=True)  # what the SAELens fields say
    folder = tm.saelens.save(_random_sae(cfg, 0), tmp_path)
    assert "toymodels_config" not in json.loads((folder / "cfg.json").read_text())["metadata"]
    assert tm.saelens.load(folder).config == cfg


@pytest.mark.parametrize("architecture", ["topk", "gated"])
def test_transcoders_saelens_lacks_are_refused(architecture, tmp_path):
    k = 2 if architecture == "topk" else None
    sae = _random_sae(tm.SAEConfig(d_in=4, d_sae=6, d_out=3, architecture=architecture, k=k), 0)
    with pytest.raises(ValueError, match=f"no {architecture} transcoder"):
        tm.saelens.save(sae, tmp_path)


def test_save_metadata(tmp_path):
    sae = _random_sae(tm.SAEConfig(d_in=4, d_sae=6, d_out=3), 0)
    folder = tm.saelens.save(sae, tmp_path, hook_name="blocks.2.ln2.hook_normalized",
                             hook_name_out="blocks.2.hook_mlp_out", context_size=128)
    meta = json.loads((folder / "cfg.json").read_text())["metadata"]
    assert meta["hook_name"] == "blocks.2.ln2.hook_normalized"
    assert meta["hook_name_out"] == "blocks.2.hook_mlp_out" and meta["context_size"] == 128
    assert meta["model_name"] is None and meta["sae_lens_training_version"] is None
    loaded = tm.saelens.load(folder)
    assert loaded.metadata["hook_name_out"] == "blocks.2.hook_mlp_out"
    with pytest.raises(ValueError, match="metadata\\['bad'\\] must be a JSON value"):
        tm.saelens.save(sae, tmp_path, bad=object())
    with pytest.raises(ValueError, match="hook_name must be a string"):
        tm.saelens.save(sae, tmp_path, hook_name=3)
    with pytest.raises(ValueError, match="must be a tm.SAE"):
        tm.saelens.save({"W_enc": 1}, tmp_path)


# --- what SAELens may leave behind, read with its own equations --------------------------------


def _saelens_encode(cfg: dict, w: dict, x: np.ndarray) -> np.ndarray:
    """SAELens 6.18's encode (standard_sae.py, topk_sae.py, jumprelu_sae.py), re-derived."""
    sae_in = x - w["b_dec"] * cfg["apply_b_dec_to_input"]
    pre = sae_in @ w["W_enc"] + w["b_enc"]
    if cfg["architecture"] == "topk":
        if cfg["rescale_acts_by_decoder_norm"]:
            pre = pre * np.linalg.norm(w["W_dec"], axis=-1)
        keep = np.argsort(-pre, axis=-1)[:, :cfg["k"]]
        out = np.zeros_like(pre)
        np.put_along_axis(out, keep, np.maximum(np.take_along_axis(pre, keep, -1), 0), -1)
        return out
    if cfg["architecture"] == "standard":
        return np.maximum(pre, 0)
    return np.maximum(pre, 0) * (pre > w["threshold"])


def _saelens_decode(cfg: dict, w: dict, f: np.ndarray) -> np.ndarray:
    if cfg.get("rescale_acts_by_decoder_norm"):
        f = f / np.linalg.norm(w["W_dec"], axis=-1)
    return f @ w["W_dec"] + w["b_dec"]


def _write(folder: Path, cfg: dict, weights: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: np.array(v, order="C") for k, v in weights.items()},
              str(folder / "sae_weights.safetensors"))
    return folder


def _weights(d_in=5, d_sae=7, seed=0, threshold=False):
    rng = np.random.default_rng(seed)
    w = {"W_enc": rng.normal(size=(d_in, d_sae)), "b_enc": rng.normal(size=d_sae) * 0.1,
         "W_dec": rng.normal(size=(d_sae, d_in)), "b_dec": rng.normal(size=d_in) * 0.1}
    if threshold:
        w["threshold"] = np.abs(rng.normal(size=d_sae)) * 0.5
    return {k: v.astype(np.float32) for k, v in w.items()}


def _cfg(architecture="standard", d_in=5, d_sae=7, **fields):
    return {"d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": True, "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": {"sae_lens_version": "6.18.0", "sae_lens_training_version": "6.18.0",
                         "model_name": "m", "hook_name": "blocks.0.hook_resid_pre"},
            "architecture": architecture} | fields


X = np.random.default_rng(7).normal(size=(16, 5)).astype(np.float32)


def _assert_reproduces(sae, cfg, w, x=X, scale=1.0):
    f = _saelens_encode(cfg, w, x * scale)
    np.testing.assert_allclose(sae.encode(x), f, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae.decode(f), _saelens_decode(cfg, w, f) / scale,
                               rtol=1e-5, atol=1e-5)


def test_topk_rescaled_by_decoder_norms_is_folded(tmp_path):
    cfg = _cfg("topk", k=3, rescale_acts_by_decoder_norm=True)
    w = _weights()
    sae = tm.saelens.load(_write(tmp_path, cfg, w))
    _assert_reproduces(sae, cfg, w)
    np.testing.assert_allclose(np.linalg.norm(sae.W_dec, axis=-1), 1.0, rtol=1e-6)


def test_batchtopk_training_checkpoint_loads_as_its_jumprelu(tmp_path):
    w = _weights() | {"topk_threshold": np.array(0.3)}  # a float64 scalar buffer, as SAELens's
    cfg = _cfg("batchtopk", k=3, rescale_acts_by_decoder_norm=False, topk_threshold_lr=0.01)
    sae = tm.saelens.load(_write(tmp_path, cfg, w))
    assert (sae.architecture, sae.config.k) == ("batchtopk", 3)
    ref = {k: v for k, v in w.items() if k != "topk_threshold"} | {"threshold": np.full(7, 0.3)}
    _assert_reproduces(sae, _cfg("jumprelu"), ref)
    fractional = tm.saelens.load(_write(tmp_path / "f", cfg | {"k": 2.5}, w))
    assert fractional.architecture == "jumprelu"
    _assert_reproduces(fractional, _cfg("jumprelu"), ref)


def _saelens_matryoshka_details(**fields):
    """SAELens 6.54's training_architecture_details of a MatryoshkaBatchTopKTrainingSAEConfig
    (its defaults: decoder_init_norm 0.1, aux_loss_coefficient 1, rescale true …)."""
    return {"decoder_init_norm": 0.1, "k": 3, "use_sparse_activations": False,
            "aux_loss_coefficient": 1.0, "rescale_acts_by_decoder_norm": True,
            "topk_threshold_lr": 0.01, "matryoshka_widths": [2, 4, 7],
            "use_matryoshka_aux_loss": False} | fields


def test_saelens_matryoshka_inference_export_loads_as_matryoshka(tmp_path):
    """What SAELens 6.54's save_inference_model writes for a MatryoshkaBatchTopK SAE: a jumprelu
    (threshold = topk_threshold for every latent) whose metadata names the training architecture."""
    w = _weights(threshold=False) | {"threshold": np.full(7, 0.3, np.float32)}
    cfg = _cfg("jumprelu")
    cfg["metadata"] |= {"training_architecture": "matryoshka_batchtopk",
                        "training_architecture_details": _saelens_matryoshka_details()}
    assert set(cfg) == INFERENCE_KEYS
    sae = tm.saelens.load(_write(tmp_path, cfg, w))
    assert sae.config == tm.SAEConfig(
        d_in=5, d_sae=7, architecture="matryoshka_batchtopk", k=3, matryoshka_widths=(2, 4, 7),
        apply_b_dec_to_input=True, aux_loss_coefficient=1.0, topk_threshold_lr=0.01)
    assert "training_architecture" not in sae.metadata  # read into the config
    _assert_reproduces(sae, _cfg("jumprelu"), w)
    # saved again: the same SAELens fields and training details; loaded again: the same SAE
    again = json.loads((tm.saelens.save(sae, tmp_path / "again") / "cfg.json").read_text())
    assert set(again) == INFERENCE_KEYS and again["architecture"] == "jumprelu"
    details = again["metadata"]["training_architecture_details"]
    assert list(details) == MATRYOSHKA_DETAILS
    assert details | {"rescale_acts_by_decoder_norm": True} == _saelens_matryoshka_details()
    _assert_same(sae, tm.saelens.load(tmp_path / "again"), X)
    # a fractional k (SAELens allows one) has no tm config: the jumprelu it infers as
    cfg["metadata"]["training_architecture_details"]["k"] = 2.5
    fractional = tm.saelens.load(_write(tmp_path / "f", cfg, w))
    assert fractional.architecture == "jumprelu"
    assert fractional.metadata["training_architecture"] == "matryoshka_batchtopk"


def test_saelens_matryoshka_training_checkpoint(tmp_path):
    """TrainingSAE.save_model of a MatryoshkaBatchTopK SAE: its whole training config at the top
    level and the scalar topk_threshold; the decoder norms folded (rescale_acts_by_decoder_norm)."""
    w = _weights() | {"topk_threshold": np.array(0.3)}
    cfg = _cfg("matryoshka_batchtopk", **_saelens_matryoshka_details(
        matryoshka_widths=[2, 4], use_matryoshka_aux_loss=True))
    sae = tm.saelens.load(_write(tmp_path, cfg, w))
    assert (sae.architecture, sae.config.k) == ("matryoshka_batchtopk", 3)
    assert sae.config.matryoshka_widths == (2, 4, 7)  # d_sae appended, as SAELens does
    assert sae.config.use_matryoshka_aux_loss
    n = np.linalg.norm(w["W_dec"], axis=-1)
    ref = {"W_enc": w["W_enc"] * n, "b_enc": w["b_enc"] * n, "W_dec": w["W_dec"] / n[:, None],
           "b_dec": w["b_dec"], "threshold": np.full(7, 0.3)}
    _assert_reproduces(sae, _cfg("jumprelu"), ref)


@pytest.mark.parametrize("details, message", [
    ({"matryoshka_widths": [4, 2, 7]}, "matryoshka_widths must be"),
    ({"matryoshka_widths": None}, "matryoshka_widths must be"),
    ({"k": 9}, "training_architecture_details.k' must be a number in \\(0, d_sae=7\\]"),
    ("nope", "training_architecture_details must be a JSON object"),
])
def test_malformed_matryoshka_metadata(details, message, tmp_path):
    cfg = _cfg("jumprelu")
    cfg["metadata"] |= {"training_architecture": "matryoshka_batchtopk",
                        "training_architecture_details": details if isinstance(details, str)
                        else _saelens_matryoshka_details(**details)}
    with pytest.raises(ValueError, match="cfg.json: .*" + message):
        tm.saelens.load(_write(tmp_path, cfg, _weights(threshold=True)))


def test_expected_average_only_in_folds_the_scaler(tmp_path):
    cfg = _cfg("jumprelu", normalize_activations="expected_average_only_in")
    w = _weights(threshold=True)
    folder = _write(tmp_path, cfg, w)
    with pytest.raises(ValueError, match="cfg.json: .*activation_scaler.json.*scaling_factor="):
        tm.saelens.load(folder)
    _assert_reproduces(tm.saelens.load(folder, scaling_factor=2.5), cfg, w, scale=2.5)
    (folder / "activation_scaler.json").write_text(json.dumps({"scaling_factor": 0.4}))
    _assert_reproduces(tm.saelens.load(folder), cfg, w, scale=0.4)
    (folder / "activation_scaler.json").write_text(json.dumps({"scaling_factor": None}))
    _assert_reproduces(tm.saelens.load(folder), cfg, w)  # never estimated: raw activations
    (folder / "activation_scaler.json").write_text(json.dumps({"scaling_factor": -1}))
    with pytest.raises(ValueError, match="activation_scaler.json: scaling_factor must be"):
        tm.saelens.load(folder)


def test_pre_6_config(tmp_path):
    cfg = {"d_in": 5, "d_sae": 7, "dtype": "torch.float32", "device": "cuda",
           "hook_point": "blocks.3.hook_resid_pre", "model_name": "gpt2-small",
           "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 2},
           "normalize_activations": False, "apply_b_dec_to_input": True,
           "sae_lens_training_version": "3.13.0"}
    w = _weights() | {"scaling_factor": np.ones(7, np.float32)}  # dropped, as SAELens does
    sae = tm.saelens.load(_write(tmp_path, cfg, w))
    assert (sae.architecture, sae.config.k) == ("topk", 2)
    assert sae.metadata == {"model_name": "gpt2-small", "hook_name": "blocks.3.hook_resid_pre",
                            "sae_lens_training_version": "3.13.0",
                            "prepend_bos": True}  # SAELens's default for pre-6.0 configs
    _assert_reproduces(sae, _cfg("topk", k=2, rescale_acts_by_decoder_norm=False), _weights())
    with pytest.raises(ValueError, match="activation_fn 'tanh-relu' has no tm.SAE equivalent"):
        tm.saelens.load(_write(tmp_path / "t", cfg | {"activation_fn_str": "tanh-relu"}, w))


def test_hook_z_and_bfloat16(tmp_path):
    import torch
    from safetensors.torch import save_file as save_torch

    cfg = _cfg(reshape_activations="hook_z", dtype="bfloat16")
    w = _weights()
    tmp_path.joinpath("cfg.json").write_text(json.dumps(cfg))
    save_torch({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in w.items()},
               str(tmp_path / "sae_weights.safetensors"))
    sae = tm.saelens.load(tmp_path)
    wide = {k: torch.from_numpy(v).to(torch.bfloat16).float().numpy() for k, v in w.items()}
    _assert_reproduces(sae, cfg, wide)
    assert sae.metadata["reshape_activations"] == "hook_z"
    out = tm.saelens.save(sae, tmp_path / "again")
    assert json.loads((out / "cfg.json").read_text())["reshape_activations"] == "hook_z"


# --- malformed folders -------------------------------------------------------------------------


def _good(tmp_path, architecture="standard", **fields):
    return _write(tmp_path / "sae", _cfg(architecture, **fields),
                  _weights(threshold=architecture == "jumprelu"))


def _rewrite_cfg(folder, **fields):
    cfg = json.loads((folder / "cfg.json").read_text()) | fields
    (folder / "cfg.json").write_text(json.dumps(cfg))


def _rewrite_weights(folder, change):
    path = folder / "sae_weights.safetensors"
    w = load_file(path)
    change(w)
    save_file(w, str(path))


def test_malformed_missing_files(tmp_path):
    folder = _good(tmp_path)
    with pytest.raises(ValueError, match="no such folder"):
        tm.saelens.load(tmp_path / "nowhere")
    (folder / "sae_weights.safetensors").unlink()
    with pytest.raises(ValueError, match="sae_weights.safetensors: missing file"):
        tm.saelens.load(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(ValueError, match="cfg.json: missing file"):
        tm.saelens.load(folder)


def test_malformed_tensors(tmp_path):
    folder = _good(tmp_path)
    _rewrite_weights(folder, lambda w: w.pop("b_enc"))
    with pytest.raises(ValueError, match="sae_weights.safetensors: missing tensor 'b_enc'"):
        tm.saelens.load(folder)
    folder = _good(tmp_path / "2")
    _rewrite_weights(folder, lambda w: w.update(log_threshold=np.zeros(7, np.float32)))
    with pytest.raises(ValueError, match="sae_weights.safetensors: unexpected tensor "
                       "'log_threshold'"):
        tm.saelens.load(folder)
    folder = _good(tmp_path / "3")
    _rewrite_weights(folder, lambda w: w.update(b_enc=np.zeros(6, np.float32)))
    with pytest.raises(ValueError, match="tensor 'b_enc' has shape \\(6,\\), but cfg.json says "
                       "d_sae=7"):
        tm.saelens.load(folder)
    folder = _good(tmp_path / "4")
    (folder / "sae_weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="sae_weights.safetensors: not a readable safetensors"):
        tm.saelens.load(folder)
    folder = _good(tmp_path / "5")
    _rewrite_weights(folder, lambda w: w.update(scaling_factor=np.full(7, 2.0, np.float32)))
    with pytest.raises(ValueError, match="'scaling_factor' is not all ones"):
        tm.saelens.load(folder)


def test_malformed_d_in_disagrees_with_weights(tmp_path):
    folder = _good(tmp_path)
    _rewrite_cfg(folder, d_in=6)
    with pytest.raises(ValueError, match="sae_weights.safetensors: tensor 'W_enc' has shape "
                       "\\(5, 7\\), but cfg.json says d_in=6, d_sae=7"):
        tm.saelens.load(folder)


@pytest.mark.parametrize("fields, message", [
    ({"architecture": "crosscoder"}, "cfg.json: unknown architecture 'crosscoder'"),
    ({"architecture": "skip_transcoder"}, "cfg.json: architecture 'skip_transcoder' is refused"),
    ({"normalize_activations": "constant_norm_rescale"},
     "cfg.json: normalize_activations 'constant_norm_rescale'"),
    ({"normalize_activations": "layer_norm"}, "cfg.json: normalize_activations 'layer_norm'"),
    ({"d_in": "5"}, "cfg.json: field 'd_in' must be an integer"),
    ({"d_sae": 0}, "cfg.json: field 'd_sae' must be an integer"),
    ({"dtype": "int8"}, "cfg.json: field 'dtype' must be one of"),
    ({"apply_b_dec_to_input": "yes"}, "cfg.json: field 'apply_b_dec_to_input' must be bool"),
    ({"reshape_activations": "flat"}, "cfg.json: field 'reshape_activations'"),
    ({"architecture": "topk"}, "cfg.json: field 'k' must be a number in \\(0, d_sae=7\\]"),
    ({"architecture": "topk", "k": 9}, "cfg.json: field 'k' must be a number"),
    ({"architecture": "transcoder", "d_out": 5}, "cfg.json: apply_b_dec_to_input must be false"),
    ({"architecture": "transcoder", "apply_b_dec_to_input": False},
     "cfg.json: field 'd_out' must be an integer"),
    ({"metadata": {"sae_lens_version": "6.18.0", "toymodels_config": {"d_in": 5, "d_sae": 9}}},
     "cfg.json: metadata.toymodels_config says d_sae=9 but the SAELens fields say 7"),
    ({"metadata": {"sae_lens_version": "6.18.0", "toymodels_config": {"d_in": 5, "d_sae": 7,
                                                                      "colour": 1}}},
     "cfg.json: metadata.toymodels_config has fields SAEConfig does not know: colour"),
    ({"metadata": {"sae_lens_version": "six"}}, "cfg.json: unreadable sae_lens_version"),
])
def test_malformed_config(tmp_path, fields, message):
    folder = _good(tmp_path)
    _rewrite_cfg(folder, **fields)
    with pytest.raises(ValueError, match=message):
        tm.saelens.load(folder)


def test_malformed_json(tmp_path):
    folder = _good(tmp_path)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(ValueError, match="cfg.json: not a readable JSON file"):
        tm.saelens.load(folder)
    (folder / "cfg.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="cfg.json: expected a JSON object"):
        tm.saelens.load(folder)


def test_zero_decoder_norm_cannot_be_folded(tmp_path):
    w = _weights()
    w["W_dec"][2] = 0
    folder = _write(tmp_path, _cfg("topk", k=3, rescale_acts_by_decoder_norm=True), w)
    with pytest.raises(ValueError, match="0 for latents \\[2\\]"):
        tm.saelens.load(folder)


def test_fixture_header_has_no_metadata():
    # What our writer matches: SAELens writes no __metadata__ into sae_weights.safetensors.
    with safe_open(str(FIXTURES / "standard" / "sae_weights.safetensors"), "numpy") as f:
        assert f.metadata() is None


def test_fixture_search_honours_env(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES, tmp_path / "saelens")
    monkeypatch.setenv("TOYMODELS_FIXTURES", str(tmp_path))
    assert _find_fixtures() == tmp_path / "saelens"
    monkeypatch.setenv("TOYMODELS_FIXTURES", str(tmp_path / "nowhere"))
    assert _find_fixtures() is None
