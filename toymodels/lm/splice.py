"""Put an SAE back into its model, edit what flows through a site, and measure what changes.

    with lm.intervention(model, "blocks.3.hook_resid_post", lm.reconstruction(sae)):
        out = model(**batch)                        # block 3's output replaced by the SAE's x̂
    report = lm.splice_effects(model, tokenizer, sae, texts)   # CE / KL / embedding cosine …

**Edits** are functions `edit(x_in, x) -> x_new` of NumPy rows (one row per token of the batch,
padding included): `x` (rows, d) is the tensor at the written site, `x_in` (rows, d_in) the one
the SAE reads (the same tensor, except for a transcoder, which reads `site` and writes
`target_site`). The library's edits:

| edit | x_new | |
|---|---|---|
| `reconstruction(sae)` | x̂ = SAE(x_in) | the splice |
| `zero_ablation()` | 0 | the baseline of "CE recovered" |
| `latent_ablation(sae, L)` | x − Σ_{i∈L} f_i(x_in) W_dec,i | remove latents L, keep the error |
| `steering(direction, α)` | x + α · direction | e.g. direction = W_dec,i |

Ablating a latent keeps the error term: x_new = x̂(f with f_L = 0) + (x − x̂), which is
x − Σ_{i∈L} f_i W_dec,i. So only those latents' contribution changes, and an ablation's effect is
not confounded with the splice's own reconstruction error (SAELens's and Marks et al.'s
convention for feature ablations). Steering by α · W_dec,i moves the activation as if latent i
fired α more (α in the latent's own activation units; compare it to the latent's max activation).
Both apply at every position.

**Intervening** (`intervention`) registers forward hooks that return the replacement tensor on the
site's module (`toymodels.lm.sites`: a forward hook for output taps, a forward pre-hook for input
taps) and removes them when the `with` block ends, also on error: the model is never changed for
longer than the block, and there is no global registry. Where a site is read at a module's input,
the edit changes what that module reads: `mlp.hook_in` edits only the MLP's input (the residual
stream keeps its value), as TransformerLens's `ln2.hook_normalized` does. Pre-norm models
(GPT-2, Llama) have no module whose output is `hook_resid_mid`, so it is written as the block's
input plus the attention's output, with the edit's change added to the attention's output: the
MLP and the residual stream both see the edited value.

**Measuring** (`splice_effects`): reconstruction metrics on the real tokens of the texts (MSE,
FVU about the mean, L0, l2_ratio) beside what changes downstream. For a causal LM with an LM head
(GPT-2, Llama; `output_kind` "logits"): next-token cross-entropy clean, spliced and with the site
zero-ablated, the CE increase, KL(clean ‖ spliced) and the fraction of CE recovered,
(CE_zero − CE_spliced) / (CE_zero − CE_clean). For an encoder without an LM head ("embedding",
all-MiniLM-L6-v2): its sentence embedding (sentence-transformers' config for MiniLM: the mean of
the last hidden state over the attention mask, then L2-normalised) with and without the splice,
compared by cosine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from toymodels import analysis
from toymodels.lm import lens
from toymodels.lm.harvesting import encode, token_strings
from toymodels.lm.hooks import _first
from toymodels.lm.saes import decode_rows, encode_rows, sae_input, sae_site
from toymodels.lm.sites import architecture_of, n_layers, parse_site
from toymodels.sae import SAE

__all__ = [
    "Edit", "Effects", "intervention", "intervention_effects", "latent_ablation", "model_outputs",
    "output_kind", "reconstruction", "sentence_embedding", "splice_effects", "steering",
    "zero_ablation",
]

Edit = Callable[[np.ndarray, np.ndarray], np.ndarray]
OutputKind = Literal["logits", "embedding"]


# ------------------------------------------------------------------------------------------ edits

def reconstruction(sae: SAE) -> Edit:
    """x ↦ x̂ = decode(encode(x_in)): the SAE spliced in."""
    return lambda x_in, x: decode_rows(sae, encode_rows(sae, x_in))


def zero_ablation() -> Edit:
    """x ↦ 0."""
    return lambda x_in, x: np.zeros_like(x)


def _latents(sae: SAE, latents) -> np.ndarray:
    index = np.atleast_1d(np.asarray(latents))
    if index.size == 0 or not np.issubdtype(index.dtype, np.integer) or index.ndim != 1:
        raise ValueError(f"latents: one or more integer latent indices, got {latents!r}")
    if index.min() < 0 or index.max() >= sae.d_sae:
        raise ValueError(f"latents must lie in [0, d_sae={sae.d_sae}), got {index.tolist()}")
    return index


def latent_ablation(sae: SAE, latents: int | Sequence[int]) -> Edit:
    r"""x ↦ x − Σ_{i∈L} f_i(x_in) W_dec,i: latents L set to 0, the SAE's error term kept.

    Equal to x̂(f with f_L = 0) + (x − x̂): only the ablated latents' contribution changes.
    """
    index = _latents(sae, latents)
    W = sae.W_dec[index]

    def edit(x_in, x):
        return x - encode_rows(sae, x_in)[:, index] @ W

    return edit


def steering(direction, strength: float) -> Edit:
    """x ↦ x + strength · direction, at every position; `direction` (d,), e.g. `sae.W_dec[i]`."""
    d = np.asarray(direction, np.float32)
    if d.ndim != 1 or not np.all(np.isfinite(d)):
        raise ValueError(f"direction: a finite (d,) vector, got shape {d.shape}")
    if not np.isfinite(strength):
        raise ValueError(f"strength: a finite number, got {strength!r}")

    def edit(x_in, x):
        if x.shape[1] != len(d):
            raise ValueError(f"direction has {len(d)} dims, the site has {x.shape[1]}")
        return x + np.float32(strength) * d

    return edit


# ----------------------------------------------------------------------------------- intervening

def _rows(t: torch.Tensor) -> np.ndarray:
    return t.detach().reshape(-1, t.shape[-1]).to(torch.float32).cpu().numpy()


def _tensor(rows: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    rows = np.array(rows, np.float32)    # a copy: JAX's arrays are read-only, torch's not
    if rows.shape != (like.shape[:-1].numel(), like.shape[-1]):
        raise ValueError(f"an edit returned rows of shape {rows.shape} for a site of shape "
                         f"{tuple(like.shape)}")
    return torch.from_numpy(rows).to(like.device, like.dtype).reshape(like.shape)


def _hook(module: torch.nn.Module, where: str, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Hook `fn` on a module's input or output; it returns the replacement tensor, or None."""
    if where == "output":
        def hook(_module, _args, output):
            new = fn(_first(output))
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple | list) else new
        return module.register_forward_hook(hook)

    def pre_hook(_module, args, kwargs):
        new = fn(args[0] if args else kwargs["hidden_states"])
        if new is None:
            return None
        if args:
            return (new, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": new}
    return module.register_forward_pre_hook(pre_hook, with_kwargs=True)


@contextlib.contextmanager
def intervention(model, site: str, edit: Edit, *, target_site: str | None = None) -> Iterator[None]:
    """Inside the block, each forward pass of `model` writes `edit(x_in, x)` at the site.

    Args:
      model: a Hugging Face model of a supported architecture (`toymodels.lm.sites`).
      site: the site the edit reads (x_in) and, without `target_site`, writes.
      edit: (x_in (rows, d_in), x (rows, d)) -> (rows, d), NumPy float32, rows = batch × seq.
      target_site: the site written, for a transcoder (it must come after `site` in the pass).

    The hooks are removed when the block ends, also on error. A TransformerLens model is edited
    at its own hook points (any of `model.hook_dict`).
    """
    if lens.is_hooked(model):
        def rewrite_tl(x_in, x):
            return _tensor(edit(_rows(x if x_in is None else x_in), _rows(x)), x)
        with lens.rewrite_hooks(model, site, site if target_site is None else target_site,
                                rewrite_tl):
            yield
        return
    arch = architecture_of(model.config)
    layers = n_layers(model.config)
    read = parse_site(site, layers)
    write = read if target_site is None else parse_site(target_site, layers)
    if write < read:
        raise ValueError(f"target_site {target_site!r} comes before site {site!r} in the forward "
                         "pass; a transcoder writes a later site than it reads")
    base = model.base_model
    state: dict[str, torch.Tensor] = {}

    def rewrite(x: torch.Tensor) -> torch.Tensor:
        x_in = state.pop("x_in") if write != read else x
        return _tensor(edit(_rows(x_in), _rows(x)), x)

    def module(path: str, layer: int) -> torch.nn.Module:
        return base.get_submodule(path.format(l=layer))

    handles = []
    try:
        if write != read:
            def keep(x):
                state["x_in"] = x
            tap = arch.tap(read)
            handles.append(_hook(module(tap.module, read.layer), tap.read, keep))
        if write.kind == "hook_resid_mid" and arch.resid_mid_sum is not None:
            block, attention = arch.resid_mid_sum

            def keep_resid_pre(x):
                state["resid_pre"] = x

            def shift_attention(a):
                r = state.pop("resid_pre") + a
                return a + (rewrite(r) - r)
            handles.append(_hook(module(block, write.layer), "input", keep_resid_pre))
            handles.append(_hook(module(attention, write.layer), "output", shift_attention))
        else:
            tap = arch.tap(write)
            handles.append(_hook(module(tap.module, write.layer), tap.read, rewrite))
        yield
    finally:
        for h in handles:
            h.remove()


# -------------------------------------------------------------------------------------- outputs

def output_kind(model) -> OutputKind:
    """"logits" for a causal LM with an LM head (GPT-2, Llama …, a HookedTransformer), else
    "embedding"."""
    if lens.is_hooked(model):
        return "logits"
    causal = architecture_of(model.config).causal
    return "logits" if causal and model.get_output_embeddings() is not None else "embedding"


def sentence_embedding(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """e = normalise(Σ_t m_t h_t / Σ_t m_t): (batch, seq, d), (batch, seq) -> (batch, d).

    all-MiniLM-L6-v2's sentence embedding (its sentence-transformers modules: Pooling with
    `pooling_mode_mean_tokens`, then Normalize).
    """
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(mean, dim=-1)


def model_outputs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The model's outputs: logits (batch, seq, vocab) for "logits" models, sentence embeddings
    (batch, d) for "embedding" ones (the final hidden state, pooled as `sentence_embedding`)."""
    if lens.is_hooked(model):
        return lens.model_outputs(model, input_ids, attention_mask)
    kind = output_kind(model)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                    output_hidden_states=kind == "embedding")
    if kind == "logits":
        return out.logits.float()
    return sentence_embedding(out.hidden_states[-1].float(), attention_mask)


def encoded_batches(tokenizer, texts, batch_size: int, max_length: int, prepend_bos: bool, device
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(input_ids, attention_mask) of `texts`, `batch_size` at a time, tokenised as `harvest`."""
    texts = list(texts)
    if not texts:
        raise ValueError("texts: give at least one text")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    for start in range(0, len(texts), batch_size):
        enc = encode(tokenizer, texts[start:start + batch_size], max_length=max_length,
                     prepend_bos=prepend_bos)
        yield enc.input_ids.to(device), enc.attention_mask.to(device)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def tokenisation(sae: SAE, max_length: int | None, prepend_bos: bool | None) -> tuple[int, bool]:
    """max_length and prepend_bos: as given, else as the SAE's store was harvested."""
    return (max_length if max_length is not None else int(sae.metadata.get("context_size", 128)),
            prepend_bos if prepend_bos is not None else bool(sae.metadata.get("prepend_bos", False)))


# ------------------------------------------------------------------------------------ the splice

def _next_token(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor):
    """(log-probabilities (n, vocab), targets (n,)) of every real token's next-token prediction."""
    valid = mask[:, 1:].bool()
    logp = torch.log_softmax(logits[:, :-1], dim=-1)[valid]
    return logp, ids[:, 1:][valid]


def reconstruction_metrics(x: np.ndarray, x_hat: np.ndarray, feature_acts: np.ndarray
                           ) -> dict[str, float]:
    """`tm.analysis`'s reconstruction and sparsity metrics of n rows x, x̂ (n, d), f (n, d_sae):
    mse, fvu (about the mean), explained_variance, l2_ratio and l0, as floats."""
    return {"mse": float(analysis.mse(x, x_hat)),
            "fvu": float(analysis.fraction_of_variance_unexplained(x, x_hat)),
            "explained_variance": float(analysis.explained_variance(x, x_hat)),
            "l0": float(analysis.l0(feature_acts)),
            "l2_ratio": float(analysis.l2_ratio(x, x_hat))}


def splice_effects(model, tokenizer, sae: SAE, texts: Sequence[str], *, site: str | None = None,
                   target_site: str | None = None, batch_size: int = 8,
                   max_length: int | None = None, prepend_bos: bool | None = None,
                   progress: bool = False) -> dict[str, float]:
    """What splicing `sae` in at its site changes, over `texts`.

    Args:
      model, tokenizer: the model the SAE was trained on (`lm.load_model`, or e.g. a
        `GPT2LMHeadModel` for the LM metrics).
      sae: the SAE (or transcoder); its site comes from its metadata (`lm.sae_from_sweep`) or
        `site` / `target_site`.
      texts: the texts to run; each is tokenised as the harvest did (`max_length`, `prepend_bos`:
        from the SAE's metadata unless given).
      batch_size: texts per forward pass.

    Returns:
      {"tokens": real tokens, "texts", the reconstruction metrics at the site on all those tokens
      together (`reconstruction_metrics`: mse, fvu, explained_variance, l0, l2_ratio; FVU about
      their mean), and downstream:}
      - "logits" models: ce_clean, ce_spliced, ce_zero (mean next-token cross-entropy in nats over
        every real token that has a successor), ce_increase = ce_spliced − ce_clean, kl = mean
        KL(p_clean ‖ p_spliced) over the same predictions, ce_recovered =
        (ce_zero − ce_spliced) / (ce_zero − ce_clean);
      - "embedding" models: embedding_cosine = mean over texts of cos(e_clean, e_spliced),
        embedding_cosine_zero the same with the site zero-ablated, and cosine_recovered =
        (embedding_cosine − embedding_cosine_zero) / (1 − embedding_cosine_zero).
    """
    site, target_site = sae_site(sae, site, target_site)
    max_length, prepend_bos = tokenisation(sae, max_length, prepend_bos)
    kind = output_kind(model)
    recorded: dict[str, np.ndarray] = {}

    def splice(x_in, x):
        f = encode_rows(sae, x_in)
        x_hat = decode_rows(sae, f)
        recorded.update(f=f, x=sae_input(sae, x), x_hat=x_hat)  # measured as the SAE reads x
        return x_hat

    rows: dict[str, list[np.ndarray]] = {"x": [], "x_hat": [], "f": []}
    sums = {"ce_clean": 0.0, "ce_spliced": 0.0, "ce_zero": 0.0, "kl": 0.0, "predictions": 0,
            "embedding_cosine": 0.0, "embedding_cosine_zero": 0.0}
    n_texts = len(texts)
    batches = encoded_batches(tokenizer, texts, batch_size, max_length, prepend_bos,
                              model_device(model))
    for ids, mask in tqdm(batches, total=-(-n_texts // batch_size), disable=not progress,
                          desc="splice", unit="batch"):
        clean = model_outputs(model, ids, mask)
        with intervention(model, site, splice, target_site=target_site):
            spliced = model_outputs(model, ids, mask)
        with intervention(model, site, zero_ablation(), target_site=target_site):
            zero = model_outputs(model, ids, mask)
        real = mask.reshape(-1).bool().cpu().numpy()
        for name in rows:
            rows[name].append(recorded[name][real])
        if kind == "logits":
            (lc, target), (ls, _), (lz, _) = (_next_token(o, ids, mask)
                                              for o in (clean, spliced, zero))
            for name, lp in (("ce_clean", lc), ("ce_spliced", ls), ("ce_zero", lz)):
                sums[name] += float(-lp.gather(1, target[:, None]).sum())
            sums["kl"] += float((lc.exp() * (lc - ls)).sum())
            sums["predictions"] += len(target)
        else:
            sums["embedding_cosine"] += float((clean * spliced).sum())
            sums["embedding_cosine_zero"] += float((clean * zero).sum())

    x, x_hat, f = (np.concatenate(rows[k]) for k in ("x", "x_hat", "f"))
    report = {"texts": n_texts, "tokens": len(x), **reconstruction_metrics(x, x_hat, f)}
    if kind == "logits":
        n = max(sums["predictions"], 1)
        ce = {k: sums[k] / n for k in ("ce_clean", "ce_spliced", "ce_zero")}
        gap = ce["ce_zero"] - ce["ce_clean"]
        report |= ce | {"ce_increase": ce["ce_spliced"] - ce["ce_clean"], "kl": sums["kl"] / n,
                        "ce_recovered": (ce["ce_zero"] - ce["ce_spliced"]) / gap if gap else
                        float("nan"), "predictions": sums["predictions"]}
    else:
        cos, zero_cos = (sums[k] / n_texts for k in ("embedding_cosine", "embedding_cosine_zero"))
        report |= {"embedding_cosine": cos, "embedding_cosine_zero": zero_cos,
                   "cosine_recovered": (cos - zero_cos) / (1 - zero_cos) if zero_cos < 1 else
                   float("nan")}
    return report


# -------------------------------------------------------------------------------- interventions

@dataclass(frozen=True)
class Effects:
    """A model's outputs for some texts with and without an edit.

    kind "logits": `clean`, `edited` are the next-token logits (texts, vocab) at each text's last
    real token; kind "embedding": sentence embeddings (texts, d), unit norm.
    """

    kind: OutputKind
    clean: np.ndarray
    edited: np.ndarray

    def cosine(self) -> np.ndarray:
        """(texts,) cos(clean, edited): for embeddings; for logits, of the logit vectors."""
        a, b = self.clean, self.edited
        return np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))

    def logit_diff(self) -> np.ndarray:
        """(texts, vocab) edited − clean logits at the last token ("logits" only)."""
        self._need_logits()
        return self.edited - self.clean

    def kl(self) -> np.ndarray:
        """(texts,) KL(p_clean ‖ p_edited) of the next-token distributions at the last token."""
        self._need_logits()
        lc = torch.log_softmax(torch.from_numpy(self.clean), -1)
        le = torch.log_softmax(torch.from_numpy(self.edited), -1)
        return (lc.exp() * (lc - le)).sum(-1).numpy()

    def top_tokens(self, tokenizer, k: int = 10) -> list[dict[str, list[tuple[str, float]]]]:
        """Per text: the k tokens whose logit rose most ("promoted") and fell most ("suppressed"),
        and the k most likely next tokens before and after the edit, as (token, value) pairs."""
        diff = self.logit_diff()

        def named(values, order):
            return list(zip(token_strings(tokenizer, order), values[order].tolist()))

        out = []
        for t in range(len(diff)):
            p_clean = _softmax(self.clean[t])
            p_edited = _softmax(self.edited[t])
            out.append({"promoted": named(diff[t], np.argsort(-diff[t])[:k]),
                        "suppressed": named(diff[t], np.argsort(diff[t])[:k]),
                        "before": named(p_clean, np.argsort(-p_clean)[:k]),
                        "after": named(p_edited, np.argsort(-p_edited)[:k])})
        return out

    def _need_logits(self):
        if self.kind != "logits":
            raise ValueError("this model has no LM head (its outputs are sentence embeddings): "
                             "compare them with cosine()")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def intervention_effects(model, tokenizer, texts: Sequence[str], site: str, edit: Edit, *,
                         target_site: str | None = None, batch_size: int = 8,
                         max_length: int = 128, prepend_bos: bool = False) -> Effects:
    """The model's outputs for `texts` with and without `edit` at `site` (see `Effects`)."""
    kind = output_kind(model)
    clean, edited = [], []
    for ids, mask in encoded_batches(tokenizer, texts, batch_size, max_length, prepend_bos,
                                     model_device(model)):
        outs = [model_outputs(model, ids, mask)]
        with intervention(model, site, edit, target_site=target_site):
            outs.append(model_outputs(model, ids, mask))
        if kind == "logits":
            last = mask.sum(1) - 1
            outs = [o[torch.arange(len(o)), last] for o in outs]
        clean.append(outs[0].cpu().numpy())
        edited.append(outs[1].cpu().numpy())
    return Effects(kind, np.concatenate(clean), np.concatenate(edited))
