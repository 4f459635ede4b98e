"""SAEBench's first-letter absorption and k-sparse probing (Karvonen et al. 2025) on a real model.

Both evaluations run the model once (`letter_data`, `pooled_activations`: plain NumPy arrays out)
and everything after that is a function of arrays — probes, latent selection, the absorption
score — so the cores are tested on synthetic arrays whose answer is known, and one harvest of the
model serves every SAE of a comparison (the probe on the raw site does not depend on the SAE).

**First-letter absorption** (SAEBench's `evals/absorption`, Chanin et al.'s metric):
  1. words: the alphabetic single tokens of the tokenizer's vocabulary (`alphabetic_words`; for a
     WordPiece vocabulary no "##" pieces and no special tokens), split 80/20 into train and test;
  2. one prompt per word, "{word} has the first letter:" after 10 in-context examples drawn from
     the same split ("\\n{ex} has the first letter: E" each); the site is read at the word's token;
  3. a probe per letter on the raw site (`train_probes`: 26 one-vs-rest logistic regressions with
     positive-class weighting, Adam, 50 epochs, as SAEBench trains its `LinearProbe`); its test F1
     at logit > 0 gates the letter (F1 > 0.6; SAEBench refuses the model below 20 such letters);
  4. per letter, the SAE's main latents by k-sparse probing (`main_latents`): an L1-penalised probe
     on the latents ranks them, a logistic regression on the top k (k = 1 … 10) is scored by test
     F1, and k grows while F1 gains more than 0.03;
  5. per probe-positive test word (re-prompted with fresh examples from the whole vocabulary) the
     absorption fraction and full absorption (`token_absorption`), averaged per letter over its
     probe true positives, then over the gated letters (`absorption_summary`).

**Sparse probing** (SAEBench's `evals/sparse_probing`) on labelled texts (the shipped corpus's 12
topics): activations mean-pooled over each text's non-special tokens; per topic a balanced
one-vs-rest task; k ∈ {1, 2, 5} latents chosen by |mean_pos − mean_neg| on the train split, an L2
logistic regression (C = 1) on them, test accuracy; beside the same on the raw site's dimensions
and a dense probe on all of them (`topic_probing`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toymodels.config import _fail
from toymodels.lm.saes import encode_rows, sae_site
from toymodels.sae import SAE

__all__ = ["LETTERS", "TEMPLATE", "AbsorptionConfig", "LetterData", "absorption_summary",
           "alphabetic_words", "first_letter_absorption", "first_letter_prompt", "letter_data",
           "main_latents", "pooled_activations", "sparse_probing", "token_absorption",
           "topic_probing", "train_probes"]

log = logging.getLogger(__name__)

LETTERS = "abcdefghijklmnopqrstuvwxyz"
#: SAEBench's verbose first-letter template
TEMPLATE = "{word} has the first letter:"
#: a main latent "fires" above this (SAEBench's EPS for full absorption)
EPS = 1e-8


@dataclasses.dataclass(frozen=True)
class AbsorptionConfig:
    """The settings of `first_letter_absorption`; defaults are SAEBench's unless said otherwise."""

    #: words drawn (seeded) from the alphabetic vocabulary; None: all of them (SAEBench). The
    #: default keeps a MiniLM run to about a minute on 2 CPU cores.
    n_words: int | None = 5000
    #: in-context examples before each prompt's word
    icl_examples: int = 10
    #: fraction of the words the probes train on (the rest test them)
    train_fraction: float = 0.8
    #: largest k of the k-sparse probes
    max_k: int = 10
    #: k grows while the k-sparse probe's test F1 gains more than this
    f1_jump: float = 0.03
    #: a letter counts when its raw-site probe's test F1 exceeds this
    min_probe_f1: float = 0.6
    #: SAEBench evaluates a model only if at least this many letters count
    min_letters: int = 20
    #: an absorbing latent's decoder cosine with the probe must be at least this (fraction)
    absorber_cos: float = 0.1
    #: the top latent's decoder cosine with the probe must be at least this (full absorption)
    full_absorber_cos: float = 0.025
    #: absorbers must supply at least this share of the probe projection (both scores)
    proportion: float = 0.4
    #: at most this many absorbing latents (fraction)
    max_absorbers: int = 3
    #: the L1 coefficient of the probe that ranks latents
    l1_decay: float = 0.01
    #: prompts per forward pass
    batch_size: int = 32
    #: seeds the word sample, the split, the examples and the probes
    seed: int = 0

    def __post_init__(self):
        if self.n_words is not None and not (isinstance(self.n_words, int) and self.n_words >= 52):
            _fail("n_words", "None or an int ≥ 52 (two words a letter)", self.n_words)
        for name in ("icl_examples", "max_k", "min_letters", "max_absorbers", "batch_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                _fail(name, "an int ≥ 1", value)
        if self.min_letters > len(LETTERS):
            _fail("min_letters", "at most 26", self.min_letters)
        if not 0 < self.train_fraction < 1:
            _fail("train_fraction", "in (0, 1)", self.train_fraction)
        for name in ("f1_jump", "min_probe_f1", "absorber_cos", "full_absorber_cos",
                     "proportion", "l1_decay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value <= 1):
                _fail(name, "in [0, 1]", value)


# ---------------------------------------------------------------------------------------------
# words and prompts

def alphabetic_words(tokenizer) -> list[str]:
    """The vocabulary's tokens that read as one alphabetic word, sorted (SAEBench's
    `get_alpha_tokens`: a token's text, after one leading space, is non-empty ASCII letters).

    A WordPiece continuation ("##ing") reads as "##ing" and fails; special tokens ([CLS], <s>)
    fail on their brackets and are excluded by id as well.
    """
    special = set(tokenizer.all_special_tokens)
    words = set()
    for token in tokenizer.get_vocab():
        if token in special:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        bare = text[1:] if text.startswith(" ") else text
        if bare and bare.isascii() and bare.isalpha():
            words.add(text)
    return sorted(words)


def first_letter(word: str) -> str:
    """The word's first letter, lower case ("Cat" -> "c")."""
    return next(c for c in word if c.isalpha()).lower()


def first_letter_prompt(word: str, examples: Sequence[str], rng: np.random.Generator,
                        n_examples: int = 10, template: str = TEMPLATE) -> str:
    """SAEBench's ICL prompt: "\\n" + "\\n".join(f"{ex} has the first letter: {EX}") + "\\n" +
    f"{word} has the first letter:", with `n_examples` examples drawn from `examples` without
    replacement, redrawn while the word is among them (its answer would be in the prompt)."""
    examples = list(examples)
    if len(examples) < n_examples + (word in examples):
        raise ValueError(f"examples: {len(examples)} words cannot give {n_examples} examples "
                         f"other than {word!r}")
    while True:
        chosen = [examples[i] for i in rng.choice(len(examples), n_examples, replace=False)]
        if word not in chosen:
            break
    lines = [template.format(word=ex) + " " + first_letter(ex).upper() for ex in chosen]
    return "\n" + "\n".join(lines) + "\n" + template.format(word=word)


def word_positions(tokenizer, prompts: Sequence[str], words: Sequence[str],
                   template: str = TEMPLATE) -> np.ndarray:
    """The index of each prompt's final word's (last) token in the tokenizer's own encoding:
    the token whose character span holds the word's last character (needs a fast tokenizer)."""
    suffix = len(template) - template.index("{word}") - len("{word}")
    enc = tokenizer(list(prompts), return_offsets_mapping=True, add_special_tokens=True)
    positions = []
    for prompt, word, offsets in zip(prompts, words, enc["offset_mapping"]):
        last = len(prompt) - suffix - 1
        if not prompt[:last + 1].endswith(word):
            raise ValueError(f"prompt does not end in {word!r} + the template: {prompt[-80:]!r}")
        hits = [i for i, (a, b) in enumerate(offsets) if a <= last < b]
        if not hits:
            raise ValueError(f"no token of the prompt covers the word {word!r}")
        positions.append(hits[-1])
    return np.asarray(positions)


def prompt_activations(model, tokenizer, site: str, prompts: Sequence[str], words: Sequence[str],
                       *, batch_size: int = 32, max_length: int = 512, prepend_bos: bool = False,
                       template: str = TEMPLATE, progress: bool = False) -> np.ndarray:
    """The site's activation at each prompt's word: (len(prompts), d_model) float32."""
    import torch
    from tqdm.auto import tqdm

    from toymodels.lm.harvesting import encode
    from toymodels.lm.hooks import capture
    from toymodels.lm.splice import model_device

    positions = word_positions(tokenizer, prompts, words, template)
    device = model_device(model)
    out = []
    for start in tqdm(range(0, len(prompts), batch_size), disable=not progress,
                      desc="letter prompts", unit="batch"):
        chunk = list(prompts[start:start + batch_size])
        enc = encode(tokenizer, chunk, max_length=max_length, prepend_bos=prepend_bos)
        plain = tokenizer(chunk, add_special_tokens=True)["input_ids"]
        # encode() puts a BOS in front of what the tokenizer produced where it lacks one
        shift = np.array([int(prepend_bos and p[:1] != [tokenizer.bos_token_id]) for p in plain])
        if any(len(p) + s > max_length for p, s in zip(plain, shift)):
            raise ValueError(f"max_length: a prompt is longer than {max_length} tokens")
        pos = positions[start:start + batch_size] + shift
        acts = capture(model, [site], enc.input_ids.to(device),
                       enc.attention_mask.to(device))[site]
        rows = torch.arange(len(chunk))
        out.append(acts[rows, torch.as_tensor(pos)].float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


# ---------------------------------------------------------------------------------------------
# probes

def train_probes(x: np.ndarray, y: np.ndarray, *, l1: float = 0.0, weight_decay: float = 1e-4,
                 lr: float = 1e-2, end_lr: float = 1e-5, epochs: int = 50, batch_size: int = 64,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""P one-vs-rest logistic probes trained together, as SAEBench's `train_multi_probe`.

    Loss per batch B: mean over (i ∈ B, p) of BCE(z_ip, y_ip) with positives weighted by
    w_p = #neg_p / #pos_p, plus l1 · mean_p ‖W_p‖₁; z = x Wᵀ + b. Adam with L2 weight decay added
    to the gradient (torch's `Adam(weight_decay=…)`), the learning rate decayed exponentially per
    epoch from lr to end_lr, shuffled minibatches; W and b start uniform in ±1/√d (torch's Linear).

    Args:
      x: (n, d) inputs.  y: (n, P) targets in {0, 1}.
    Returns:
      (W (P, d), b (P,)) float32.
    """
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x (n, d) and y (n, P) must share n: got {x.shape} and {y.shape}")
    n, d = x.shape
    pos = y.sum(0)
    pos_weight = jnp.where(pos > 0, (n - pos) / jnp.maximum(pos, 1), 1.0)
    per_epoch = math.ceil(n / batch_size)
    gamma = math.exp(math.log(end_lr / lr) / epochs)
    optimizer = optax.chain(
        optax.add_decayed_weights(weight_decay), optax.scale_by_adam(),
        optax.scale_by_schedule(lambda step: -lr * gamma ** (step // per_epoch)))
    key_w, key_b, key_p = jax.random.split(jax.random.key(seed), 3)
    bound = 1 / math.sqrt(d)
    params = (jax.random.uniform(key_w, (y.shape[1], d), jnp.float32, -bound, bound),
              jax.random.uniform(key_b, (y.shape[1],), jnp.float32, -bound, bound))
    # every epoch's permutation, padded to whole batches; padded slots carry weight 0
    perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key_p, epochs))
    pad = per_epoch * batch_size - n
    index = jnp.concatenate([perms, jnp.zeros((epochs, pad), perms.dtype)], 1)
    weight = jnp.concatenate([jnp.ones((epochs, n)), jnp.zeros((epochs, pad))], 1)
    index = index.reshape(-1, batch_size)
    weight = weight.reshape(-1, batch_size)

    def loss(params, xb, yb, wb):
        W, b = params
        z = xb @ W.T + b
        bce = pos_weight * yb * jax.nn.softplus(-z) + (1 - yb) * jax.nn.softplus(z)
        return (bce.mean(1) * wb).sum() / wb.sum() + l1 * jnp.abs(W).sum(1).mean()

    @jax.jit
    def run(params, index, weight):
        def step(carry, batch):
            params, state = carry
            i, w = batch
            grads = jax.grad(loss)(params, x[i], y[i], w)
            updates, state = optimizer.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), (index, weight))
        return params

    W, b = run(params, index, weight)
    return np.asarray(W), np.asarray(b)


def f1_at_zero(y: np.ndarray, score: np.ndarray) -> float:
    """F1 of the prediction score > 0 against boolean labels y: 2TP / (2TP + FP + FN); 0 when
    there is neither a positive label nor a positive prediction."""
    y, pred = np.asarray(y, bool), np.asarray(score) > 0
    tp = np.sum(y & pred)
    denom = 2 * tp + np.sum(~y & pred) + np.sum(y & ~pred)
    return float(2 * tp / denom) if denom else 0.0


def main_latents(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray,
                 y_test: np.ndarray, ranking: np.ndarray, *, max_k: int = 10,
                 f1_jump: float = 0.03) -> tuple[list[np.ndarray], np.ndarray]:
    """Each class's main latents by k-sparse probing (SAEBench's `add_feature_splits_to_metrics_df`).

    For class c and k = 1 … max_k: the k latents of largest `ranking[c]` (an L1 probe's weights:
    latents that predict c, not merely covary), a class-balanced logistic regression on them
    (max_iter 500) fitted on the train split, its test F1 at decision > 0. The main latents are
    those of the last k before the first step whose F1 does not exceed the best so far by more
    than `f1_jump`.

    Args:
      f_train, f_test: (n, d_sae) latent activations.  y_train, y_test: (n,) class ids.
      ranking: (C, d_sae).
    Returns:
      (per class, the main latents' ids; F1 (C, max_k) of every k-sparse probe).
    """
    from sklearn.linear_model import LogisticRegression

    n_classes = ranking.shape[0]
    f1 = np.zeros((n_classes, max_k))
    chosen = []
    for c in range(n_classes):
        order = np.argsort(-ranking[c], kind="stable")
        target_train, target_test = y_train == c, y_test == c
        best, main = -np.inf, order[:1]
        growing = True
        for k in range(1, max_k + 1):
            ids = order[:k]
            if target_train.all() or not target_train.any():
                score = np.full(len(f_test), 1.0 if target_train.all() else -1.0)
            else:
                probe = LogisticRegression(max_iter=500, class_weight="balanced")
                probe.fit(f_train[:, ids], target_train)
                score = probe.decision_function(f_test[:, ids])
            f1[c, k - 1] = f1_at_zero(target_test, score)
            if growing and f1[c, k - 1] > best + f1_jump:
                best, main = f1[c, k - 1], ids
            else:
                growing = False
        chosen.append(np.asarray(main))
    return chosen, f1


# ---------------------------------------------------------------------------------------------
# the absorption score

def token_absorption(probe_projection, feature_acts, cos, main, *, absorber_cos: float = 0.1,
                     full_absorber_cos: float = 0.025, proportion: float = 0.4,
                     max_absorbers: int = 3):
    r"""SAEBench's absorption of one probe-positive token (`FeatureAbsorptionCalculator`).

    With P = x · p̂ (the token's activation on the unit probe direction), each latent's projection
    π_j = f_j cos(W_dec,j, p̂), M = Σ_{j main} π_j and A the sum of the largest `max_absorbers`
    π_j > 0 over non-main latents with cos ≥ `absorber_cos`:

      fraction = 0 if M ≥ P or A/P < proportion;  1 if M ≤ 0;  else a/(a + M), a = min(A, P − M).

    Full absorption: every main latent is off (f < 1e-8), the latent of largest π has
    cos ≥ `full_absorber_cos`, P > 0 and that latent's π ≥ proportion · P. (P = 0, where SAEBench
    divides by zero, scores 0 and no full absorption.)

    Args:
      probe_projection: () P.  feature_acts: (d_sae,) f.  cos: (d_sae,).
      main: (d_sae,) bool, the letter's main latents.
    Returns:
      (fraction in [0, 1], full absorption bool), as 0-d arrays; `jax.vmap` it over tokens.
    """
    P = jnp.asarray(probe_projection, jnp.float32)
    f = jnp.asarray(feature_acts, jnp.float32)
    cos = jnp.asarray(cos, jnp.float32)
    main = jnp.asarray(main, bool)
    proj = f * cos
    M = jnp.sum(jnp.where(main, proj, 0.0))
    absorber = ~main & (cos >= absorber_cos) & (proj > 0)
    A = jnp.sum(jax.lax.top_k(jnp.where(absorber, proj, 0.0), min(max_absorbers, proj.size))[0])
    safe_P = jnp.where(P == 0, 1.0, P)
    share = jnp.where(P == 0, 0.0, A / safe_P)
    a = jnp.minimum(A, P - M)
    partial = jnp.clip(a / jnp.where(a + M == 0, 1.0, a + M), 0.0, 1.0)
    fraction = jnp.where((M >= P) | (share < proportion), 0.0, jnp.where(M <= 0, 1.0, partial))
    top = jnp.argmax(proj)
    full = (jnp.all(jnp.where(main, f < EPS, True)) & (cos[top] >= full_absorber_cos) & (P > 0)
            & (proj[top] >= proportion * P))
    return fraction, full


def absorption_summary(fraction: np.ndarray, full: np.ndarray, letter: np.ndarray,
                       probe_f1: np.ndarray, *, min_probe_f1: float = 0.6,
                       min_letters: int = 20) -> dict:
    """Per letter, mean absorption fraction and full-absorption rate over its probe true
    positives; then their means over the letters whose probe F1 > `min_probe_f1`.

    Args:
      fraction, full: (n,) per probe-positive token.  letter: (n,) its letter id.
      probe_f1: (26,) the raw-site probe's test F1.
    Returns:
      {"absorption_fraction", "full_absorption_rate" (means over the passing letters, NaN if
      none), the same "…_ungated" over every letter with a true positive, "letters_passing", "gate_passed" (≥ min_letters), "per_letter": {letter:
      {"probe_f1", "true_positives", "absorption_fraction", "full_absorption_rate"}}}.
    """
    per_letter, passing_frac, passing_full = {}, [], []
    for i, name in enumerate(LETTERS):
        on = letter == i
        n = int(on.sum())
        frac = float(fraction[on].sum() / n) if n else math.nan
        rate = float(full[on].sum() / n) if n else math.nan
        per_letter[name] = {"probe_f1": float(probe_f1[i]), "true_positives": n,
                            "absorption_fraction": frac, "full_absorption_rate": rate}
        if probe_f1[i] > min_probe_f1 and n:
            passing_frac.append(frac)
            passing_full.append(rate)
    seen = [v for v in per_letter.values() if v["true_positives"]]
    return {"absorption_fraction": float(np.mean(passing_frac)) if passing_frac else math.nan,
            "full_absorption_rate": float(np.mean(passing_full)) if passing_full else math.nan,
            # outside SAEBench's gate: every letter with a probe true positive, for a model whose
            # probes are too weak for the gate (then only a comparison between SAEs, not SAEBench)
            "absorption_fraction_ungated": float(np.mean([v["absorption_fraction"] for v in seen]))
            if seen else math.nan,
            "full_absorption_rate_ungated": float(np.mean([v["full_absorption_rate"] for v in seen]))
            if seen else math.nan,
            "letters_passing": len(passing_frac),
            "gate_passed": len(passing_frac) >= min_letters, "per_letter": per_letter}


# ---------------------------------------------------------------------------------------------
# the evaluation on a model

@dataclasses.dataclass(frozen=True)
class LetterData:
    """What the model gives the absorption metric, independent of any SAE."""

    site: str
    words_sampled: int           # words drawn (of `words_total` in the vocabulary)
    words_total: int
    x_train: np.ndarray          # (n_train, d_model) the site at the train prompts' words
    y_train: np.ndarray          # (n_train,) letter ids
    x_test: np.ndarray           # (n_test, d_model)
    y_test: np.ndarray           # (n_test,)
    probe_W: np.ndarray          # (26, d_model) the raw-site probe
    probe_b: np.ndarray          # (26,)
    probe_f1: np.ndarray         # (26,) its test F1 at logit > 0
    x_absorb: np.ndarray         # (n_pos, d_model) probe-positive test words, re-prompted
    y_absorb: np.ndarray         # (n_pos,) their letters


def letter_data(model, tokenizer, site: str, config: AbsorptionConfig = AbsorptionConfig(), *,
                max_length: int = 512, prepend_bos: bool = False,
                progress: bool = False) -> LetterData:
    """Sample words, build the prompts, read the site and train the 26 raw-site probes."""
    rng = np.random.default_rng(config.seed)
    vocab = alphabetic_words(tokenizer)
    words = list(vocab)
    if config.n_words is not None and config.n_words < len(words):
        words = sorted(words[i] for i in rng.choice(len(words), config.n_words, replace=False))
    if len(words) < 2 * (config.icl_examples + 1):
        raise ValueError(f"the vocabulary has {len(words)} alphabetic words: too few for "
                         f"{config.icl_examples} examples a prompt")
    order = rng.permutation(len(words))
    cut = int(len(words) * config.train_fraction)
    train = [words[i] for i in order[:cut]]
    test = [words[i] for i in order[cut:]]

    def read(ws, examples):
        prompts = [first_letter_prompt(w, examples, rng, config.icl_examples) for w in ws]
        x = prompt_activations(model, tokenizer, site, prompts, ws, batch_size=config.batch_size,
                               max_length=max_length, prepend_bos=prepend_bos, progress=progress)
        return x, np.array([LETTERS.index(first_letter(w)) for w in ws])

    x_train, y_train = read(train, train)
    x_test, y_test = read(test, test)
    W, b = train_probes(x_train, np.eye(26, dtype=np.float32)[y_train], seed=config.seed)
    logits = x_test @ W.T + b
    f1 = np.array([f1_at_zero(y_test == c, logits[:, c]) for c in range(26)])
    positive = logits[np.arange(len(y_test)), y_test] > 0
    absorb_words = [w for w, p in zip(test, positive) if p]
    x_absorb, y_absorb = read(absorb_words, words)
    return LetterData(site, len(words), len(vocab), x_train, y_train, x_test, y_test, W, b, f1,
                      x_absorb, y_absorb)


def first_letter_absorption(sae: SAE, data: LetterData,
                            config: AbsorptionConfig = AbsorptionConfig()) -> dict:
    """SAEBench's absorption of `sae` on the prompts of `data` (`letter_data`).

    Returns `absorption_summary`'s dict plus "main_latents" (per letter, the ids),
    "mean_main_latents", "words" (sampled / in the vocabulary) and "k_sparse_f1" (26, max_k).
    """
    f_train = encode_rows(sae, data.x_train)
    f_test = encode_rows(sae, data.x_test)
    # the latent-ranking probe: L1-penalised, SAEBench's settings (lr 0.01, 50 epochs, batch 4096)
    ranking, _ = train_probes(f_train, np.eye(26, dtype=np.float32)[data.y_train],
                              l1=config.l1_decay, weight_decay=1e-6, batch_size=4096,
                              seed=config.seed)
    mains, k_f1 = main_latents(f_train, data.y_train, f_test, data.y_test, ranking,
                               max_k=config.max_k, f1_jump=config.f1_jump)
    unit = data.probe_W / np.linalg.norm(data.probe_W, axis=1, keepdims=True)
    W_dec = np.asarray(sae.W_dec, np.float32)
    cos = unit @ (W_dec / np.maximum(np.linalg.norm(W_dec, axis=1, keepdims=True), 1e-12)).T
    f_abs = encode_rows(sae, data.x_absorb)
    P = np.einsum("nd,nd->n", data.x_absorb, unit[data.y_absorb])
    main_mask = np.zeros((26, sae.d_sae), bool)
    for c, ids in enumerate(mains):
        main_mask[c, ids] = True
    score = jax.jit(jax.vmap(lambda p, f, c, m: token_absorption(
        p, f, c, m, absorber_cos=config.absorber_cos, full_absorber_cos=config.full_absorber_cos,
        proportion=config.proportion, max_absorbers=config.max_absorbers)))
    if len(P):
        fraction, full = score(P, f_abs, cos[data.y_absorb], main_mask[data.y_absorb])
    else:
        fraction, full = np.zeros(0), np.zeros(0, bool)
    summary = absorption_summary(np.asarray(fraction), np.asarray(full), data.y_absorb,
                                 data.probe_f1, min_probe_f1=config.min_probe_f1,
                                 min_letters=config.min_letters)
    for name, ids in zip(LETTERS, mains):
        summary["per_letter"][name]["main_latents"] = [int(i) for i in ids]
    passing = [i for i in range(26) if summary["per_letter"][LETTERS[i]]["probe_f1"]
               > config.min_probe_f1]
    return summary | {"main_latents": [[int(i) for i in ids] for ids in mains],
                      "mean_main_latents": float(np.mean([len(mains[i]) for i in passing]))
                      if passing else math.nan,
                      "words": (data.words_sampled, data.words_total),
                      "k_sparse_f1": k_f1}


# ---------------------------------------------------------------------------------------------
# sparse probing on labelled texts

def pooled_activations(model, tokenizer, site: str, texts: Sequence[str], *, batch_size: int = 32,
                       max_length: int = 128, prepend_bos: bool = False,
                       progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The site's activations on every non-special token of every text.

    Returns (rows (tokens, d_model) float32, text (tokens,) the index of each row's text): a text
    whose every token is special has no rows.
    """
    import torch
    from tqdm.auto import tqdm

    from toymodels.lm.harvesting import encode
    from toymodels.lm.hooks import capture
    from toymodels.lm.splice import model_device

    device = model_device(model)
    rows, owner = [], []
    for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="texts",
                      unit="batch"):
        enc = encode(tokenizer, list(texts[start:start + batch_size]), max_length=max_length,
                     prepend_bos=prepend_bos)
        keep = enc.attention_mask.bool() & ~enc.special
        acts = capture(model, [site], enc.input_ids.to(device), enc.attention_mask.to(device))[site]
        rows.append(acts[keep.to(acts.device)].float().cpu().numpy())
        owner.append(start + torch.nonzero(keep)[:, 0].numpy())
    return np.concatenate(rows), np.concatenate(owner)


def mean_pool(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per text, the mean of its rows: (rows, d), (rows,) -> (n, d); a text with none gets 0."""
    total = np.zeros((n, values.shape[1]), np.float64)
    np.add.at(total, owner, values)
    counts = np.bincount(owner, minlength=n)
    return (total / np.maximum(counts, 1)[:, None]).astype(np.float32)


def balanced_task(labels: np.ndarray, cls, rng: np.random.Generator) -> np.ndarray:
    """SAEBench's one-vs-rest task: every row of `cls` and as many others, drawn evenly over
    the other classes (ceil(n_pos / n_other) each, then trimmed at random). Returns row ids."""
    pos = np.flatnonzero(labels == cls)
    others = [c for c in np.unique(labels) if c != cls]
    each = math.ceil(len(pos) / max(len(others), 1))
    neg = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:each] for c in others])
    neg = rng.permutation(neg)[:len(pos)]
    return rng.permutation(np.concatenate([pos, neg]))


def top_k_mean_diff(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The k columns of largest |mean over y − mean over ¬y| (stable order): (n, d) -> (k,)."""
    diff = np.abs(x[y].mean(0) - x[~y].mean(0))
    return np.argsort(-diff, kind="stable")[:k]


def topic_probing(features: dict[str, np.ndarray], labels: np.ndarray, *, ks=(1, 2, 5),
                  train_fraction: float = 0.8, seed: int = 0) -> dict:
    """k-sparse and dense probing accuracy of pooled features on labelled texts.

    The texts split once (seeded) into train and test; per class a balanced one-vs-rest task in
    each split (`balanced_task`); for each feature set ("sae", "raw", …: (n_texts, d) arrays) and
    each k, the top-k columns by mean difference on the train split, an L2 logistic regression
    (C = 1, max_iter 1000) on them, test accuracy; and the same on every column ("dense").

    Returns {f"{name}_top_{k}": mean test accuracy over classes, f"{name}_dense": …,
    "per_class": {class: {the same keys}}}.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    order = rng.permutation(len(labels))
    cut = int(len(labels) * train_fraction)
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    per_class = {}
    for cls in np.unique(labels):
        tr = train[balanced_task(labels[train], cls, rng)]
        te = test[balanced_task(labels[test], cls, rng)]
        y_tr, y_te = labels[tr] == cls, labels[te] == cls
        scores = {}
        for name, x in features.items():
            for k in (*ks, None):
                cols = top_k_mean_diff(x[tr], y_tr, k) if k else slice(None)
                probe = LogisticRegression(C=1.0, max_iter=1000).fit(x[tr][:, cols], y_tr)
                scores[f"{name}_top_{k}" if k else f"{name}_dense"] = float(
                    np.mean(probe.predict(x[te][:, cols]) == y_te))
        per_class[str(cls)] = scores
    keys = next(iter(per_class.values())).keys()
    return {k: float(np.mean([s[k] for s in per_class.values()])) for k in keys} | {
        "per_class": per_class}


def sparse_probing(sae: SAE, rows: np.ndarray, owner: np.ndarray, labels: Sequence,
                   *, ks=(1, 2, 5), seed: int = 0, chunk: int = 4096) -> dict:
    """`topic_probing` of the SAE's mean-pooled latents beside the raw site's (same texts).

    Args:
      rows, owner: `pooled_activations`' output.  labels: one label per text.
    Returns: `topic_probing`'s dict with keys sae_top_{k}, sae_dense, raw_top_{k}, raw_dense.
    """
    n = len(labels)
    total = np.zeros((n, sae.d_sae), np.float64)
    for start in range(0, len(rows), chunk):  # chunks: every token's latents at once is GBs
        np.add.at(total, owner[start:start + chunk], encode_rows(sae, rows[start:start + chunk]))
    counts = np.bincount(owner, minlength=n)
    latents = (total / np.maximum(counts, 1)[:, None]).astype(np.float32)
    return topic_probing({"sae": latents, "raw": mean_pool(rows, owner, n)},
                         np.asarray(labels), ks=ks, seed=seed)


def site_of(sae: SAE, site: str | None = None) -> str:
    """The site an SAE reads (not a transcoder's pair: both metrics read one site)."""
    return sae_site(sae, site)[0]
