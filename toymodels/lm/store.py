"""An on-disk store of a language model's activations: safetensors shards and a JSON manifest.

Layout of a store folder written by one process:

    manifest.json              what was harvested, and the list of finished shards (below)
    shard-00000.safetensors    one tensor per site, (tokens, d) float32 or float16, named by the
    shard-00001.safetensors    site ("blocks.3.hook_resid_post"), and per token `token_ids` (int32),
    ...                        `doc` (int64, the text's index in the text stream) and `position`
                               (int32, the token's index in the model's input sequence)

A harvest split over processes or hosts (`shard=(i, n)`) writes one such folder per process,
`part-{i:03d}-of-{n:03d}/`, under the store folder; the reader joins them, and refuses a store with
a part missing or unfinished. Rows are ordered part by part, and within a part by text, then
position; a text's tokens are always contiguous rows of one shard.

Safetensors (https://github.com/huggingface/safetensors) is 8 bytes of header length, a JSON header
of dtypes, shapes and byte offsets, then the raw little-endian arrays, so shards are read here as
`numpy.memmap`s at those offsets: nothing is loaded until it is used, and any safetensors reader
(PyTorch, JAX, NumPy) opens them as they are.

Crash safety: a shard is written to a temporary file in the same folder, fsynced and renamed over
its final name; only then is the manifest (written the same way) updated to list it, with its size,
token count and SHA-256. A process killed at any moment leaves whole files, and a shard the manifest
does not list is never read: a resumed harvest overwrites it. Opening a store checks every listed
shard's size (and, with `verify=True`, its SHA-256) and raises a ValueError naming the file that does
not match.

The manifest (version 1):

    {"format": "toymodels.lm.activations", "version": 1,
     "model": "sentence-transformers/all-MiniLM-L6-v2", "tokenizer": "...", "architecture": "bert",
     "sites": ["blocks.3.hook_resid_post"], "d": {"blocks.3.hook_resid_post": 384},
     "dtype": "float32",
     "settings": {"batch_size": 32, "max_length": 128, "drop_special_tokens": false,
                  "prepend_bos": false},
     "part": [0, 1],
     "texts": {"source": "corpus.txt", "count": 4000, "sha256": "…"},
     "tokens": 61234, "docs_at_max_length": 0,
     "shards": [{"file": "shard-00000.safetensors", "tokens": 20480, "bytes": 31539360,
                 "sha256": "…", "docs": [0, 1344]}, …],
     "complete": true}

`texts.sha256` hashes the texts the listed shards cover (each text's UTF-8 bytes, preceded by their
length as 8 little-endian bytes); `texts.count` is how many; a resumed harvest checks that the
texts it skips hash to it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toymodels.store import atomic_write

FORMAT, VERSION = "toymodels.lm.activations", 1
MANIFEST = "manifest.json"
INDEX_ARRAYS = {"token_ids": np.int32, "doc": np.int64, "position": np.int32}
DTYPES = ("float32", "float16")
#: fields fixed when a harvest starts; a resumed harvest must agree on all of them
HEADER_FIELDS = ("format", "version", "model", "tokenizer", "architecture", "sites", "d", "dtype",
                 "settings", "part")
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def part_folder(i: int, n: int) -> str:
    """The sub-folder process i of n writes: part-000-of-004."""
    return f"part-{i:03d}-of-{n:03d}"


def text_hash() -> "hashlib._Hash":
    """The running hash of a text stream; feed it with `update_text_hash`."""
    return hashlib.sha256()


def update_text_hash(h, text: str) -> None:
    data = text.encode("utf-8")
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


# ----------------------------------------------------------------------------------------- writing

class PartWriter:
    """Writes the shards and manifest of one part; re-opening a folder resumes it.

    `header` holds the `HEADER_FIELDS`. If `folder` already has a manifest, the header must match
    it (else ValueError naming the fields that differ) and the writer continues after its last
    listed shard: `texts_done` and `texts_sha256` say which texts are already covered.
    """

    def __init__(self, folder: str | os.PathLike, header: dict[str, Any], source: str):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".*.tmp"):    # temp files of a killed writer
            stale.unlink(missing_ok=True)
        path = self.folder / MANIFEST
        if path.exists():
            stored = _read_json(path)
            differ = [k for k in HEADER_FIELDS if stored.get(k) != header.get(k)]
            if differ:
                raise ValueError(
                    f"out={str(self.folder)!r} holds a different harvest "
                    f"({', '.join(f'{k}: {stored.get(k)!r} there, {header.get(k)!r} here' for k in differ)}); "
                    "use a new folder, or the same arguments to resume")
            self.manifest = stored
        else:
            self.manifest = {**header, "texts": {"source": source, "count": 0,
                                                  "sha256": text_hash().hexdigest()},
                             "tokens": 0, "docs_at_max_length": 0, "shards": [], "complete": False}
            self._write_manifest()

    @property
    def texts_done(self) -> int:
        return self.manifest["texts"]["count"]

    @property
    def texts_sha256(self) -> str:
        return self.manifest["texts"]["sha256"]

    @property
    def complete(self) -> bool:
        return self.manifest["complete"]

    def write_shard(self, arrays: dict[str, np.ndarray], *, texts_done: int, texts_sha256: str,
                    docs_at_max_length: int) -> None:
        """Write one shard (every site, plus the `INDEX_ARRAYS`), then list it in the manifest."""
        m = self.manifest
        names = set(m["sites"]) | set(INDEX_ARRAYS)
        if set(arrays) != names:
            raise ValueError(f"a shard needs exactly the arrays {sorted(names)}, got {sorted(arrays)}")
        rows = {len(a) for a in arrays.values()}
        if len(rows) != 1 or 0 in rows:
            raise ValueError(f"shard arrays must have the same, non-zero number of rows, got {rows}")
        from safetensors.numpy import save

        data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
        first = int(arrays["doc"][0])
        name = f"shard-{len(m['shards']):05d}.safetensors"
        atomic_write(self.folder / name, lambda f: f.write(data))
        m["shards"].append({"file": name, "tokens": rows.pop(), "bytes": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "docs": [first, int(arrays["doc"][-1]) + 1]})
        m["tokens"] += m["shards"][-1]["tokens"]
        self._advance(texts_done, texts_sha256, docs_at_max_length)

    def finish(self, *, texts_done: int, texts_sha256: str, docs_at_max_length: int) -> None:
        """Mark the part complete: every text of the stream is covered."""
        self.manifest["complete"] = True
        self._advance(texts_done, texts_sha256, docs_at_max_length)

    def _advance(self, texts_done, texts_sha256, docs_at_max_length):
        self.manifest["texts"].update(count=texts_done, sha256=texts_sha256)
        self.manifest["docs_at_max_length"] = docs_at_max_length
        self._write_manifest()

    def _write_manifest(self):
        manifest = json.dumps(self.manifest, indent=1).encode()
        atomic_write(self.folder / MANIFEST, lambda f: f.write(manifest))


# ----------------------------------------------------------------------------------------- reading

def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the store manifest {path}: {err}") from None


@dataclass(frozen=True)
class _Shard:
    """One shard file: its rows, and each tensor's (dtype, shape, byte offset) for memory-mapping."""

    path: Path
    rows: int
    tensors: dict[str, tuple[np.dtype, tuple[int, ...], int]]

    @classmethod
    def open(cls, folder: Path, entry: dict, names: Sequence[str], verify: bool) -> _Shard:
        path = folder / entry["file"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ValueError(f"shard {path} is missing (the manifest lists it)") from None
        if size != entry["bytes"]:
            raise ValueError(f"shard {path} is {size} bytes, the manifest says {entry['bytes']}: "
                             "it is truncated or was replaced; re-harvest it")
        if verify and _sha256_file(path) != entry["sha256"]:
            raise ValueError(f"shard {path} is corrupt: its SHA-256 differs from the manifest's")
        try:
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                header = json.loads(f.read(n))
            tensors = {}
            for name in names:
                t = header[name]
                tensors[name] = (np.dtype(_SAFETENSORS_DTYPES[t["dtype"]]), tuple(t["shape"]),
                                 8 + n + t["data_offsets"][0])
        except (ValueError, KeyError, UnicodeDecodeError) as err:
            raise ValueError(f"shard {path} is corrupt: bad safetensors header ({err!r})") from None
        if any(shape[0] != entry["tokens"] for _, shape, _ in tensors.values()):
            raise ValueError(f"shard {path} is corrupt: its arrays do not have "
                             f"{entry['tokens']} rows as the manifest says")
        return cls(path, entry["tokens"], tensors)

    def array(self, name: str) -> np.ndarray:
        """The tensor `name` as a read-only memory map."""
        dtype, shape, offset = self.tensors[name]
        return np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def _open_parts(path: Path, partial: bool) -> list[tuple[Path, dict]]:
    """[(folder, manifest)] of the store at `path`: itself (a store written by one process, or one
    part of a split one), or all its part-i-of-n sub-folders, which must all be there."""
    if (path / MANIFEST).exists():       # one part, or a store written by one process
        found = [(path, _read_json(path / MANIFEST))]
        _check_format(found)
        if not found[0][1]["complete"] and not partial:
            raise ValueError(f"the harvest in {path} is unfinished: re-run it to resume, or pass "
                             "partial=True to read its finished shards")
        return found
    found = [(p, _read_json(p / MANIFEST))
             for p in sorted(path.glob("part-*-of-*")) if (p / MANIFEST).exists()]
    if not found:
        raise ValueError(f"{path} holds no activation store (no {MANIFEST}, no part-*-of-*/)")
    _check_format(found)
    first = found[0][1]
    n = first["part"][1]
    for folder, m in found:
        differ = [k for k in HEADER_FIELDS if k != "part" and m[k] != first[k]]
        if differ or m["part"][1] != n:
            raise ValueError(f"{folder} is a part of a different harvest than {found[0][0]} "
                             f"({', '.join(differ) or 'part counts'} differ)")
    have = sorted(m["part"][0] for _, m in found)
    if have != list(range(n)) and not partial:
        missing = sorted(set(range(n)) - set(have))
        raise ValueError(f"store {path} lacks part(s) {missing} of {n}: "
                         "run the harvest with those --shard values (or pass partial=True)")
    unfinished = [str(f) for f, m in found if not m["complete"]]
    if unfinished and not partial:
        raise ValueError(f"the harvest in {', '.join(unfinished)} is unfinished: re-run it to "
                         "resume, or pass partial=True to read its finished shards")
    complete = [m for _, m in found if m["complete"]]
    if len({(m["texts"]["count"], m["texts"]["sha256"]) for m in complete}) > 1:
        raise ValueError(f"the parts of {path} were harvested from different texts")
    return found


def _check_format(found):
    for folder, m in found:
        if m.get("format") != FORMAT or m.get("version") != VERSION:
            raise ValueError(f"{folder / MANIFEST} is not a version-{VERSION} {FORMAT} manifest")


class ActivationStore:
    """A harvested store, opened for reading: shuffled batches for training, and per-token indices.

    Args:
      path: a store folder (its `manifest.json`, or the `part-*-of-*/` folders of a split harvest).
      site: the input: one site, or a list of sites concatenated along the feature axis (in the
        order given); None: the store's only site (a store of several must be told which).
      target_site: a second site served beside the input, e.g. `hook_mlp_out` for a transcoder
        reading `mlp.hook_in`; `batches` then yields (x_in, x_out) pairs of the same tokens.
      verify: check every shard's SHA-256 against the manifest on opening (about 2 GB/s); sizes
        and safetensors headers are checked either way.
      partial: read an unfinished harvest's finished shards instead of refusing it.

    `len(store)` is the number of tokens; `store.d_in` the input width (the sum over `site`);
    `store.d_out` the target width. `token_ids`, `doc_index` and `position` give each row's token,
    text index and position in the model's input, for finding contexts.
    """

    def __init__(self, path: str | os.PathLike, site: str | Sequence[str] | None = None,
                 target_site: str | None = None, *, verify: bool = True, partial: bool = False):
        self.path = Path(path)
        parts = _open_parts(self.path, partial)
        self.manifest = parts[0][1]
        self.parts = [m for _, m in parts]
        self.sites: tuple[str, ...] = tuple(self.manifest["sites"])
        names = [*self.sites, *INDEX_ARRAYS]
        self._shards = [_Shard.open(folder, entry, names, verify)
                        for folder, m in parts for entry in m["shards"]]
        self._offsets = np.cumsum([0] + [s.rows for s in self._shards])
        self._part_rows = np.cumsum([0] + [m["tokens"] for m in self.parts])
        self._cache: dict[str, np.ndarray] = {}
        self._select(site, target_site)

    # ---- selection

    def _select(self, site, target_site) -> None:
        if site is None:
            inputs = self.sites if len(self.sites) == 1 else None
        else:
            inputs = (site,) if isinstance(site, str) else tuple(site)
            if not inputs:
                raise ValueError("site: give a site name or a non-empty list of them")
        for name in [*(inputs or ()), *([target_site] if target_site is not None else [])]:
            if name not in self.sites:
                raise ValueError(f"site {name!r} is not in the store {self.path}; "
                                 f"it holds {', '.join(self.sites)}")
        self.input_sites: tuple[str, ...] | None = inputs
        self.target_site = target_site

    def select(self, site: str | Sequence[str] | None = None,
               target_site: str | None = None) -> ActivationStore:
        """The same store with another input (and target) selected; shards are not re-verified."""
        view = copy.copy(self)
        view._select(site, target_site)
        return view

    def _inputs(self) -> tuple[str, ...]:
        if self.input_sites is None:
            raise ValueError(f"the store {self.path} holds several sites ({', '.join(self.sites)}); "
                             "choose one: ActivationStore(path, site=...) or store.select(site=...)")
        return self.input_sites

    # ---- sizes

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def d_in(self) -> int:
        return sum(self.manifest["d"][s] for s in self._inputs())

    @property
    def d_out(self) -> int | None:
        return None if self.target_site is None else self.manifest["d"][self.target_site]

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def n_shards(self) -> int:
        return len(self._shards)

    def describe(self) -> dict[str, Any]:
        """The store's identity as JSON-able data, which a sweep's `sweep.json` records (through
        `toymodels.sources.HostData`) so that resuming it on another store is refused.

        {"format", "model", "tokenizer", "site": [input sites], "target_site", "d_in", "d_out",
        "dtype", "settings" (the harvest's tokenisation: max_length, prepend_bos …), "tokens",
        "manifest_sha256"}; `manifest_sha256` hashes, part by part, the
        harvest's header fields (`HEADER_FIELDS`), the texts' count and SHA-256 and every shard's
        SHA-256, so it names the data itself: the same store copied elsewhere keeps it, a
        re-harvest with other settings or texts does not. A store of several sites must have its
        input selected first.
        """
        digest = hashlib.sha256()
        for m in self.parts:
            digest.update(json.dumps({
                **{k: m[k] for k in HEADER_FIELDS},
                "texts": [m["texts"]["count"], m["texts"]["sha256"]],
                "shards": [s["sha256"] for s in m["shards"]]}, sort_keys=True).encode())
        return {"format": FORMAT, "model": self.model, "tokenizer": self.manifest["tokenizer"],
                "site": list(self._inputs()), "target_site": self.target_site, "d_in": self.d_in,
                "d_out": self.d_out, "dtype": self.manifest["dtype"],
                "settings": self.manifest["settings"], "tokens": len(self),
                "manifest_sha256": digest.hexdigest()}

    def __repr__(self) -> str:
        sel = "" if self.input_sites is None else f", site={list(self.input_sites)}"
        tgt = "" if self.target_site is None else f", target_site={self.target_site!r}"
        return (f"ActivationStore({str(self.path)!r}{sel}{tgt}: {len(self)} tokens of "
                f"{self.model}, {self.n_shards} shards, sites {list(self.sites)})")

    # ---- reading rows

    def _rows(self, shard: _Shard, start: int, stop: int):
        """float32 (x_in,) or (x_in, x_out) for rows [start, stop) of one shard."""
        def read(names):
            parts = [shard.array(s)[start:stop] for s in names]
            out = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
            return np.asarray(out, dtype=np.float32)
        x = read(self._inputs())
        return (x,) if self.target_site is None else (x, read([self.target_site]))

    def chunks(self, rows: int = 1 << 14) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """One pass over the store in row order, `rows` at a time (the last chunk may be shorter)
        as float32 (rows, d_in) arrays, or (x_in, x_out) pairs with a target site."""
        if rows < 1:
            raise ValueError(f"rows must be ≥ 1, got {rows}")
        pending: list[tuple] = []
        have = 0
        for shard in self._shards:
            for start in range(0, shard.rows, rows):
                pending.append(self._rows(shard, start, min(start + rows, shard.rows)))
                have += len(pending[-1][0])
                while have >= rows:
                    out, pending, have = _take(pending, rows)
                    yield _unwrap(out)
        if have:
            yield _unwrap(tuple(np.concatenate(c) for c in zip(*pending)))

    def read(self, rows: np.ndarray | Sequence[int]) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """The rows at these (global) indices, in the order given, as float32."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise ValueError(f"rows must lie in [0, {len(self)}), got {rows.min()} … {rows.max()}")
        which = np.searchsorted(self._offsets, rows, side="right") - 1
        names = [*self._inputs(), *([self.target_site] if self.target_site else [])]
        widths = [self.manifest["d"][s] for s in names]
        out = np.empty((len(rows), sum(widths)), np.float32)
        for s in np.unique(which):
            sel = np.flatnonzero(which == s)
            local = rows[sel] - self._offsets[s]
            out[sel] = np.concatenate([self._shards[s].array(n)[local] for n in names], axis=1)
        x = out[:, :self.d_in]
        return x if self.target_site is None else (x, out[:, self.d_in:])

    # ---- the training stream

    def batches(self, batch_size: int, *, seed: int = 0, shuffle_buffer: int = 1 << 16
                ) -> Iterator[np.ndarray | tuple[np.ndarray, np.ndarray]]:
        """An endless stream of shuffled float32 batches: (batch_size, d_in) arrays, or
        (x_in, x_out) pairs of shapes (batch_size, d_in), (batch_size, d_out) with a target site.

        The stream is a sequence of epochs, each a permutation of every token: cut into batches
        it covers every token once per epoch (a batch may straddle two epochs). Each epoch reads
        the shards in a new random order, `shuffle_buffer` rows at most held in memory, and
        mixes them through a buffer of that many rows: each incoming block of rows takes the
        places of as many rows drawn at random from the buffer, which are emitted; at the end of
        the epoch the rest of the buffer is emitted in random order. A store no larger than the
        buffer is fully permuted each epoch. The stream depends only on the store's shards,
        `batch_size`, `shuffle_buffer` and `seed`.

        Memory: the buffer (shuffle_buffer × (d_in + d_out) float32) plus one block of an eighth
        of it; shards are memory-mapped, so the OS page cache holds what was read recently.
        """
        if not isinstance(batch_size, int | np.integer) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
        if not isinstance(shuffle_buffer, int | np.integer) or shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be an integer ≥ 1, got {shuffle_buffer!r}")
        self._inputs()
        if len(self) == 0:
            raise ValueError(f"the store {self.path} has no tokens")
        rng = np.random.default_rng(seed)
        return self._batches(int(batch_size), int(shuffle_buffer), rng)

    def _batches(self, batch_size: int, capacity: int, rng: np.random.Generator):
        pending: list[tuple] = []
        have = 0
        while True:
            for block in self._epoch(capacity, rng):
                pending.append(block)
                have += len(block[0])
                while have >= batch_size:
                    out, pending, have = _take(pending, batch_size)
                    yield _unwrap(out)

    def _epoch(self, capacity: int, rng: np.random.Generator) -> Iterator[tuple]:
        """The rows of one epoch, in shuffled blocks."""
        block = max(1, capacity // 8)
        buffer: tuple | None = None
        filled = 0
        for s in rng.permutation(len(self._shards)):
            shard = self._shards[s]
            for start in range(0, shard.rows, block):
                rows = self._rows(shard, start, min(start + block, shard.rows))
                m = len(rows[0])
                if buffer is None:
                    buffer = tuple(np.empty((capacity, r.shape[1]), np.float32) for r in rows)
                free = min(capacity - filled, m)
                for b, r in zip(buffer, rows):
                    b[filled:filled + free] = r[:free]
                filled += free
                if free == m:
                    continue
                # Buffer full: the remaining incoming rows replace as many random buffer rows.
                slots = rng.permutation(capacity)[:m - free]
                out = tuple(b[slots] for b in buffer)
                for b, r in zip(buffer, rows):
                    b[slots] = r[free:]
                yield out
        if buffer is not None:
            order = rng.permutation(filled)
            yield tuple(b[:filled][order] for b in buffer)

    # ---- per-token indices

    def _index(self, name: str) -> np.ndarray:
        if name not in self._cache:
            arrays = [np.asarray(s.array(name)) for s in self._shards]
            self._cache[name] = (np.concatenate(arrays) if arrays
                                 else np.empty(0, INDEX_ARRAYS[name]))
        return self._cache[name]

    @property
    def token_ids(self) -> np.ndarray:
        """(tokens,) int32: each row's token id (read into memory on first use, then kept)."""
        return self._index("token_ids")

    @property
    def doc_index(self) -> np.ndarray:
        """(tokens,) int64: each row's text: its index in the harvested text stream."""
        return self._index("doc")

    @property
    def position(self) -> np.ndarray:
        """(tokens,) int32: each row's position in the model's input sequence (0 = first token,
        e.g. [CLS]; dropped special tokens leave gaps)."""
        return self._index("position")

    def document(self, row: int) -> slice:
        """The rows of the text that row `row` belongs to (contiguous, in position order)."""
        if not 0 <= row < len(self):
            raise ValueError(f"row must lie in [0, {len(self)}), got {row}")
        part = int(np.searchsorted(self._part_rows, row, side="right") - 1)
        a, b = int(self._part_rows[part]), int(self._part_rows[part + 1])
        docs = self.doc_index[a:b]
        doc = self.doc_index[row]
        return slice(a + int(np.searchsorted(docs, doc, "left")),
                     a + int(np.searchsorted(docs, doc, "right")))

    def context(self, row: int, before: int = 16, after: int = 4) -> tuple[np.ndarray, int]:
        """(token ids of up to `before` tokens before row `row` in its text, the row's own token and
        up to `after` after it; the index of row `row`'s token among them)."""
        doc = self.document(row)
        start, stop = max(doc.start, row - before), min(doc.stop, row + after + 1)
        return self.token_ids[start:stop], row - start

    def tokenizer(self):
        """The harvest's tokenizer, loaded with `transformers.AutoTokenizer` (needs the `lm` extra)."""
        from transformers import AutoTokenizer

        from toymodels.lm.models import resolve_model
        return AutoTokenizer.from_pretrained(resolve_model(self.manifest["tokenizer"]))


def _take(pending: list[tuple], n: int) -> tuple[tuple, list[tuple], int]:
    """The first n rows of a list of blocks, and the blocks left."""
    joined = tuple(np.concatenate(c) for c in zip(*pending)) if len(pending) > 1 else pending[0]
    out = tuple(c[:n] for c in joined)
    rest = tuple(c[n:] for c in joined)
    left = len(rest[0])
    return out, ([rest] if left else []), left


def _unwrap(t: tuple):
    return t[0] if len(t) == 1 else t
