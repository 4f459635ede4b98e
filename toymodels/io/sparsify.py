"""Sparse coders trained by EleutherAI/sparsify, read into `tm.SAE`.

sparsify saves one folder per hookpoint (`SparseCoder.save_to_disk`): `cfg.json`, its
`SparseCoderConfig` plus `d_in`, and `sae.safetensors`, the module's tensors:
`encoder.weight [M, d_in]`, `encoder.bias [M]`, `W_dec [M, d_in]`, `b_dec [d_in]` (and `W_skip
[d_in, d_in]` with a skip connection), M = num_latents or d_in · expansion_factor. Its forward
(`sparse_coder.py` and `fused_encoder.py` at commit 9d3b136, v1.3.0):

    f = TopK_k(ReLU((x − b_dec) encoder.weightᵀ + encoder.bias)),   x̂ = f W_dec + b_dec,

without the subtraction of b_dec for a transcoder (`transcode: true`, which predicts a d_in-wide
target from its input). That is a tm.SAE `topk` with W_enc = encoder.weightᵀ (the k largest of
ReLU(π) are the ReLU of the k largest π), and a transcoder with d_out = d_in. Refused: the
`groupmax` activation and skip connections, which tm.SAE does not have.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toymodels.io._files import (
    build,
    check_tensors,
    fail,
    field,
    folder_of,
    need,
    only_one,
    positive_int,
    read_json,
    read_safetensors,
)
from toymodels.sae.model import SAE

__all__ = ["load"]

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae.safetensors"


def load(path: str | Path, *, hookpoint: str | None = None) -> SAE:
    """The sparse coder of a sparsify folder, as a tm.SAE (`topk`, or a `topk` transcoder).

    Args:
      path: a hookpoint's folder (cfg.json + sae.safetensors), or the run folder holding one
        folder per hookpoint.
      hookpoint: which hookpoint of a run folder (needed when it holds more than one).

    `metadata` holds `hookpoint` (the folder's name) and the config as `sparsify`.
    """
    folder = _hookpoint_folder(path, hookpoint)
    cfg_path = need(folder, CFG_FILENAME, "a sparsify folder")
    weights_path = need(folder, WEIGHTS_FILENAME, "a sparsify folder")
    cfg = read_json(cfg_path)
    d_in = positive_int(cfg_path, cfg, "d_in")
    activation = field(cfg_path, cfg, "activation", str, "topk")
    if activation != "topk":
        fail(cfg_path, f"activation {activation!r} has no tm.SAE equivalent (topk has)")
    if field(cfg_path, cfg, "skip_connection", bool, False):
        fail(cfg_path, "skip_connection: its W_skip (x̂ += x W_skipᵀ) has no tm.SAE equivalent")
    transcode = field(cfg_path, cfg, "transcode", bool, False)
    num_latents = field(cfg_path, cfg, "num_latents", int, 0)
    if num_latents == 0:
        num_latents = d_in * positive_int(cfg_path, {"expansion_factor": 32} | cfg,
                                          "expansion_factor")
    elif num_latents < 0:
        fail(cfg_path, f"field 'num_latents' must be ≥ 0; got {num_latents}")
    k = positive_int(cfg_path, {"k": 32} | cfg, "k")

    tensors = read_safetensors(weights_path)
    shapes = {"encoder.weight": ("num_latents", "d_in"), "encoder.bias": ("num_latents",),
              "W_dec": ("num_latents", "d_in"), "b_dec": ("d_in",)}
    check_tensors(weights_path, tensors, shapes, {"d_in": d_in, "num_latents": num_latents},
                  config=CFG_FILENAME, what="a sparsify SparseCoder")
    t = {n: np.asarray(v, np.float32) for n, v in tensors.items()}
    params = {"W_enc": t["encoder.weight"].T, "b_enc": t["encoder.bias"], "W_dec": t["W_dec"],
              "b_dec": t["b_dec"]}
    config = {"d_in": d_in, "d_sae": num_latents, "architecture": "topk", "k": k,
              "d_out": d_in if transcode else None, "apply_b_dec_to_input": not transcode}
    return build(cfg_path, config, params, {"hookpoint": folder.name, "sparsify": cfg})


def _hookpoint_folder(path: str | Path, hookpoint: str | None) -> Path:
    folder = folder_of(path, "a sparsify hookpoint folder or run folder")
    if hookpoint is not None:
        return folder_of(folder / hookpoint, f"hookpoint {hookpoint!r} of {folder}")
    if (folder / CFG_FILENAME).is_file():
        return folder
    found = sorted(p for p in folder.iterdir() if (p / CFG_FILENAME).is_file())
    return only_one(folder, found, f"neither {CFG_FILENAME} nor hookpoint folders holding one",
                    "hookpoints", "hookpoint=<name>")
