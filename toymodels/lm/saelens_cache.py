"""SAELens's activation cache, both ways: a toymodels store exported as the Hugging Face `datasets`
folder SAELens's `CacheActivationsRunner` writes, and such a folder read as a toymodels data source.

The folder (what `Dataset.save_to_disk` writes, and SAELens's `_consolidate_shards` assembles):
`data-NNNNN-of-MMMMM.arrow` files, `dataset_info.json` (the features) and `state.json` (the file
list). Each row is one context of `context_size` consecutive tokens:

    {hook_name: Array2D((context_size, d_in), dtype), "token_ids": Sequence(int32, context_size)}

SAELens trains on it with `use_cached_activations=True, cached_activations_path=folder` (its
`ActivationsStore.load_cached_activation_dataset` checks the column and its shape against
`hook_name`, `context_size` and `d_in`).

**Exporting** (`export`) reads the store in row order, a block at a time, and writes each block of
contexts as it goes (an `ArrowWriter` per file): nothing holds more than `rows_per_file` contexts.
A toymodels store holds each text's own tokens, of any length; SAELens's contexts are fixed-length,
so the store's rows are packed in order into contexts of `context_size` (texts follow one another
across context boundaries, as SAELens packs its tokenised dataset), and the last
len(store) mod context_size rows are left out.

**Reading** (`SAELensCache`) memory-maps the arrow files (`datasets.load_from_disk`) and gives what
`tm.sweep(..., data=…)` reads from an `ActivationStore`: `batches(batch_size, seed=…)`, an endless
stream of shuffled float32 (batch, d_in) batches, every token once per epoch, through a bounded
buffer; `chunks`, `d_in`, `len`, `token_ids`, and `describe()` for the sweep's record.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from toymodels.lm.store import ActivationStore

__all__ = ["FORMAT", "SAELensCache", "export"]

FORMAT = "sae_lens.cached_activations"
_DTYPES = ("float32", "float16", "bfloat16")


def _features(hook_name: str, context_size: int, d_in: int, dtype: str):
    from datasets import Array2D, Features, Sequence, Value

    return Features({hook_name: Array2D(shape=(context_size, d_in), dtype=dtype),
                     "token_ids": Sequence(Value(dtype="int32"), length=context_size)})


def export(store: ActivationStore, out: str | os.PathLike, *, context_size: int,
           hook_name: str | None = None, dtype: str = "float32",
           rows_per_file: int = 1024) -> Path:
    """Write `store`'s selected site as SAELens's cached-activation dataset in `out`; return it.

    Args:
      store: an ActivationStore with one input site selected (its target site is not exported).
      out: the folder (created; it must not hold files already).
      context_size: tokens per row (SAELens's `context_size`); the last len(store) mod
        context_size tokens are left out.
      hook_name: the column's name; default the store's site (SAELens's `hook_name`).
      dtype: the activations' dtype in the folder: float32, float16 or bfloat16.
      rows_per_file: contexts per arrow file (the most held in memory at once).
    """
    from datasets import DatasetInfo
    from datasets.arrow_writer import ArrowWriter

    if store.input_sites is None or len(store.input_sites) != 1:
        raise ValueError("store: select one input site (SAELens's cache holds one hook): "
                         "ActivationStore(path, site=...)")
    (site,) = store.input_sites
    if not isinstance(context_size, int) or context_size < 1:
        raise ValueError(f"context_size must be an integer ≥ 1, got {context_size!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    if not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise ValueError(f"rows_per_file must be an integer ≥ 1, got {rows_per_file!r}")
    contexts = len(store) // context_size
    if contexts == 0:
        raise ValueError(f"the store has {len(store)} tokens, fewer than one context of "
                         f"{context_size}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"out: {out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    hook_name = hook_name or site
    features = _features(hook_name, context_size, store.d_in, dtype)
    view = store.select(site)
    n_files = -(-contexts // rows_per_file)
    files = []
    token_ids = store.token_ids
    for k in range(n_files):
        first, last = k * rows_per_file, min((k + 1) * rows_per_file, contexts)
        name = f"data-{k:05d}-of-{n_files:05d}.arrow"
        rows = np.arange(first * context_size, last * context_size)
        acts = view.read(rows).reshape(last - first, context_size, store.d_in)
        ids = token_ids[rows].astype(np.int32).reshape(last - first, context_size)
        with ArrowWriter(features=features, path=str(out / name)) as writer:
            writer.write_batch({hook_name: list(acts), "token_ids": list(ids)})
            writer.finalize()
        files.append({"filename": name})
    DatasetInfo(features=features, description=f"toymodels export of {store.path} "
                f"({site})").write_to_directory(str(out))
    (out / "state.json").write_text(json.dumps({
        "_data_files": files, "_fingerprint": _fingerprint(store, hook_name, context_size, dtype),
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": None}, indent=2))
    return out


def _fingerprint(store: ActivationStore, *parts) -> str:
    return hashlib.sha256(json.dumps([store.describe()["manifest_sha256"], *parts]).encode()
                          ).hexdigest()[:16]


class SAELensCache:
    """A SAELens cached-activation folder as toymodels training data (see the module docstring).

    Args:
      path: the folder (`CacheActivationsRunner`'s `new_cached_activations_path`, or `export`'s).
      hook_name: its activation column; default the only column besides token_ids.
    """

    def __init__(self, path: str | os.PathLike, hook_name: str | None = None):
        import datasets

        self.path = Path(path)
        if not (self.path / "state.json").is_file():
            raise ValueError(f"{self.path}: not a saved datasets folder (no state.json)")
        self._ds = datasets.load_from_disk(str(self.path))
        columns = [c for c in self._ds.column_names if c != "token_ids"]
        if hook_name is None:
            if len(columns) != 1:
                raise ValueError(f"hook_name: the cache holds {columns}; choose one")
            hook_name = columns[0]
        if hook_name not in columns:
            raise ValueError(f"hook_name {hook_name!r} is not a column of {self.path}; it holds "
                             f"{columns}")
        shape = getattr(self._ds.features[hook_name], "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{self.path}: column {hook_name!r} is not (context_size, d_in)")
        self.hook_name = hook_name
        self.context_size, self.d_in = int(shape[0]), int(shape[1])
        self._np = self._ds.with_format("numpy")
        self.target_site = None

    def __len__(self) -> int:
        return len(self._ds) * self.context_size

    @property
    def d_out(self) -> None:
        return None

    def _contexts(self, start: int, stop: int) -> np.ndarray:
        """(stop − start) · context_size rows of float32 activations."""
        block = self._np[start:stop][self.hook_name]
        return np.asarray(block, np.float32).reshape(-1, self.d_in)

    @property
    def token_ids(self) -> np.ndarray | None:
        if "token_ids" not in self._ds.column_names:
            return None
        return np.asarray(self._np["token_ids"], np.int32).reshape(-1)

    def chunks(self, rows: int = 1 << 14) -> Iterator[np.ndarray]:
        """One pass in row order, whole contexts at a time (about `rows` rows each)."""
        step = max(1, rows // self.context_size)
        for start in range(0, len(self._ds), step):
            yield self._contexts(start, min(start + step, len(self._ds)))

    def batches(self, batch_size: int, *, seed: int = 0, shuffle_buffer: int = 1 << 16
                ) -> Iterator[np.ndarray]:
        """An endless stream of shuffled float32 (batch_size, d_in) batches, every token once per
        epoch: each epoch reads blocks of contexts in a random order and mixes their rows through
        a buffer of `shuffle_buffer` rows (the memory it holds), as `ActivationStore.batches`."""
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
        if not isinstance(shuffle_buffer, int | np.integer) or shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be an integer ≥ 1, got {shuffle_buffer!r}")
        return self._batches(int(batch_size), int(shuffle_buffer), np.random.default_rng(seed))

    def _epoch(self, capacity: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
        step = max(1, capacity // 8 // self.context_size)
        starts = np.arange(0, len(self._ds), step)
        buffer = np.empty((0, self.d_in), np.float32)
        for start in rng.permutation(starts):
            rows = self._contexts(start, min(start + step, len(self._ds)))
            buffer = np.concatenate([buffer, rows])
            if len(buffer) > capacity:  # emit the overflow, drawn at random from the buffer
                order = rng.permutation(len(buffer))
                yield buffer[order[:len(buffer) - capacity]]
                buffer = buffer[order[len(buffer) - capacity:]]
        yield buffer[rng.permutation(len(buffer))]

    def _batches(self, batch_size: int, capacity: int, rng: np.random.Generator):
        pending = np.empty((0, self.d_in), np.float32)
        while True:
            for block in self._epoch(capacity, rng):
                pending = np.concatenate([pending, block])
                while len(pending) >= batch_size:
                    yield pending[:batch_size]
                    pending = pending[batch_size:]

    def describe(self) -> dict[str, Any]:
        """The cache's identity for a sweep's record: the folder's fingerprint names its data."""
        state = json.loads((self.path / "state.json").read_text())
        return {"format": FORMAT, "path": str(self.path), "site": [self.hook_name],
                "target_site": None, "d_in": self.d_in, "d_out": None,
                "context_size": self.context_size, "tokens": len(self),
                "fingerprint": state.get("_fingerprint")}

    def __repr__(self) -> str:
        return (f"SAELensCache({str(self.path)!r}: {len(self)} tokens of {self.hook_name}, "
                f"{len(self._ds)} contexts of {self.context_size})")
