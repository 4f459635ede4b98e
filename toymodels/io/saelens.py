"""SAELens folders, both ways: `save(sae, folder)` writes what SAELens's `SAE.load_from_disk`
loads, `load(folder)` reads what SAELens's `SAE.save_model` wrote.

A folder is `cfg.json` + `sae_weights.safetensors`. The files written are SAELens 6.18.0's form
(its own files are in `tests/fixtures/saelens/`), which the current SAELens (6.54, the `interop`
extra, tests/test_saelens_interop.py) loads unchanged; what 6.54 writes reads too (its extra cfg
fields, `training_architecture` metadata and training-only fields, change no inference and are
ignored). SAELens loads the weights with a strict `load_state_dict`, so a file holds exactly its
architecture's tensors:

| tm.SAE | SAELens `architecture` | tensors |
|---|---|---|
| standard | standard | W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec |
| topk | topk (`k`, `rescale_acts_by_decoder_norm` false) | the same |
| jumprelu | jumprelu | the same + threshold [d_sae] |
| batchtopk | jumprelu: the form SAELens exports it as, its running threshold per latent | the same + threshold |
| matryoshka_batchtopk | jumprelu, as SAELens 6.54 exports it, with `metadata.training_architecture` "matryoshka_batchtopk" and `training_architecture_details` (k, matryoshka_widths …) | the same + threshold |
| gated | gated | W_enc, W_dec, b_dec, b_gate, r_mag, b_mag (no b_enc) |
| standard transcoder | transcoder (`d_out`; W_dec [d_sae, d_out], b_dec [d_out]) | W_enc, b_enc, W_dec, b_dec |
| jumprelu / (matryoshka_)batchtopk transcoder | jumprelu_transcoder | the same + threshold |

SAELens has no topk or gated transcoder, so those are refused. Activation normalisation is
folded into the weights when toymodels trains (as SAELens does at the end of training), so a saved
folder says `normalize_activations: "none"`; the SAE's full toymodels config, when it says more
than the SAELens fields do, rides along in `metadata.toymodels_config`, which SAELens keeps and
ignores, so that save → load gives back the same `SAEConfig`.

Reading also accepts what SAELens itself may leave behind, each mapped exactly:
- `topk` with `rescale_acts_by_decoder_norm` true (the default of SAELens's TopK training): the
  decoder norms are folded into the encoder (W_enc·‖W_dec,i‖, b_enc·‖W_dec,i‖, W_dec/‖W_dec,i‖),
  as SAELens's own inference export does;
- a `batchtopk` training checkpoint (its scalar `topk_threshold`): the jumprelu it exports;
- a Matryoshka SAE, either as SAELens 6.54 saves it for inference (a `jumprelu` whose metadata
  says `training_architecture: "matryoshka_batchtopk"`, with k and matryoshka_widths in
  `training_architecture_details`) or as a `matryoshka_batchtopk` training checkpoint:
  `matryoshka_batchtopk` with its widths (d_sae appended when missing, as SAELens does), k, and
  the training fields SAELens records (aux_loss_coefficient, topk_threshold_lr,
  use_matryoshka_aux_loss, decoder_init_norm); a fractional k (SAELens allows one) reads as the
  jumprelu it infers as;
- `normalize_activations: "expected_average_only_in"` with the factor s in the folder's
  `activation_scaler.json` (a training checkpoint) or given as `scaling_factor=`: folded as
  SAELens's `fold_activation_norm_scaling_factor` (W_enc·s, W_dec/s, b_dec/s), before the decoder
  norms, in the order of SAELens's trainer, so that the feature_acts are those SAELens exports;
- pre-6.0 configs (`hook_point`, `activation_fn`, a boolean `normalize_activations` …), read with
  SAELens's own defaults.
Refused, with the reason: `constant_norm_rescale` and `layer_norm` normalisation (per-example
rescalings no fixed weights express), `covariance_whitening` (a training checkpoint's whitening is
not in the folder), `skip_transcoder` and `jumprelu_skip_transcoder` (their W_skip), SAELens 6.5x's
`abstopk`, `matching_pursuit` and `temporal` (no tm.SAE form), a non-trivial
`finetuning_scaling_factor`, and other activation functions of pre-6.0 configs.

A JumpReLU checkpoint of SAELens ≥ 6.2x (θ trained directly, clamped at 0 before each step) may
hold θ_i < 0: it loads as SAELens's `load_from_disk` infers it, ReLU first (SAELens's training
encode, π·H(π − θ), would pass negative π there).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file

from toymodels.io import releases
from toymodels.io._files import (
    build,
    check_tensors,
    fail,
    field,
    folder_of,
    need,
    positive_int,
    read_json,
    read_safetensors,
)
from toymodels.sae.config import RENAMED_FIELDS, SAEConfig, stored_config
from toymodels.sae.model import SAE

__all__ = ["CFG_FILENAME", "SAELENS_VERSION", "WEIGHTS_FILENAME", "from_pretrained", "load",
           "pretrained_sparsity", "save"]

#: the SAELens version whose format this module writes (metadata.sae_lens_version).
SAELENS_VERSION = "6.18.0"
CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
SCALER_FILENAME = "activation_scaler.json"  # SAELens training checkpoints' normalisation factor

_BASE = ("W_enc", "b_enc", "W_dec", "b_dec")
#: SAELens architecture → (tm architecture, is a transcoder, its tensors)
_ARCHITECTURES: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "standard": ("standard", False, _BASE),
    "topk": ("topk", False, _BASE),
    "jumprelu": ("jumprelu", False, _BASE + ("threshold",)),
    "gated": ("gated", False, ("W_enc", "W_dec", "b_dec", "b_gate", "r_mag", "b_mag")),
    "transcoder": ("standard", True, _BASE),
    "jumprelu_transcoder": ("jumprelu", True, _BASE + ("threshold",)),
    # training checkpoints (TrainingSAE.save_model); SAELens infers them as jumprelu
    "batchtopk": ("batchtopk", False, _BASE + ("topk_threshold",)),
    "matryoshka_batchtopk": ("matryoshka_batchtopk", False, _BASE + ("topk_threshold",)),
}
#: tm architectures SAELens saves for inference as a jumprelu (their threshold per latent).
_INFERS_AS_JUMPRELU = ("batchtopk", "matryoshka_batchtopk")
_MATRYOSHKA = "matryoshka_batchtopk"
_REFUSED = {
    "skip_transcoder": "its skip connection W_skip (x̂ += x W_skipᵀ) has no tm.SAE equivalent",
    "jumprelu_skip_transcoder": "its skip connection W_skip (x̂ += x W_skipᵀ) has no tm.SAE "
                                "equivalent",
    # SAELens ≥ 6.2x architectures with no exact tm.SAE form
    "abstopk": "it keeps the k largest |π_i| with their signs (no ReLU); no tm.SAE architecture "
               "does",
    "matching_pursuit": "its encoder is an iterative pursuit over the decoder, not one affine map "
                        "and an activation",
    "temporal": "its encoder attends over earlier tokens, not one affine map per token",
}
#: tm architecture → SAELens architecture, for an SAE and for a transcoder (None: refused).
_SAVE_AS = {
    "standard": ("standard", "transcoder"),
    "topk": ("topk", None),
    "jumprelu": ("jumprelu", "jumprelu_transcoder"),
    "batchtopk": ("jumprelu", "jumprelu_transcoder"),
    "gated": ("gated", None),
    "matryoshka_batchtopk": ("jumprelu", "jumprelu_transcoder"),
}
_DTYPES = ("float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64",
           "torch.float16", "torch.bfloat16")  # SAELens's DTYPE_MAP
_SHAPES = {"W_enc": ("d_in", "d_sae"), "W_dec": ("d_sae", "d_out"), "b_dec": ("d_out",),
           "topk_threshold": ()}
# SAELens ≥ 6 moved these top-level fields of older configs into `metadata`.
_LLM_METADATA_KEYS = ("model_name", "hook_name", "model_class_name", "hook_head_index",
                      "model_from_pretrained_kwargs", "prepend_bos", "exclude_special_tokens",
                      "neuronpedia_id", "context_size", "seqpos_slice", "dataset_path",
                      "sae_lens_version", "sae_lens_training_version", "hook_name_out",
                      "hook_head_index_out")
_TOYMODELS_KEY = "toymodels_config"


# --- save ----------------------------------------------------------------------------------------


def save(sae: SAE, folder: str | Path, *, hook_name: str | None = None,
         model_name: str | None = None, **metadata: Any) -> Path:
    """Write `sae` as a SAELens 6 folder (`cfg.json`, `sae_weights.safetensors`); return it.

    `hook_name` and `model_name` (and any other `metadata`, JSON values, e.g. `hook_name_out` for
    a transcoder) go to the config's `metadata`, over what `sae.metadata` already holds. SAELens
    loads the folder with `SAE.load_from_disk(folder)`; `load(folder)` gives `sae` back exactly.
    Existing files of those names in `folder` are overwritten.
    """
    if not isinstance(sae, SAE):
        raise ValueError(f"sae must be a tm.SAE; got {type(sae).__name__}")
    c = sae.config
    name = _SAVE_AS[c.architecture][c.is_transcoder]
    if name is None:
        raise ValueError(f"sae: SAELens {SAELENS_VERSION} has no {c.architecture} transcoder "
                         "(its transcoders are 'transcoder', ReLU, and 'jumprelu_transcoder')")
    for key, value in (("hook_name", hook_name), ("model_name", model_name)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string or None; got {value!r}")
    meta = dict(sae.metadata)
    reshape = meta.pop("reshape_activations", "none")
    meta.update(metadata)
    if hook_name is not None or "hook_name" not in meta:
        meta["hook_name"] = hook_name
    if model_name is not None or "model_name" not in meta:
        meta["model_name"] = model_name
    meta.pop("sae_lens_version", None)
    meta = {"sae_lens_version": SAELENS_VERSION,
            # A SAE trained by toymodels was trained by no SAELens version: null, unless it came
            # from a SAELens file that named one.
            "sae_lens_training_version": meta.pop("sae_lens_training_version", None), **meta}
    meta.pop(_TOYMODELS_KEY, None)
    # What `load` would make of the SAELens fields alone; the rest rides along.
    seen = _saelens_config(_ARCHITECTURES[name][0], c.d_in, c.d_sae,
                           c.k if name == "topk" else None, c.d_out, c.subtracts_b_dec)
    if c.architecture == _MATRYOSHKA and not c.is_transcoder:
        meta |= _matryoshka_metadata(c)
        seen = _matryoshka_config(CFG_FILENAME, meta["training_architecture_details"],
                                  seen, c.d_sae)
    if c != seen:
        meta[_TOYMODELS_KEY] = dataclasses.asdict(c)
    for key, value in meta.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata[{key!r}] must be a JSON value; got {value!r}") from e

    # Field order as SAELens's SAEConfig.to_dict writes it: the base fields, then the
    # architecture's own, then `architecture`.
    cfg: dict[str, Any] = {
        "d_in": c.d_in, "d_sae": c.d_sae, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": c.subtracts_b_dec, "normalize_activations": "none",
        "reshape_activations": reshape, "metadata": meta,
    }
    if c.is_transcoder:
        cfg["d_out"] = c.d_out
    if name == "topk":
        cfg |= {"k": c.k, "rescale_acts_by_decoder_norm": False}
    cfg["architecture"] = name

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.array(v, np.float32, order="C") for k, v in sae.params.items()},
              str(out / WEIGHTS_FILENAME))
    with open(out / CFG_FILENAME, "w") as f:
        json.dump(cfg, f)
    return out


# --- load ----------------------------------------------------------------------------------------


def load(folder: str | Path, *, scaling_factor: float | None = None) -> SAE:
    """The SAE of a SAELens folder (`cfg.json` + `sae_weights.safetensors`).

    `encode` and `decode` give what SAELens's `encode` and `decode` give on the same inputs;
    `metadata` is the config's (hook_name, model_name …). `scaling_factor`: for a folder whose
    `normalize_activations` is "expected_average_only_in" without an `activation_scaler.json`
    (SAELens's `pretrained_saes.yaml` lists it as `norm_scaling_factor`); it is folded into the
    weights. A malformed folder raises a ValueError naming the file and what is wrong.
    """
    return _load(folder, scaling_factor, {})


def _load(folder: str | Path, scaling_factor: float | None, overrides: dict[str, Any]) -> SAE:
    """`load`, with a release's `config_overrides` applied to the config as SAELens applies
    them (its LLM fields into `metadata`, the rest over the config's own)."""
    path = folder_of(folder, "a SAELens folder with cfg.json and sae_weights.safetensors")
    cfg_path = need(path, CFG_FILENAME, "a SAELens folder")
    weights_path = need(path, WEIGHTS_FILENAME, "a SAELens folder")
    cfg = read_json(cfg_path)
    if _major_version(cfg_path, cfg) < 6:
        cfg = _pre6(cfg_path, cfg)
    for key, value in overrides.items():
        if key in _LLM_METADATA_KEYS:
            cfg["metadata"] = {**field(cfg_path, cfg, "metadata", dict, {}), key: value}
        else:
            cfg[key] = value

    name = field(cfg_path, cfg, "architecture", str, "standard")
    if name in _REFUSED:
        fail(cfg_path, f"architecture {name!r} is refused: {_REFUSED[name]}")
    if name not in _ARCHITECTURES:
        fail(cfg_path, f"unknown architecture {name!r} (known: {', '.join(_ARCHITECTURES)})")
    architecture, transcoder, names = _ARCHITECTURES[name]
    d_in = positive_int(cfg_path, cfg, "d_in")
    d_sae = positive_int(cfg_path, cfg, "d_sae")
    d_out = positive_int(cfg_path, cfg, "d_out") if transcoder else None
    dtype = field(cfg_path, cfg, "dtype", str, "float32")
    if dtype not in _DTYPES:
        fail(cfg_path, f"field 'dtype' must be one of {', '.join(_DTYPES)}; got {dtype!r}")
    subtract = field(cfg_path, cfg, "apply_b_dec_to_input", bool, True)
    if transcoder and subtract:
        fail(cfg_path, f"apply_b_dec_to_input must be false for a {name} (SAELens refuses it)")
    reshape = field(cfg_path, cfg, "reshape_activations", str, "none")
    if reshape not in ("none", "hook_z"):
        fail(cfg_path, f"field 'reshape_activations' must be 'none' or 'hook_z'; got {reshape!r}")
    metadata = dict(field(cfg_path, cfg, "metadata", dict, {}))

    tensors = read_safetensors(weights_path)
    _drop_unit_scaling_factor(weights_path, tensors)
    sizes = {"d_in": d_in, "d_sae": d_sae, "d_out": d_out or d_in}
    check_tensors(weights_path, tensors, {n: _SHAPES.get(n, ("d_sae",)) for n in names}, sizes,
                  config=CFG_FILENAME, what=f"SAELens's {name!r} architecture")
    params = {n: np.asarray(v, np.float32) for n, v in tensors.items()}

    k, training = None, cfg  # a training checkpoint has its training fields at the top level
    if name == "jumprelu" and metadata.get("training_architecture") == _MATRYOSHKA:
        # SAELens 6.54's inference export of a Matryoshka SAE: its training fields in metadata
        architecture, training = _MATRYOSHKA, metadata.get("training_architecture_details")
        where = "metadata.training_architecture_details"
        if not isinstance(training, dict):
            fail(cfg_path, f"{where} must be a JSON object for a {_MATRYOSHKA} SAE; got "
                 f"{training!r}")
        k = _k(cfg_path, training, d_sae, name, where + ".")
        if isinstance(k, int):  # read into the config (a fractional k stays jumprelu, below)
            metadata.pop("training_architecture")
            metadata.pop("training_architecture_details")
    rescale = False
    if architecture in ("topk", "batchtopk") or name == _MATRYOSHKA:
        k = _k(cfg_path, cfg, d_sae, name)
        rescale = field(cfg_path, cfg, "rescale_acts_by_decoder_norm", bool, name != "topk")
    # The normalisation first, then the decoder norms: the order of SAELens's trainer
    # (fold_activation_norm_scaling_factor at the end of training, the norms folded by
    # save_inference_model). With rescaled activations the order shows: π·‖W_dec,i / s‖ is the
    # training π·‖W_dec,i‖ over s, so SAELens's final feature_acts are the training ones over s.
    params = _fold_normalisation(path, cfg_path, field(
        cfg_path, cfg, "normalize_activations", str, "none"), params, scaling_factor,
        rescale=rescale)
    if rescale:
        params = _fold_decoder_norms(weights_path, params)
    if "topk_threshold" in params:  # the jumprelu SAELens exports: one threshold for all latents
        params["threshold"] = np.full(d_sae, params.pop("topk_threshold"), np.float32)
    if architecture in _INFERS_AS_JUMPRELU and not isinstance(k, int):
        architecture, k = "jumprelu", None  # a fractional k has no tm config; its inference is
        # jumprelu

    if reshape != "none":
        metadata["reshape_activations"] = reshape
    stored = metadata.pop(_TOYMODELS_KEY, None)
    matryoshka = architecture == _MATRYOSHKA
    config = _saelens_config("jumprelu" if matryoshka else architecture, d_in, d_sae,
                             None if matryoshka else k, d_out, subtract)
    if matryoshka:
        config = _matryoshka_config(cfg_path, training | {"k": k}, config, d_sae)
    if stored is not None:
        config = _restore(cfg_path, stored, config)
    return build(cfg_path, dataclasses.asdict(config), params, metadata)


def _k(path: Path, cfg: dict[str, Any], d_sae: int, name: str, where: str = "") -> int | float:
    """SAELens's k: an integer, or (batchtopk's) a number, in (0, d_sae]."""
    k = cfg.get("k")
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= d_sae:
        fail(path, f"field '{where}k' must be a number in (0, d_sae={d_sae}] for architecture "
             f"{name!r}; got {cfg.get('k', '(missing)')!r}")
    return k


#: SAELens's MatryoshkaBatchTopKTrainingSAEConfig fields that its inference JumpReLUSAEConfig
#: lacks (its get_training_architecture_details), in their dataclass order, with the tm field
#: each reads (None: a SAELens setting with no tm counterpart, written as what tm did).
_MATRYOSHKA_DETAILS = (("decoder_init_norm", "decoder_init_norm"), ("k", "k"),
                       ("use_sparse_activations", None), ("aux_loss_coefficient",
                                                          "aux_loss_coefficient"),
                       ("rescale_acts_by_decoder_norm", None),
                       ("topk_threshold_lr", "topk_threshold_lr"),
                       ("matryoshka_widths", "matryoshka_widths"),
                       ("use_matryoshka_aux_loss", "use_matryoshka_aux_loss"))


def _matryoshka_metadata(c: SAEConfig) -> dict[str, Any]:
    """The training metadata SAELens 6.54's save_inference_model writes for a Matryoshka SAE.

    tm selects on π itself (its decoder rows kept at unit norm, or free when asked), so
    rescale_acts_by_decoder_norm is false, and it uses dense activations."""
    fixed = {"use_sparse_activations": False, "rescale_acts_by_decoder_norm": False}
    details = {key: (fixed[key] if tm is None else getattr(c, tm))
               for key, tm in _MATRYOSHKA_DETAILS}
    details["matryoshka_widths"] = list(c.matryoshka_widths)
    return {"training_architecture": _MATRYOSHKA, "training_architecture_details": details}


def _matryoshka_config(path, training: dict[str, Any], config: SAEConfig, d_sae: int
                       ) -> SAEConfig:
    """`config` (what the SAELens fields say) as the Matryoshka SAE its training fields describe."""
    fields = {tm: training[key] for key, tm in _MATRYOSHKA_DETAILS
              if tm is not None and training.get(key) is not None}
    widths = fields.get("matryoshka_widths")
    if isinstance(widths, list) and widths and widths[-1] != d_sae:
        widths = widths + [d_sae]  # SAELens appends the outer level (with a warning)
    fields["matryoshka_widths"] = widths
    try:
        return dataclasses.replace(config, architecture=_MATRYOSHKA, **fields)
    except (TypeError, ValueError) as e:
        fail(path, f"not a valid {_MATRYOSHKA} SAE ({e})")


# --- pretrained releases --------------------------------------------------------------------------


def from_pretrained(release: str, sae_id: str, *, cache_dir: str | Path | None = None,
                    force_download: bool = False) -> SAE:
    """A pretrained SAE of SAELens's release table, as SAELens's `SAE.from_pretrained` loads it.

        sae = tm.saelens.from_pretrained("gpt2-small-res-jb", "blocks.8.hook_resid_pre")

    The release is looked up in the installed sae-lens's `pretrained_saes.yaml` (an "owner/repo"
    release not in it is that Hugging Face repo, the sae_id its folder); its files are fetched
    with huggingface_hub into its cache (`cache_dir`, default the hub's), so they load offline
    (`HF_HUB_OFFLINE=1`) once there. The release's `config_overrides` (e.g.
    `model_from_pretrained_kwargs: {center_writing_weights: true}`) and its
    `norm_scaling_factor` are applied as SAELens applies them; the metadata gains `release`,
    `sae_id`, the release's `model` (as `model_name` when the config names none) and
    `neuronpedia_id`. `toymodels.lm` honours `prepend_bos`, `context_size` and
    `model_from_pretrained_kwargs.center_writing_weights` (the SAE reads each token's activation
    centred over d_model, `lm.lens.centred`, which a TransformerLens model processed that way
    already is).

    Raises ValueError for a release or sae_id the table lacks (listing the closest names) or a
    release in another format; FileNotFoundError when the files are neither cached nor reachable.
    """
    where = releases.resolve(release, sae_id)
    folder, _ = releases.download(where, cache_dir=cache_dir, force_download=force_download)
    overrides = dict(where.config_overrides)
    if where.neuronpedia is not None:
        overrides["neuronpedia_id"] = where.neuronpedia
    cfg = read_json(folder / CFG_FILENAME)
    mode = cfg.get("normalize_activations", overrides.get("normalize_activations"))
    scaling = where.norm_scaling_factor if mode == "expected_average_only_in" else None
    sae = _load(folder, scaling, overrides)
    meta = {"release": release, "sae_id": sae_id, **sae.metadata}
    if meta.get("model_name") is None and where.model is not None:
        meta["model_name"] = where.model
    return SAE(sae.config, sae.params, meta)


def pretrained_sparsity(release: str, sae_id: str, *, cache_dir: str | Path | None = None
                        ) -> np.ndarray | None:
    """The release's log10 feature density per latent (its `sparsity.safetensors`,
    (d_sae,)), or None when the release ships none."""
    where = releases.resolve(release, sae_id)
    _, sparsity = releases.download(where, cache_dir=cache_dir)
    if sparsity is None:
        return None
    tensors = read_safetensors(sparsity)
    if "sparsity" not in tensors:
        fail(sparsity, "no tensor 'sparsity'")
    return np.asarray(tensors["sparsity"], np.float32)


def _saelens_config(architecture: str, d_in: int, d_sae: int, k: int | None,
                    d_out: int | None, subtract: bool) -> SAEConfig:
    """The SAEConfig of what a SAELens config says (the training fields at their defaults)."""
    return SAEConfig(d_in=d_in, d_sae=d_sae, architecture=architecture, k=k, d_out=d_out,
                     apply_b_dec_to_input=subtract)


def _restore(path: Path, stored: Any, config: SAEConfig) -> SAEConfig:
    """The toymodels config a folder carries, which must say what its SAELens fields say."""
    where = f"metadata.{_TOYMODELS_KEY}"
    if not isinstance(stored, dict):
        fail(path, f"{where} must be a JSON object; got {stored!r}")
    known = {f.name for f in dataclasses.fields(SAEConfig)} | set(RENAMED_FIELDS)
    unknown = sorted(set(stored) - known)
    if unknown:
        fail(path, f"{where} has fields SAEConfig does not know: {', '.join(unknown)}")
    try:
        restored = stored_config(stored)
    except (TypeError, ValueError) as e:
        fail(path, f"{where} is not a valid SAEConfig ({e})")
    seen_as = "jumprelu" if restored.architecture in _INFERS_AS_JUMPRELU else restored.architecture
    says = "jumprelu" if config.architecture in _INFERS_AS_JUMPRELU else config.architecture
    for name, got, want in (("architecture", seen_as, says), ("d_in", restored.d_in, config.d_in),
                            ("d_sae", restored.d_sae, config.d_sae),
                            ("d_out", restored.d_out, config.d_out),
                            ("apply_b_dec_to_input", restored.subtracts_b_dec,
                             config.subtracts_b_dec)):
        if got != want:
            fail(path, f"{where} says {name}={got!r} but the SAELens fields say {want!r}")
    if config.architecture == "topk" and restored.k != config.k:
        fail(path, f"{where} says k={restored.k!r} but the SAELens field k is {config.k!r}")
    if config.architecture == _MATRYOSHKA:
        for name in ("k", "matryoshka_widths"):
            if getattr(restored, name) != getattr(config, name):
                fail(path, f"{where} says {name}={getattr(restored, name)!r} but SAELens's "
                     f"training fields say {getattr(config, name)!r}")
    return restored


def _major_version(path: Path, cfg: dict[str, Any]) -> int:
    """SAELens's version that wrote the config (0 when it does not say: a pre-6.0 config)."""
    meta = cfg.get("metadata")
    version = cfg.get("sae_lens_version") or (meta.get("sae_lens_version")
                                              if isinstance(meta, dict) else None)
    if not version:
        return 0
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        fail(path, f"unreadable sae_lens_version {version!r}")


def _pre6(path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """A pre-6.0 config in the 6.x layout, with SAELens's defaults (handle_pre_6_0_config)."""
    renames = {"hook_point": "hook_name", "hook_point_head_index": "hook_head_index",
               "activation_fn_str": "activation_fn"}
    old = {renames.get(k, k): v for k, v in cfg.items()}
    old.setdefault("prepend_bos", True)  # SAELens's default for these configs
    new = {k: v for k, v in old.items() if k not in _LLM_METADATA_KEYS}
    new["metadata"] = {k: old[k] for k in _LLM_METADATA_KEYS if k in old}
    new.setdefault("architecture", "standard")
    new.setdefault("reshape_activations", "hook_z" if "hook_z" in str(old.get("hook_name", ""))
                   else "none")
    activation = old.get("activation_fn") or "relu"
    kwargs = old.get("activation_fn_kwargs") or {}
    if activation == "topk" and isinstance(kwargs, dict) and kwargs.get("k") is not None:
        new["architecture"], new["k"] = "topk", kwargs["k"]
    elif activation != "relu" and new["architecture"] in ("standard", "transcoder"):
        fail(path, f"activation_fn {activation!r} has no tm.SAE equivalent (relu and topk do)")
    normalize = old.get("normalize_activations")
    if isinstance(normalize, bool) or normalize is None:
        new["normalize_activations"] = "expected_average_only_in" if normalize else "none"
    return new


def _drop_unit_scaling_factor(path: Path, tensors: dict[str, np.ndarray]) -> None:
    # Some SAELens versions stored an all-ones `scaling_factor`, which SAELens drops on loading;
    # any other value is a fine-tuning scale no SAELens 6 architecture applies.
    if "scaling_factor" in tensors:
        if not np.allclose(tensors["scaling_factor"], 1.0):
            fail(path, "tensor 'scaling_factor' is not all ones: a finetuning_scaling_factor, "
                 "which no SAELens 6 architecture (nor tm.SAE) applies")
        del tensors["scaling_factor"]


def _fold_decoder_norms(path: Path, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """rescale_acts_by_decoder_norm: π·‖W_dec,i‖ is selected, f/‖W_dec,i‖ decoded; folded as
    SAELens's _fold_norm_topk so that plain topk (or jumprelu) computes the same."""
    n = np.linalg.norm(params["W_dec"], axis=-1)
    if not (n > 0).all():
        fail(path, "rescale_acts_by_decoder_norm divides by ‖W_dec,i‖, which is 0 for latents "
             f"{np.flatnonzero(n <= 0).tolist()}")
    return params | {"W_enc": params["W_enc"] * n, "b_enc": params["b_enc"] * n,
                     "W_dec": params["W_dec"] / n[:, None]}


def _fold_normalisation(folder: Path, cfg_path: Path, mode: str, params: dict[str, np.ndarray],
                        scaling_factor: float | None, *, rescale: bool = False
                        ) -> dict[str, np.ndarray]:
    """Weights that read raw activations: SAELens's fold_activation_norm_scaling_factor
    (W_enc·s, W_dec/s, b_dec/s; and a batchtopk's topk_threshold/s when its activations are
    rescaled by the decoder norms, which that fold divides by s: SAELens's fix of #763)."""
    if mode == "none":
        if scaling_factor is not None:
            fail(cfg_path, "scaling_factor was given but normalize_activations is 'none' "
                 "(the weights already read raw activations)")
        return params
    if mode == "covariance_whitening":
        fail(cfg_path, "normalize_activations 'covariance_whitening' needs the whitening mean and "
             "matrix, which a SAELens folder does not store (SAELens folds them into the weights "
             "when training ends; load that exported SAE instead)")
    if mode != "expected_average_only_in":
        fail(cfg_path, f"normalize_activations {mode!r} rescales each example by its own norm "
             "(no fixed weights express it); only 'none' and 'expected_average_only_in' load")
    if scaling_factor is None:
        scaler = folder / SCALER_FILENAME
        if not scaler.is_file():
            fail(cfg_path, "normalize_activations is 'expected_average_only_in' but the folder "
                 f"has no {SCALER_FILENAME} with the factor the weights expect inputs scaled by; "
                 "pass it as load(folder, scaling_factor=…) (SAELens's pretrained_saes.yaml "
                 "calls it norm_scaling_factor)")
        scaling_factor = read_json(scaler).get("scaling_factor")
        if scaling_factor is None:  # never estimated: SAELens trained on raw activations
            return params
        path = scaler
    else:
        path = cfg_path
    s = scaling_factor
    if isinstance(s, bool) or not isinstance(s, (int, float)) or not np.isfinite(s) or s <= 0:
        fail(path, f"scaling_factor must be a finite number > 0; got {s!r}")
    folded = params | {"W_enc": params["W_enc"] * np.float32(s),
                       "W_dec": params["W_dec"] / np.float32(s),
                       "b_dec": params["b_dec"] / np.float32(s)}
    if rescale and "topk_threshold" in params:
        folded["topk_threshold"] = params["topk_threshold"] / s
    return folded
