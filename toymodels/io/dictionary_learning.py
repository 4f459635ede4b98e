"""Dictionaries trained by saprmarks/dictionary_learning, read into `tm.SAE` (and Matryoshka SAEs
written back).

`trainSAE(save_dir=…)` writes one folder per trainer, `trainer_<i>/`, holding `config.json`
(`{"trainer": {"dict_class", "activation_dim", "dict_size", "k", "layer", "lm_name", …},
"buffer": {…}}`) and `ae.pt`, the dictionary's torch state dict (its biases already rescaled
when it trained on normalised activations, so it reads raw ones). Each class maps exactly onto a
tm.SAE architecture, so that `encode` and `decode` give the class's `encode` and `decode`
(keys and forward passes as in dictionary_learning's `dictionary.py`, `trainers/top_k.py`,
`trainers/batch_top_k.py` and `trainers/matryoshka_batch_top_k.py` at commit 60ec6bf,
2025-08-20). With π = (x − b) W_enc + b_enc:

- `AutoEncoder` {encoder.weight [F, d], encoder.bias [F], decoder.weight [d, F], bias [d]}:
  f = ReLU(π) with b = bias, x̂ = f W_dec + bias → `standard`;
- `AutoEncoderNew` {encoder.weight, encoder.bias, decoder.weight, decoder.bias}:
  f = ReLU(x W_enc + b_enc), x̂ = f W_dec + decoder.bias → `standard`, apply_b_dec_to_input False;
- `AutoEncoderTopK` {encoder.*, decoder.weight, b_dec [d], k, threshold}: the k largest of
  ReLU(π) with b = b_dec (its default `encode`, which ignores the threshold) → `topk`;
- `BatchTopKSAE` {the same}: ReLU(π)·1[ReLU(π) > θ], θ the scalar threshold (its default
  `encode`) → `batchtopk` with θ for every latent;
- `MatryoshkaBatchTopKSAE` {W_enc [d, F], b_enc, W_dec [F, d], b_dec, k, threshold,
  group_sizes}: the same → `matryoshka_batchtopk` with matryoshka_widths the cumulative sums of
  group_sizes (group sizes (2, 3, 5) are widths (2, 5, 10)); group_sizes also in metadata;
- `JumpReluAutoEncoder` {W_enc, b_enc, W_dec, b_dec, threshold [F]}: ReLU(π·1[π > θ]) with no
  b_dec subtracted (an attribute it does not save) → `jumprelu`, apply_b_dec_to_input False;
- `GatedAutoEncoder` {encoder.weight, decoder.weight, decoder_bias, gate_bias, mag_bias, r_mag}:
  H(π + gate_bias)·ReLU(e^r_mag ⊙ π + mag_bias) with b = decoder_bias and no b_enc → `gated`.

(W_enc = encoder.weightᵀ, W_dec = decoder.weightᵀ.) `AutoEncoder.from_pretrained` (and so
`utils.load_dictionary`) by default rescales latents so that decoder columns have unit norm;
`normalize_decoder=True` here does the same (W_dec/‖·‖, W_enc·‖·‖, b_enc·‖·‖; the
reconstruction is unchanged). A training backup (`{"ae", "optimizer", "step", …}` in `ae.pt` of
an interrupted run) holds weights in normalised units and is refused.

`save(sae, folder)` writes a `matryoshka_batchtopk` tm.SAE as a `MatryoshkaBatchTopKSAE` trainer
folder that `dictionary_learning.utils.load_dictionary` loads (`MatryoshkaBatchTopKSAE.
from_pretrained` with its strict `load_state_dict`): group_sizes the differences of the widths,
its scalar threshold the SAE's (one for every latent, as batchtopk's running threshold is).
The trainer config says what the loss was in dictionary_learning's terms: its reconstruction
term is (1/G) Σ_g group_weights_g ‖x − x̂_g‖², so SAELens's (and toymodels') plain sum is
group_weights = G for every group.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
)
from toymodels.sae.config import SAEConfig
from toymodels.sae.model import SAE

__all__ = ["CLASSES", "load", "save"]

CONFIG_FILENAME = "config.json"
WEIGHTS_FILENAME = "ae.pt"

Params = dict[str, np.ndarray]


@dataclass(frozen=True)
class _Class:
    """How one dictionary_learning class maps onto tm.SAE."""

    architecture: str
    tensors: dict[str, tuple[str, ...]]  # state-dict key → dims ("d", "F", or () for a scalar)
    params: Callable[[Params], Params]  # state dict (NumPy) → tm.SAE params
    apply_b_dec_to_input: bool = True


def _linear(sd: Params) -> Params:  # nn.Linear encoder and decoder
    return {"W_enc": sd["encoder.weight"].T, "b_enc": sd["encoder.bias"],
            "W_dec": sd["decoder.weight"].T}


_TOPK_TENSORS = {"encoder.weight": ("F", "d"), "encoder.bias": ("F",),
                 "decoder.weight": ("d", "F"), "b_dec": ("d",), "k": (), "threshold": ()}

#: dict_class → its mapping (the classes `dictionary_learning.utils.load_dictionary` reads).
CLASSES: dict[str, _Class] = {
    "AutoEncoder": _Class(
        "standard",
        {"encoder.weight": ("F", "d"), "encoder.bias": ("F",), "decoder.weight": ("d", "F"),
         "bias": ("d",)},
        lambda sd: _linear(sd) | {"b_dec": sd["bias"]}),
    "AutoEncoderNew": _Class(
        "standard",
        {"encoder.weight": ("F", "d"), "encoder.bias": ("F",), "decoder.weight": ("d", "F"),
         "decoder.bias": ("d",)},
        lambda sd: _linear(sd) | {"b_dec": sd["decoder.bias"]},
        apply_b_dec_to_input=False),
    "AutoEncoderTopK": _Class("topk", _TOPK_TENSORS,
                              lambda sd: _linear(sd) | {"b_dec": sd["b_dec"]}),
    "BatchTopKSAE": _Class(
        "batchtopk", _TOPK_TENSORS,
        lambda sd: _linear(sd) | {"b_dec": sd["b_dec"], "threshold": _every_latent(sd)}),
    "MatryoshkaBatchTopKSAE": _Class(
        "matryoshka_batchtopk",
        {"W_enc": ("d", "F"), "b_enc": ("F",), "W_dec": ("F", "d"), "b_dec": ("d",), "k": (),
         "threshold": (), "group_sizes": ("groups",)},
        lambda sd: {n: sd[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec")}
        | {"threshold": _every_latent(sd)}),
    "JumpReluAutoEncoder": _Class(
        "jumprelu",
        {"W_enc": ("d", "F"), "b_enc": ("F",), "W_dec": ("F", "d"), "b_dec": ("d",),
         "threshold": ("F",)},
        lambda sd: {n: sd[n] for n in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")},
        # an attribute, not saved: False unless the dictionary came from SAELens
        apply_b_dec_to_input=False),
    "GatedAutoEncoder": _Class(
        "gated",
        {"encoder.weight": ("F", "d"), "decoder.weight": ("d", "F"), "decoder_bias": ("d",),
         "gate_bias": ("F",), "mag_bias": ("F",), "r_mag": ("F",)},
        lambda sd: {"W_enc": sd["encoder.weight"].T, "W_dec": sd["decoder.weight"].T,
                    "b_dec": sd["decoder_bias"], "b_gate": sd["gate_bias"],
                    "b_mag": sd["mag_bias"], "r_mag": sd["r_mag"]}),
}


def _every_latent(sd: Params) -> np.ndarray:
    # BatchTopK's scalar threshold θ: ReLU(π)·1[ReLU(π) > θ] = ReLU(π)·1[π > θ] for every θ
    # (θ < 0, never estimated, keeps every positive π either way): a jumprelu with θ per latent.
    return np.full(sd["encoder.bias" if "encoder.bias" in sd else "b_enc"].shape,
                   sd["threshold"], np.float32)


def load(path: str | Path, *, trainer: int | None = None, checkpoint: int | None = None,
         normalize_decoder: bool = False) -> SAE:
    """The dictionary of a dictionary_learning trainer folder, as a tm.SAE.

    Args:
      path: a `trainer_<i>/` folder (config.json + ae.pt), or the `save_dir` holding them.
      trainer: which `trainer_<i>` of a `save_dir` (needed when it holds more than one).
      checkpoint: read `checkpoints/ae_<checkpoint>.pt` instead of the final `ae.pt`.
      normalize_decoder: rescale an AutoEncoder's latents to unit decoder norms, as its
        `from_pretrained` does by default.

    `metadata` holds `model_name` (the trainer's lm_name), `layer`, `submodule_name` and the whole
    config as `dictionary_learning`. Needs torch (`pip install toymodels[torch]`).
    """
    folder = _trainer_folder(path, trainer)
    cfg_path = need(folder, CONFIG_FILENAME, "a dictionary_learning trainer folder")
    weights_path = need(folder, WEIGHTS_FILENAME if checkpoint is None else
                        f"checkpoints/ae_{checkpoint}.pt", "a dictionary_learning trainer folder")
    config = read_json(cfg_path)
    cfg = field(cfg_path, config, "trainer", dict)
    where = "trainer."
    dict_class = field(cfg_path, cfg, "dict_class", str, where=where)
    if dict_class not in CLASSES:
        fail(cfg_path, f"dict_class {dict_class!r} has no exact tm.SAE equivalent (read: "
             f"{', '.join(CLASSES)})")
    spec = CLASSES[dict_class]
    d = positive_int(cfg_path, cfg, "activation_dim", where=where)
    F = positive_int(cfg_path, cfg, "dict_size", where=where)

    state = _read_state_dict(weights_path)
    group_sizes = state.get("group_sizes")
    groups = len(group_sizes) if group_sizes is not None and group_sizes.ndim == 1 else 0
    check_tensors(weights_path, state, spec.tensors, {"d": d, "F": F, "groups": groups},
                  config=CONFIG_FILENAME, what=dict_class)
    k = None
    if "k" in state:
        k = int(state.pop("k"))
        if cfg.get("k", k) != k:
            fail(weights_path, f"k={k} but {CONFIG_FILENAME} says trainer.k={cfg['k']!r}")
    metadata: dict[str, Any] = {"model_name": cfg.get("lm_name"), "layer": cfg.get("layer")}
    if "submodule_name" in cfg:
        metadata["submodule_name"] = cfg["submodule_name"]
    if "group_sizes" in state:
        sizes = state.pop("group_sizes").astype(int)
        if sizes.sum() != F or (sizes <= 0).any():
            fail(weights_path, f"group_sizes {sizes.tolist()} must be positive and sum to "
                 f"dict_size={F}")
        metadata["group_sizes"] = sizes.tolist()
    if dict_class == "AutoEncoderTopK":  # unused by its forward; its encode(use_threshold=True)
        metadata["threshold"] = float(state["threshold"])
    metadata["dictionary_learning"] = config

    params = {n: np.asarray(v, np.float32) for n, v in spec.params(state).items()}
    if normalize_decoder:
        if dict_class != "AutoEncoder":
            raise ValueError("normalize_decoder: only an AutoEncoder's latents rescale without "
                             f"changing its function; this is a {dict_class}")
        n = np.linalg.norm(params["W_dec"], axis=-1)
        if not (n > 0).all():
            fail(weights_path, "normalize_decoder divides by decoder norms, some of which are 0")
        params |= {"W_enc": params["W_enc"] * n, "b_enc": params["b_enc"] * n,
                   "W_dec": params["W_dec"] / n[:, None]}
    sae_config = {"d_in": d, "d_sae": F, "architecture": spec.architecture, "k": k,
                  "apply_b_dec_to_input": spec.apply_b_dec_to_input}
    if "group_sizes" in metadata:
        sae_config["matryoshka_widths"] = tuple(int(w) for w in np.cumsum(metadata["group_sizes"]))
    stored = cfg.get(_TOYMODELS_KEY)
    if stored is not None:  # what `save` wrote: the whole SAEConfig, which must agree
        sae_config = _restore(cfg_path, stored, sae_config)
    return build(weights_path, sae_config, params, metadata)


_TOYMODELS_KEY = "toymodels_config"


def _restore(path: Path, stored: Any, says: dict[str, Any]) -> dict[str, Any]:
    """The SAEConfig `save` stored, checked against what the dictionary itself says."""
    where = f"trainer.{_TOYMODELS_KEY}"
    try:
        restored, plain = SAEConfig(**stored), SAEConfig(**says)
    except (TypeError, ValueError) as e:
        fail(path, f"{where} is not a valid SAEConfig ({e})")
    for name in ("architecture", "d_in", "d_sae", "k", "matryoshka_widths", "subtracts_b_dec"):
        got, want = getattr(restored, name), getattr(plain, name)
        if got != want:
            fail(path, f"{where} says {name}={got!r} but the dictionary says {want!r}")
    return stored


def save(sae: SAE, folder: str | Path, *, lm_name: str | None = None, layer: int | None = None,
         submodule_name: str | None = None) -> Path:
    """Write a `matryoshka_batchtopk` SAE as dictionary_learning's MatryoshkaBatchTopKSAE.

    `folder` gets `config.json` ({"trainer": {"dict_class": "MatryoshkaBatchTopKSAE",
    "activation_dim", "dict_size", "k", "group_sizes", "group_fractions", "group_weights",
    "auxk_alpha", "top_k_aux", "lm_name", "layer", "submodule_name", "toymodels_config"},
    "buffer": {}}) and `ae.pt` (W_enc, b_enc, W_dec, b_dec, k int32, threshold float32 scalar,
    group_sizes int64). lm_name, layer and submodule_name default to the SAE's metadata
    (model_name, layer, submodule_name). `load(folder)` gives `sae` back. Needs torch.

    Raises ValueError for another architecture, a transcoder, an SAE that does not subtract
    b_dec from its input (MatryoshkaBatchTopKSAE always does) or one whose threshold differs
    between latents (MatryoshkaBatchTopKSAE has one).
    """
    if not isinstance(sae, SAE):
        raise ValueError(f"sae must be a tm.SAE; got {type(sae).__name__}")
    c = sae.config
    if c.architecture != "matryoshka_batchtopk" or c.is_transcoder or not c.subtracts_b_dec:
        raise ValueError("sae: dictionary_learning's MatryoshkaBatchTopKSAE is an SAE (no "
                         "transcoder) that subtracts b_dec from its input; got architecture "
                         f"{c.architecture!r}, d_out={c.d_out!r}, apply_b_dec_to_input="
                         f"{c.subtracts_b_dec}")
    threshold = np.unique(sae.params["threshold"])
    if len(threshold) != 1:
        raise ValueError("sae: MatryoshkaBatchTopKSAE has one threshold for every latent; this "
                         f"SAE's differ ({threshold.min()} … {threshold.max()})")
    try:
        import torch
    except ImportError as e:
        raise ImportError("writing dictionary_learning's ae.pt needs torch: "
                          "pip install toymodels[torch]") from e
    meta = sae.metadata
    widths = np.asarray(c.matryoshka_widths)
    sizes = np.diff(widths, prepend=0).tolist()
    trainer = {
        "trainer_class": "toymodels", "dict_class": "MatryoshkaBatchTopKSAE",
        "activation_dim": c.d_in, "dict_size": c.d_sae, "k": c.k, "group_sizes": sizes,
        "group_fractions": [s / c.d_sae for s in sizes],
        "group_weights": [float(len(sizes))] * len(sizes),  # (1/G) Σ G·L_g = SAELens's Σ L_g
        "auxk_alpha": c.aux_loss_coefficient, "top_k_aux": max(1, c.d_in // 2),
        "lm_name": meta.get("model_name") if lm_name is None else lm_name,
        "layer": meta.get("layer") if layer is None else layer,
        "submodule_name": meta.get("submodule_name") if submodule_name is None
        else submodule_name,
        _TOYMODELS_KEY: dataclasses.asdict(c),
    }
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {name: torch.from_numpy(np.array(sae.params[name], np.float32))
             for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    state |= {"k": torch.tensor(c.k, dtype=torch.int32),
              "threshold": torch.tensor(float(threshold[0]), dtype=torch.float32),
              "group_sizes": torch.tensor(sizes, dtype=torch.int64)}
    torch.save(state, out / WEIGHTS_FILENAME)
    (out / CONFIG_FILENAME).write_text(json.dumps({"trainer": trainer, "buffer": {}}))
    return out


def _trainer_folder(path: str | Path, trainer: int | None) -> Path:
    folder = folder_of(path, "a dictionary_learning trainer folder or save_dir")
    if trainer is not None:
        return folder_of(folder / f"trainer_{trainer}", f"trainer {trainer} of {folder}")
    if (folder / CONFIG_FILENAME).is_file():
        return folder
    found = sorted((p for p in folder.iterdir()
                    if re.fullmatch(r"trainer_\d+", p.name) and p.is_dir()),
                   key=lambda p: int(p.name.split("_")[1]))
    return only_one(folder, found, f"neither {CONFIG_FILENAME} nor trainer_<i>/ folders",
                    "trainers", "trainer=<i>")


def _read_state_dict(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as e:
        raise ImportError("reading dictionary_learning's ae.pt needs torch: "
                          "pip install toymodels[torch]") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (torch raises many kinds for a bad file)
        fail(path, f"not a readable torch state dict ({type(e).__name__}: {e})")
    if not isinstance(state, dict):
        fail(path, f"expected a state dict, found {type(state).__name__}")
    if "ae" in state and "optimizer" in state:
        fail(path, f"a training backup (step {state.get('step')!r}) of an interrupted run, whose "
             "weights read normalised activations; the finished run's ae.pt reads raw ones")
    out = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            fail(path, f"entry {name!r} is a {type(value).__name__}, not a tensor")
        value = value.detach().cpu()
        out[name] = (value.float() if value.is_floating_point() else value).numpy()
    return out
