"""What the readers of every format share: errors that name the file, checked JSON and
safetensors reading, and the check of a state dict against the shapes a config promises.

A malformed folder raises `ValueError("<path>: <what is wrong>")`, so that the message alone says
which file to look at.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from safetensors import SafetensorError, safe_open

from toymodels.sae.config import stored_config
from toymodels.sae.model import SAE


def fail(path: Path | str, message: str) -> NoReturn:
    raise ValueError(f"{path}: {message}")


def folder_of(path: Path | str, what: str) -> Path:
    """`path` as an existing folder, or a ValueError saying it is not one."""
    folder = Path(path)
    if not folder.is_dir():
        fail(folder, f"no such folder (expected {what})")
    return folder


def need(folder: Path, name: str, what: str) -> Path:
    """`folder / name`, which must exist."""
    path = folder / name
    if not path.is_file():
        fail(path, f"missing file: {what} needs {name}")
    return path


def only_one(folder: Path, found: list[Path], missing: str, what: str, choose: str) -> Path:
    """The one folder of `found` (a run folder's trainers or hookpoints), or an error saying
    what is missing or how to `choose` among them."""
    if len(found) == 1:
        return found[0]
    if not found:
        fail(folder, f"missing file: {missing}")
    fail(folder, f"holds {len(found)} {what} ({', '.join(p.name for p in found)}); choose one "
         f"with {choose}")


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(path, f"not a readable JSON file ({e})")
    if not isinstance(value, dict):
        fail(path, f"expected a JSON object, found {type(value).__name__}")
    return value


def field(path: Path, cfg: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
          default: Any = ..., *, where: str = "") -> Any:
    """cfg[name], checked to be of `kind` (bools are not ints); missing → default or an error."""
    if name not in cfg:
        if default is ...:
            fail(path, f"missing field '{where}{name}'")
        return default
    value = cfg[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        fail(path, f"field '{where}{name}' must be {names}; got {value!r}")
    return value


def positive_int(path: Path, cfg: Mapping[str, Any], name: str, *, where: str = "") -> int:
    value = cfg.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        got = cfg.get(name, "(missing)")
        fail(path, f"field '{where}{name}' must be an integer ≥ 1; got {got!r}")
    return value


# --- safetensors ---------------------------------------------------------------------------------


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a NumPy array (bfloat16, which NumPy lacks, widened
    exactly to float32)."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
            dtypes = {name: f.get_slice(name).get_dtype() for name in names}
            out = {name: f.get_tensor(name) for name in names if dtypes[name] != "BF16"}
    except (OSError, SafetensorError) as e:
        fail(path, f"not a readable safetensors file ({e})")
    if len(out) < len(names):
        out |= _read_bfloat16(path, [n for n in names if dtypes[n] == "BF16"])
    return out


def _read_bfloat16(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    # A safetensors file is an 8-byte little-endian header length, a JSON header giving each
    # tensor's dtype, shape and byte range, then the data. bfloat16 is the top half of a float32.
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name in names:
        start, stop = header[name]["data_offsets"]
        bits = np.frombuffer(raw, "<u2", (stop - start) // 2, 8 + n + start).astype(np.uint32)
        out[name] = (bits << 16).view(np.float32).reshape(header[name]["shape"])
    return out


# --- state dicts ---------------------------------------------------------------------------------


def check_tensors(path: Path, tensors: Mapping[str, Any], shapes: dict[str, tuple[str, ...]],
                  sizes: dict[str, int], *, config: str, what: str) -> None:
    """The tensors must be exactly `shapes`' keys, each of the shape its dims name in `sizes`.

    `config` names the file the sizes come from, for the message when a shape disagrees with it;
    `what` names the format or class that expects these tensors.
    """
    expected = ", ".join(shapes)
    for name in shapes:
        if name not in tensors:
            fail(path, f"missing tensor {name!r} ({what} has exactly {expected})")
    for name in tensors:
        if name not in shapes:
            fail(path, f"unexpected tensor {name!r} ({what} has exactly {expected})")
    for name, dims in shapes.items():
        got = tuple(np.shape(tensors[name]))
        want = tuple(sizes[d] for d in dims)
        if got != want:
            said = ", ".join(f"{d}={sizes[d]}" for d in dict.fromkeys(dims)) or "a scalar"
            fail(path, f"tensor {name!r} has shape {got}, but {config} says {said}: expected "
                 f"{want} ({', '.join(dims) or 'scalar'})")


def build(path: Path, config: dict[str, Any], params: dict[str, Any],
          metadata: dict[str, Any]) -> SAE:
    """tm.SAE(stored_config(config), params, metadata); an invalid value names `path`."""
    try:
        return SAE(stored_config(config), params, metadata)
    except ValueError as e:
        fail(path, str(e))
