"""Sweeps described in TOML files, as `experiments/*.toml` holds them.

    [model]                       # ToyModelConfig fields
    n_features = 20
    d_hidden = 5
    importance_decay = 0.7
    [train]                       # TrainConfig fields
    steps = 10_000
    [grid]                        # swept field -> values
    feature_probability = {geomspace = [1.0, 0.001, 7]}
    seed = [0, 1, 2]

A grid value is a list, or a table with one of `geomspace = [start, stop, num]`,
`linspace = [start, stop, num]`, `logspace = [start_exponent, stop_exponent, num]` (base 10),
`range = [start, stop]` (integers, stop excluded).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toymodels.config import ToyModelConfig, TrainConfig

_SPACES = {
    "geomspace": lambda a, b, n: np.geomspace(a, b, int(n)),
    "linspace": lambda a, b, n: np.linspace(a, b, int(n)),
    "logspace": lambda a, b, n: np.logspace(a, b, int(n)),
    "range": lambda a, b: np.arange(int(a), int(b)),
}


@dataclass(frozen=True)
class Experiment:
    """One sweep: its configs and grid, and a name for its results folder and figures."""

    name: str
    model: ToyModelConfig
    train: TrainConfig = TrainConfig()
    grid: dict[str, list] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, path: str | Path) -> "Experiment":
        path = Path(path)
        with path.open("rb") as f:
            spec = tomllib.load(f)
        unknown = set(spec) - {"name", "model", "train", "grid"}
        if unknown:
            raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; "
                             "allowed: name, [model], [train], [grid]")
        model = _build(ToyModelConfig, spec.get("model", {}), path, "model")
        train = _build(TrainConfig, spec.get("train", {}), path, "train")
        grid = {k: _values(k, v, path) for k, v in spec.get("grid", {}).items()}
        return cls(spec.get("name", path.stem), model, train, grid)


def _build(cls, table: dict[str, Any], path: Path, where: str):
    names = {f for f in cls.__dataclass_fields__}
    unknown = set(table) - names
    if unknown:
        raise ValueError(f"{path}: [{where}] has unknown field(s) {sorted(unknown)}; "
                         f"allowed: {', '.join(sorted(names))}")
    table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**table)


def _values(name: str, spec: Any, path: Path) -> list:
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, args), = spec.items()
        if kind in _SPACES:
            try:
                return _SPACES[kind](*args).tolist()
            except TypeError:
                pass
    raise ValueError(f"{path}: grid.{name} must be a list or one of "
                     f"{{{', '.join(f'{k} = [...]' for k in _SPACES)}}}; got {spec!r}")
