"""tm.sparsify: folders written with sparsify's key names and shapes load into tm.SAE and
reproduce its forward pass, re-implemented here in NumPy from sparse_coder.py and
fused_encoder.py; malformed folders name their file."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

import toymodels as tm

D, M, K = 6, 12, 3
X = np.random.default_rng(0).normal(size=(32, D)).astype(np.float32)


def _tensors(seed=0, d=D, m=M):
    rng = np.random.default_rng(seed)
    t = {"encoder.weight": rng.normal(size=(m, d)), "encoder.bias": rng.normal(size=m) * 0.3,
         "W_dec": rng.normal(size=(m, d)), "b_dec": rng.normal(size=d) * 0.3}
    return {k: v.astype(np.float32) for k, v in t.items()}


def _cfg(**fields):
    # SparseCoderConfig.to_dict() plus d_in, as SparseCoder.save_to_disk writes it
    return {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True,
            "num_latents": M, "k": K, "multi_topk": False, "skip_connection": False,
            "transcode": False, "d_in": D} | fields


def _write(folder, cfg, tensors):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(tensors, str(folder / "sae.safetensors"))
    return folder


def _forward(cfg, t, x):
    """SparseCoder.encode → decode: top-k of ReLU(x' Wᵀ + b), x' = x − b_dec unless transcoding;
    x̂ = Σ_top a_j W_dec[j] + b_dec (embedding_bag)."""
    if not cfg["transcode"]:
        x = x - t["b_dec"]
    pre = np.maximum(x @ t["encoder.weight"].T + t["encoder.bias"], 0)
    top = np.argsort(-pre, axis=-1)[:, :cfg["k"]]
    acts = np.take_along_axis(pre, top, -1)
    y = np.einsum("bk,bkd->bd", acts, t["W_dec"][top]) + t["b_dec"]
    f = np.zeros_like(pre)
    np.put_along_axis(f, top, acts, -1)
    return f, y


@pytest.mark.parametrize("transcode", [False, True])
def test_reproduces_its_forward(transcode, tmp_path):
    cfg, t = _cfg(transcode=transcode), _tensors()
    sae = tm.sparsify.load(_write(tmp_path / "layers.3.mlp", cfg, t))
    assert (sae.architecture, sae.config.k, sae.d_in, sae.d_sae) == ("topk", K, D, M)
    assert sae.config.is_transcoder is transcode and sae.config.subtracts_b_dec is not transcode
    f, y = _forward(cfg, t, X)
    np.testing.assert_allclose(sae.encode(X), f, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae(X), y, rtol=1e-5, atol=1e-5)
    assert sae.metadata["hookpoint"] == "layers.3.mlp" and sae.metadata["sparsify"] == cfg


def test_expansion_factor_and_bfloat16(tmp_path):
    import torch
    from safetensors.torch import save_file as save_torch

    cfg = _cfg(num_latents=0, expansion_factor=2)
    t = _tensors()
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    save_torch({k: torch.from_numpy(v).to(torch.bfloat16) for k, v in t.items()},
               str(tmp_path / "sae.safetensors"))
    sae = tm.sparsify.load(tmp_path)
    assert sae.d_sae == 2 * D
    wide = {k: torch.from_numpy(v).to(torch.bfloat16).float().numpy() for k, v in t.items()}
    f, y = _forward(cfg, wide, X)
    np.testing.assert_allclose(sae.encode(X), f, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae(X), y, rtol=1e-5, atol=1e-5)


def test_run_folder_with_hookpoints(tmp_path):
    a = _write(tmp_path / "layers.0", _cfg(), _tensors(0))
    sae = tm.sparsify.load(tmp_path)  # one hookpoint: found without hookpoint=
    np.testing.assert_array_equal(sae.b_dec, _tensors(0)["b_dec"])
    _write(tmp_path / "layers.1", _cfg(), _tensors(1))
    with pytest.raises(ValueError, match="holds 2 hookpoints \\(layers.0, layers.1\\); choose"):
        tm.sparsify.load(tmp_path)
    np.testing.assert_array_equal(tm.sparsify.load(tmp_path, hookpoint="layers.1").b_dec,
                                  _tensors(1)["b_dec"])
    assert tm.sparsify.load(a).metadata["hookpoint"] == "layers.0"
    with pytest.raises(ValueError, match="no such folder"):
        tm.sparsify.load(tmp_path, hookpoint="layers.7")


@pytest.mark.parametrize("cfg, change, message", [
    ({"activation": "groupmax"}, None, "cfg.json: activation 'groupmax' has no tm.SAE"),
    ({"skip_connection": True}, None, "cfg.json: skip_connection"),
    ({"d_in": 5}, None, "sae.safetensors: tensor 'encoder.weight' has shape \\(12, 6\\), but "
     "cfg.json says num_latents=12, d_in=5"),
    ({"num_latents": 10}, None, "tensor 'encoder.weight' has shape \\(12, 6\\), but cfg.json "
     "says num_latents=10"),
    ({"k": M + 1}, None, "cfg.json: k must be an integer in \\[1, 12\\]"),
    ({"k": 0}, None, "cfg.json: field 'k' must be an integer ≥ 1"),
    ({"transcode": "no"}, None, "cfg.json: field 'transcode' must be bool"),
    ({}, lambda t: t.pop("W_dec"), "sae.safetensors: missing tensor 'W_dec'"),
    ({}, lambda t: t.update(W_skip=np.zeros((D, D), np.float32)),
     "sae.safetensors: unexpected tensor 'W_skip'"),
    ({}, lambda t: t.update(b_dec=np.zeros(D + 1, np.float32)),
     "tensor 'b_dec' has shape \\(7,\\), but cfg.json says d_in=6"),
])
def test_malformed(cfg, change, message, tmp_path):
    t = _tensors()
    if change is not None:
        change(t)
    folder = _write(tmp_path, _cfg(**cfg), t)
    with pytest.raises(ValueError, match=message):
        tm.sparsify.load(folder)


def test_malformed_missing_files(tmp_path):
    folder = _write(tmp_path / "layers.0", _cfg(), _tensors())
    (folder / "sae.safetensors").unlink()
    with pytest.raises(ValueError, match="sae.safetensors: missing file"):
        tm.sparsify.load(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(ValueError, match="neither cfg.json nor hookpoint folders"):
        tm.sparsify.load(folder)
    _write(folder, {"k": 3}, _tensors())
    with pytest.raises(ValueError, match="cfg.json: field 'd_in' must be an integer"):
        tm.sparsify.load(folder)
