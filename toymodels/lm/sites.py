"""Site names, and where each one lives in each supported architecture.

A *site* is a TransformerLens hook name, `blocks.{layer}.{kind}`: the tensor of shape
(batch, seq, d_model) that the residual stream, an attention block or an MLP carries at that point of
block `layer`. The kinds, in the order a block computes them:

    hook_resid_pre    the block's input: the residual stream entering block `layer`
    hook_attn_out     the attention sub-block's output (after its output projection and bias),
                      before it is added to the residual stream
    hook_resid_mid    the residual stream between attention and MLP (resid_pre + attn_out)
    mlp.hook_in       the tensor the MLP reads (the input of a transcoder)
    hook_mlp_out      the MLP's output, before it is added to the residual stream
    hook_resid_post   the block's output: the residual stream leaving block `layer`

Each architecture maps every kind onto one module of the Hugging Face model, read at that module's
input or output: one table per architecture (`ARCHITECTURES`), nothing else decides where a site is.
Module paths are relative to `model.base_model` (so `GPT2Model` and `GPT2LMHeadModel`,
`BertModel` and `BertForMaskedLM` share a table). This module is pure Python: it names and finds
sites; `toymodels.lm.hooks` hooks them.

**Post-LN models (BERT, RoBERTa; all-MiniLM-L6-v2 is a BERT).** A BERT block computes
    resid_mid = LN₁(resid_pre + attn_out),   resid_post = LN₂(resid_mid + mlp_out),
with the LayerNorms *on* the residual stream. Here `hook_resid_pre` of block l is the block's input,
`hidden_states[l]`, and `hook_resid_post` its output, `hidden_states[l + 1]`: the stream the next
block reads. TransformerLens's `HookedEncoder` (its `BertBlock`) names these differently: its
`hook_resid_post` is the sum *before* LN₂ and the block output is `hook_normalized_resid_post`;
its `hook_resid_mid` is the sum before LN₁. We keep `hook_resid_post` = the block's output because
that is the residual stream as the model passes it on, and what SAEs on encoder models are trained
on. Accordingly `hook_resid_mid` here is the normalised LN₁(resid_pre + attn_out), the tensor the
MLP reads and the residual of the second sum, so in BERT `hook_resid_mid` and `mlp.hook_in` are the
same tensor. `hook_attn_out` and `hook_mlp_out` agree with TransformerLens: the sub-block outputs
after their dense projections (and dropout, an identity in eval mode), before the residual add and
LayerNorm.

**Pre-LN models (GPT-2).** A GPT-2 block computes
    resid_mid = resid_pre + attn(ln_1(resid_pre)),   resid_post = resid_mid + mlp(ln_2(resid_mid)),
exactly TransformerLens's `TransformerBlock`; `mlp.hook_in` is ln_2's output (TransformerLens's
`blocks.{l}.ln2.hook_normalized`, the usual transcoder input). `hidden_states[l]` is resid_pre of
block l for l < n_layers, but the model's last hidden state has `ln_f` applied, so `hook_resid_post`
of the last block is *not* `hidden_states[-1]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

#: The site kinds, in the order a block computes them (the early stop relies on this order).
KINDS = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "mlp.hook_in", "hook_mlp_out",
         "hook_resid_post")

_SITE = re.compile(r"blocks\.(\d+)\.(.+)")
FORMS = ", ".join(f"blocks.{{layer}}.{k}" for k in KINDS)


@dataclass(frozen=True, order=True)
class Site:
    """One parsed site; sorts in the order a forward pass reaches the sites."""

    layer: int
    kind_index: int

    @property
    def kind(self) -> str:
        return KINDS[self.kind_index]

    @property
    def name(self) -> str:
        return f"blocks.{self.layer}.{self.kind}"

    def __str__(self) -> str:
        return self.name


def parse_site(name: str, n_layers: int | None = None) -> Site:
    """`"blocks.3.hook_resid_post"` -> Site(layer=3, kind="hook_resid_post").

    Raises ValueError naming the site and the allowed forms (and the layer range when `n_layers`
    is given).
    """
    match = _SITE.fullmatch(name) if isinstance(name, str) else None
    if match is None or match.group(2) not in KINDS:
        raise ValueError(f"site {name!r} is not one of the forms {FORMS}")
    layer = int(match.group(1))
    if n_layers is not None and not 0 <= layer < n_layers:
        raise ValueError(f"site {name!r}: layer {layer} is outside 0 … {n_layers - 1} "
                         f"(the model has {n_layers} blocks)")
    return Site(layer, KINDS.index(match.group(2)))


def parse_sites(names, n_layers: int | None = None) -> tuple[Site, ...]:
    """Several sites, in the order given; an empty list or a repeated site is a ValueError."""
    if isinstance(names, str):
        names = [names]
    sites = tuple(parse_site(n, n_layers) for n in names)
    if not sites:
        raise ValueError(f"sites: give at least one site, of the forms {FORMS}")
    repeated = sorted({s.name for s in sites if sites.count(s) > 1})
    if repeated:
        raise ValueError(f"sites: {', '.join(repeated)} given more than once")
    return sites


@dataclass(frozen=True)
class Tap:
    """Where a site's tensor is read: the input (first argument) or output of one module.

    `module` is a path under `model.base_model`, with `{l}` standing for the layer. A module whose
    output is a tuple (attention modules return (output, weights)) is read at its first element.
    """

    module: str
    read: Literal["input", "output"]

    def path(self, layer: int) -> str:
        return self.module.format(l=layer)


@dataclass(frozen=True)
class Architecture:
    """One family of models: the `config.model_type`s it covers and where each site kind is."""

    name: str
    model_types: tuple[str, ...]
    taps: Mapping[str, Tap]
    #: the config attribute holding the number of blocks
    n_layers_key: str = "num_hidden_layers"
    #: a causal (next-token) language model when it has an LM head: splicing measures
    #: cross-entropy; an encoder (BERT) measures its sentence embeddings instead
    causal: bool = False
    #: the norm applied to the residual stream before the unembedding (None: there is none, or no
    #: unembedding reads the residual stream directly, as in BERT's MLM head)
    final_norm: str | None = None
    #: pre-norm blocks: no module outputs hook_resid_mid (the second norm only reads it). Writing it
    #: (a splice) goes through (block, attention): resid_mid = the block's input + the attention
    #: module's output, so the edit is added to the attention output. None: the tap is writable.
    resid_mid_sum: tuple[str, str] | None = None

    def __post_init__(self):
        missing = set(KINDS) - set(self.taps)
        if missing:
            raise ValueError(f"architecture {self.name}: no tap for {sorted(missing)}")

    def tap(self, site: Site) -> Tap:
        return self.taps[site.kind]


BERT = Architecture(
    name="bert",
    model_types=("bert", "roberta"),
    taps={
        "hook_resid_pre": Tap("encoder.layer.{l}", "input"),
        "hook_attn_out": Tap("encoder.layer.{l}.attention.output.dense", "output"),
        "hook_resid_mid": Tap("encoder.layer.{l}.attention", "output"),
        "mlp.hook_in": Tap("encoder.layer.{l}.intermediate", "input"),
        "hook_mlp_out": Tap("encoder.layer.{l}.output.dense", "output"),
        "hook_resid_post": Tap("encoder.layer.{l}", "output"),
    },
)

GPT2 = Architecture(
    name="gpt2",
    model_types=("gpt2",),
    taps={
        "hook_resid_pre": Tap("h.{l}", "input"),
        "hook_attn_out": Tap("h.{l}.attn", "output"),
        "hook_resid_mid": Tap("h.{l}.ln_2", "input"),
        "mlp.hook_in": Tap("h.{l}.mlp", "input"),
        "hook_mlp_out": Tap("h.{l}.mlp", "output"),
        "hook_resid_post": Tap("h.{l}", "output"),
    },
    causal=True,
    final_norm="ln_f",
    resid_mid_sum=("h.{l}", "h.{l}.attn"),
)

#: Llama and the models built like it (Qwen2, Mistral): pre-RMSNorm blocks, read like GPT-2's.
LLAMA = Architecture(
    name="llama",
    model_types=("llama", "qwen2", "mistral"),
    taps={
        "hook_resid_pre": Tap("layers.{l}", "input"),
        "hook_attn_out": Tap("layers.{l}.self_attn", "output"),
        "hook_resid_mid": Tap("layers.{l}.post_attention_layernorm", "input"),
        "mlp.hook_in": Tap("layers.{l}.mlp", "input"),
        "hook_mlp_out": Tap("layers.{l}.mlp", "output"),
        "hook_resid_post": Tap("layers.{l}", "output"),
    },
    causal=True,
    final_norm="norm",
    resid_mid_sum=("layers.{l}", "layers.{l}.self_attn"),
)

ARCHITECTURES = (BERT, GPT2, LLAMA)


def architecture_of(config) -> Architecture:
    """The table for a model's (or its config's) `model_type`; ValueError for an unsupported one."""
    config = getattr(config, "config", config)
    model_type = getattr(config, "model_type", None)
    for arch in ARCHITECTURES:
        if model_type in arch.model_types:
            return arch
    known = ", ".join(t for a in ARCHITECTURES for t in a.model_types)
    raise ValueError(f"model_type {model_type!r} has no site table; supported: {known}")


def n_layers(config) -> int:
    """The number of blocks of a model (or config)."""
    config = getattr(config, "config", config)
    return int(getattr(config, architecture_of(config).n_layers_key))


def site_table(arch: Architecture) -> list[tuple[str, str, str]]:
    """(site, module under base_model, "input"/"output") for each kind, `{l}` left in: the docs' table."""
    return [(f"blocks.{{l}}.{k}", arch.taps[k].module, arch.taps[k].read) for k in KINDS]
