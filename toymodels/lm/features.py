"""What an SAE's latents mean: per-token latents of a prompt, a latent's max-activating contexts,
density and promoted tokens, and the latents that separate contrastive prompt sets.

    acts = lm.text_latents(model, tokenizer, sae, ["I am thrilled about the news."])[0]
    index, values = lm.top_latents(acts.feature_acts, k=5)      # (seq, 5) each
    stats = lm.latent_stats(store, sae)                         # one pass over the store
    contexts = lm.max_activating_contexts(store, sae, stats, latent=123, tokenizer=tokenizer)
    table = lm.contrast(model, tokenizer, sae, lm.prompts())    # which latents separate the sets

**Contrast.** Each prompt is one observation: its latents' activations are summarised over its
tokens (`statistic`: the max, the default, or the mean), because tokens of one prompt are not
independent. For each set against the others (with two sets, the first against the second), every
latent is tested by a two-sided Mann–Whitney U test of the per-prompt values. Why that test: the
per-prompt activations are zero-inflated and heavy-tailed (an SAE latent is silent on most
prompts), so a t-test's normality is far off at ~50 prompts a set, while the U test assumes only
exchangeability under the null, handles the many tied zeros (scipy's tie-corrected normal
approximation) and is invariant to the latent's scale. The effect size is the rank-biserial
correlation r = 2 U / (n₁ n₂) − 1 ∈ [−1, 1] (= 2·AUC − 1: r = 1 when every prompt of the set
activates the latent more than every other prompt; r > 0 means the set activates it more).
P-values of all (comparison, latent) tests together are adjusted by Benjamini–Hochberg, and a
latent is reported at false-discovery rate `fdr` when its adjusted q ≤ fdr. Latents that fire on
fewer than `min_active` prompts in all the sets together are not tested (a filter that ignores
the set labels, so it keeps the false-discovery control valid — Bourgon et al. 2010 — while
sparing the correction the many silent latents). A latent that fires on every prompt of every set
alike separates nothing and falls out through its p-value, not by hand.

**Promoted tokens.** For a model with an unembedding W_U (vocab, d) read after a final norm, the
tokens a latent promotes are the largest entries of W_U (γ ⊙ c(W_dec,i)), with γ the final norm's
weight and c the centring a LayerNorm applies (none for RMSNorm): the direct effect of adding the
latent's decoder direction to the last residual stream, ignoring the norm's division by the
stream's scale (a positive number per token, so the ranking within a token is unchanged) and its
bias (the same for every latent). This is the customary "logit lens" of a feature, exact up to
that scale when the latent's site is the last block's residual stream; for earlier sites it
ignores every later block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats as scipy_stats
from tqdm.auto import tqdm

from toymodels.lm.harvesting import token_strings
from toymodels.lm import lens
from toymodels.lm.hooks import capture
from toymodels.lm.saes import encode_rows, sae_site
from toymodels.lm.sites import architecture_of
from toymodels.lm.splice import encoded_batches, model_device, tokenisation
from toymodels.lm.store import ActivationStore
from toymodels.sae import SAE

__all__ = [
    "Context", "LatentStats", "TextLatents", "contrast", "contrast_latents", "format_contexts",
    "latent_stats", "max_activating_contexts", "per_prompt", "promoted_tokens", "text_latents",
    "top_latents",
]

STATISTICS = ("max", "mean")


# ------------------------------------------------------------------------------- prompts → latents

@dataclass(frozen=True)
class TextLatents:
    """One text's tokens and the SAE's latents on each: feature_acts (seq, d_sae)."""

    tokens: list[str]
    token_ids: np.ndarray
    feature_acts: np.ndarray


def text_latents(model, tokenizer, sae: SAE, texts: Sequence[str], *, site: str | None = None,
                 batch_size: int = 16, max_length: int | None = None,
                 prepend_bos: bool | None = None, progress: bool = False) -> list[TextLatents]:
    """The SAE's latents on every real token of each text, the model run up to the SAE's site.

    Tokenised as the SAE's store was harvested (`max_length`, `prepend_bos` from its metadata
    unless given); special tokens ([CLS], [SEP], BOS) are kept, as the harvest keeps them by default.
    """
    site, _ = sae_site(sae, site)
    max_length, prepend_bos = tokenisation(sae, max_length, prepend_bos)
    texts = list(texts)
    out = []
    batches = encoded_batches(tokenizer, texts, batch_size, max_length, prepend_bos,
                              model_device(model))
    for ids, mask in tqdm(batches, total=-(-len(texts) // batch_size), disable=not progress,
                          desc="latents", unit="batch"):
        x = capture(model, [site], ids, mask)[site]
        real = mask.bool()
        f = encode_rows(sae, x[real].float().cpu().numpy())
        lengths = real.sum(1).tolist()
        starts = np.cumsum([0] + lengths)
        for row, n in enumerate(lengths):
            token_ids = ids[row, :n].cpu().numpy()
            out.append(TextLatents(token_strings(tokenizer, token_ids), token_ids,
                                   f[starts[row]:starts[row] + n]))
    return out


def top_latents(feature_acts: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The k most active latents of each token: (seq, d_sae) -> (indices (seq, k), values (seq, k)),
    largest first (latents that do not fire show as value 0 at the end of a short list)."""
    f = np.asarray(feature_acts)
    if f.ndim != 2:
        raise ValueError(f"feature_acts: expected (seq, d_sae), got shape {f.shape}")
    if not isinstance(k, int) or not 1 <= k <= f.shape[1]:
        raise ValueError(f"k must be an integer in [1, d_sae={f.shape[1]}], got {k!r}")
    index = np.argsort(-f, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(f, index, axis=1)


# ------------------------------------------------------------------------------- a latent's corpus

@dataclass(frozen=True)
class LatentStats:
    """Every latent's activations over a store, from one pass (`latent_stats`).

    density (d_sae,): fraction of tokens with f_i > 0; max (d_sae,) largest activation;
    top_rows, top_values (d_sae, n): the store rows of each latent's n largest activations
    (largest first; rows with f_i = 0 are never listed: -1, value 0); tokens: tokens read.
    """

    density: np.ndarray
    max: np.ndarray
    top_rows: np.ndarray
    top_values: np.ndarray
    tokens: int


def _check_store(store: ActivationStore, sae: SAE) -> None:
    width = store.d_in                  # raises unless the store's input site is chosen
    site = sae.metadata.get("hook_name")
    if site is not None and list(store.input_sites) != ([site] if isinstance(site, str) else site):
        raise ValueError(f"store: its site {list(store.input_sites)} is not the SAE's ({site}); "
                         "select it: store.select(site=...)")
    if width != sae.d_in:
        raise ValueError(f"store: its width {width} is not the SAE's d_in={sae.d_in}")


def latent_stats(store: ActivationStore, sae: SAE, *, n_top: int = 20, rows: int | None = None,
                 progress: bool = False) -> LatentStats:
    """Encode the whole store once: each latent's density, max and top-`n_top` rows.

    `rows` store rows are encoded at a time (default: about 2²⁵ activations, 128 MiB, per chunk).
    """
    _check_store(store, sae)
    if not isinstance(n_top, int) or n_top < 1:
        raise ValueError(f"n_top must be an integer ≥ 1, got {n_top!r}")
    rows = rows if rows is not None else max(256, (1 << 25) // sae.d_sae)
    fired = np.zeros(sae.d_sae, np.int64)
    best = np.zeros((0, sae.d_sae), np.float32)           # (kept, d_sae), unordered
    best_rows = np.zeros((0, sae.d_sae), np.int64)
    start = 0
    for chunk in tqdm(store.chunks(rows), total=-(-len(store) // rows), disable=not progress,
                      desc="encode store", unit="chunk"):
        f = encode_rows(sae, chunk[0] if isinstance(chunk, tuple) else chunk)
        fired += np.sum(f > 0, axis=0)
        values = np.concatenate([best, f])
        keep = min(n_top, len(values))
        top = np.argpartition(-values, keep - 1, axis=0)[:keep]     # positions in `values`
        old = top < len(best)
        rows_of_old = np.take_along_axis(best_rows, np.where(old, top, 0), axis=0) \
            if len(best) else 0
        best_rows = np.where(old, rows_of_old, start + top - len(best))
        best = np.take_along_axis(values, top, axis=0)
        start += len(f)
    order = np.argsort(-best, axis=0, kind="stable")
    best = np.take_along_axis(best, order, axis=0).T
    best_rows = np.take_along_axis(best_rows, order, axis=0).T
    best_rows = np.where(best > 0, best_rows, -1)
    best = np.where(best > 0, best, 0.0)
    if best.shape[1] < n_top:                             # a store of fewer than n_top tokens
        pad = n_top - best.shape[1]
        best = np.pad(best, ((0, 0), (0, pad)))
        best_rows = np.pad(best_rows, ((0, 0), (0, pad)), constant_values=-1)
    return LatentStats(density=fired / max(start, 1), max=best[:, 0].copy(), top_rows=best_rows,
                       top_values=best, tokens=start)


@dataclass(frozen=True)
class Context:
    """A stretch of a stored text around one token: tokens, the latent's activation on each, and
    which of them (`index`) is the row the context was chosen for (store row `row`)."""

    tokens: list[str]
    feature_acts: np.ndarray
    index: int
    row: int

    @property
    def value(self) -> float:
        return float(self.feature_acts[self.index])


def max_activating_contexts(store: ActivationStore, sae: SAE, stats: LatentStats, latent: int, *,
                            tokenizer=None, n: int = 10, before: int = 12, after: int = 4
                            ) -> list[Context]:
    """The `n` store tokens where `latent` is largest (from `stats`), each with its context
    (up to `before` tokens before it and `after` after it, within its text) and the latent's
    activation on every token of the context."""
    _check_store(store, sae)
    if not isinstance(latent, int | np.integer) or not 0 <= latent < sae.d_sae:
        raise ValueError(f"latent must be an integer in [0, d_sae={sae.d_sae}), got {latent!r}")
    tokenizer = tokenizer if tokenizer is not None else store.tokenizer()
    out = []
    for row in stats.top_rows[latent, :n]:
        if row < 0:
            break
        ids, index = store.context(int(row), before, after)
        start = int(row) - index
        x = store.read(np.arange(start, start + len(ids)))
        f = encode_rows(sae, x[0] if isinstance(x, tuple) else x)[:, latent]
        out.append(Context(token_strings(tokenizer, ids), f, index, int(row)))
    return out


def format_contexts(contexts: Sequence[Context], *, mark: tuple[str, str] = ("«", "»")) -> str:
    """One line per context: its value, then its tokens with the chosen one marked «so»."""
    lines = []
    for c in contexts:
        words = [f"{mark[0]}{t}{mark[1]}" if i == c.index else t for i, t in enumerate(c.tokens)]
        lines.append(f"{c.value:8.3f}  {' '.join(words)}")
    return "\n".join(lines)


def promoted_tokens(model, tokenizer, sae: SAE, latent: int, *, k: int = 10
                    ) -> dict[str, list[tuple[str, float]]]:
    """{"promoted": the k tokens with the largest W_U (γ ⊙ c(W_dec,latent)), "suppressed": the k
    smallest} as (token, value) pairs (see the module docstring for the approximation)."""
    if not isinstance(latent, int | np.integer) or not 0 <= latent < sae.d_sae:
        raise ValueError(f"latent must be an integer in [0, d_sae={sae.d_sae}), got {latent!r}")
    if lens.is_hooked(model):  # a HookedTransformer: its W_U and ln_final
        W_U, gain, centre = lens.unembedding(model)
    else:
        arch = architecture_of(model.config)
        unembed = model.get_output_embeddings()
        if unembed is None or arch.final_norm is None:
            raise ValueError(f"model: a {type(model).__name__} has no unembedding reading the "
                             "residual stream (promoted tokens need an LM head, e.g. "
                             "GPT2LMHeadModel)")
        norm = model.base_model.get_submodule(arch.final_norm)
        W_U, gain = unembed.weight.detach().float().cpu(), norm.weight.detach().float().cpu()
        centre = isinstance(norm, torch.nn.LayerNorm)
    d = torch.as_tensor(sae.W_dec[latent], dtype=torch.float32)
    if centre:
        d = d - d.mean()
    with torch.no_grad():
        v = d if gain is None else d * gain
        logits = (W_U @ v).numpy()
    order = np.argsort(-logits)

    def named(index):
        return list(zip(token_strings(tokenizer, index), logits[index].tolist()))

    return {"promoted": named(order[:k]), "suppressed": named(order[::-1][:k])}


# --------------------------------------------------------------------------------------- contrast

def per_prompt(latents: Sequence[TextLatents], statistic: str = "max") -> np.ndarray:
    """(prompts, d_sae): each prompt's max (or mean) activation of every latent over its tokens."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    reduce = np.max if statistic == "max" else np.mean
    return np.stack([reduce(t.feature_acts, axis=0) for t in latents])


def contrast_latents(activations: Mapping[str, np.ndarray], *, fdr: float = 0.05,
                     min_active: int = 3) -> pd.DataFrame:
    """Which latents separate prompt sets: per-latent Mann–Whitney U tests, Benjamini–Hochberg.

    Args:
      activations: {set name: (prompts, d_sae) per-prompt activations} (`per_prompt`), ≥ 2 sets.
      fdr: the false-discovery rate at which a latent is `significant`, in (0, 1).
      min_active: test only latents with a non-zero value on at least this many prompts of all
        the sets together (a label-blind filter).

    Returns:
      One row per (comparison, tested latent), sorted by q then by |effect|: `set` (the set
      compared with the rest; with two sets, the first with the second), `latent`, `effect`
      (rank-biserial r; > 0: the set activates it more), `p`, `q` (BH-adjusted over every row),
      `significant` (q ≤ fdr), `mean_in`, `mean_out` (mean per-prompt activation), `active_in`,
      `active_out` (fraction of prompts on which it fires).
    """
    if not isinstance(activations, Mapping) or len(activations) < 2:
        raise ValueError("activations: a mapping of at least two set names to (prompts, d_sae) "
                         "arrays")
    if not 0 < fdr < 1:
        raise ValueError(f"fdr must lie in (0, 1), got {fdr!r}")
    sets = {name: np.asarray(a, np.float64) for name, a in activations.items()}
    widths = {a.shape[1] if a.ndim == 2 else None for a in sets.values()}
    if len(widths) != 1 or None in widths:
        raise ValueError("activations: every set must be a (prompts, d_sae) array of one d_sae; got "
                         f"shapes {[a.shape for a in sets.values()]}")
    small = [name for name, a in sets.items() if len(a) < 2]
    if small:
        raise ValueError(f"activations: sets {small} have fewer than 2 prompts")
    everything = np.concatenate(list(sets.values()))
    tested = np.flatnonzero(np.sum(everything > 0, axis=0) >= min_active)
    names = list(sets)
    comparisons = names[:1] if len(names) == 2 else names
    rows = []
    for name in comparisons:
        inside = sets[name][:, tested]
        outside = np.concatenate([sets[o] for o in names if o != name])[:, tested]
        if len(tested):
            u, p = scipy_stats.mannwhitneyu(inside, outside, alternative="two-sided", axis=0)
        else:
            u = p = np.zeros(0)
        n1, n2 = len(inside), len(outside)
        rows.append(pd.DataFrame({
            "set": name, "latent": tested, "effect": 2 * u / (n1 * n2) - 1, "p": p,
            "mean_in": inside.mean(0), "mean_out": outside.mean(0),
            "active_in": (inside > 0).mean(0), "active_out": (outside > 0).mean(0)}))
    table = pd.concat(rows, ignore_index=True)
    table["q"] = scipy_stats.false_discovery_control(table["p"]) if len(table) else []
    table["significant"] = table["q"] <= fdr
    table = table.assign(_abs=-table["effect"].abs()).sort_values(["q", "_abs"], kind="stable")
    return table.drop(columns="_abs").reset_index(drop=True)[
        ["set", "latent", "effect", "p", "q", "significant", "mean_in", "mean_out", "active_in",
         "active_out"]]


def contrast(model, tokenizer, sae: SAE, prompt_sets: Mapping[str, Sequence[str]], *,
             statistic: str = "max", fdr: float = 0.05, min_active: int = 3, batch_size: int = 16,
             progress: bool = False) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run every prompt set through the model and the SAE and `contrast_latents` them.

    Returns (the table, {set: (prompts, d_sae) per-prompt activations}).
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    activations = {}
    for name, prompts in prompt_sets.items():
        latents = text_latents(model, tokenizer, sae, prompts, batch_size=batch_size,
                               progress=progress)
        activations[name] = per_prompt(latents, statistic)
    return contrast_latents(activations, fdr=fdr, min_active=min_active), activations
