"""Sweeps described in TOML files, as `experiments/*.toml` holds them.

A toy-model sweep:

    [model]                       # ToyModelConfig fields
    n_features = 20
    d_hidden = 5
    importance_decay = 0.7
    [train]                       # TrainConfig fields
    steps = 10_000
    [grid]                        # swept field -> values
    feature_probability = {geomspace = [1.0, 0.001, 7]}
    seed = [0, 1, 2]

An SAE sweep has `[sae]` (SAEConfig fields) instead of `[model]`, and a `[data]` table:

    [data]                        # Sharkey et al.'s ground truth: GroundTruth fields
    kind = "ground_truth"
    d_in = 256
    n_features = 512

    [data]                        # the hidden activations of toy models trained first
    kind = "toy_activations"
    [data.model]                  # the toy sweep, as above: trained into <out>/toy, then
    n_features = 5                # one SAE per toy model (its grid dims become toy_<dim>)
    [data.train]
    [data.grid]

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
from toymodels.sae.config import SAEConfig
from toymodels.sources import GroundTruth

_SPACES = {
    "geomspace": lambda a, b, n: np.geomspace(a, b, int(n)),
    "linspace": lambda a, b, n: np.linspace(a, b, int(n)),
    "logspace": lambda a, b, n: np.logspace(a, b, int(n)),
    "range": lambda a, b: np.arange(int(a), int(b)),
}


@dataclass(frozen=True)
class ToySweep:
    """A toy-model sweep to train first, whose hidden activations an SAE sweep trains on."""

    model: ToyModelConfig
    train: TrainConfig = TrainConfig()
    grid: dict[str, list] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """One sweep: its configs and grid, its data, and a name for its results folder and figures.

    `model` is what is trained: a ToyModelConfig, or an SAEConfig with `data` a GroundTruth or a
    ToySweep.
    """

    name: str
    model: ToyModelConfig | SAEConfig
    train: TrainConfig = TrainConfig()
    grid: dict[str, list] = field(default_factory=dict)
    data: GroundTruth | ToySweep | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> "Experiment":
        path = Path(path)
        with path.open("rb") as f:
            spec = tomllib.load(f)
        unknown = set(spec) - {"name", "model", "sae", "train", "grid", "data"}
        if unknown:
            raise ValueError(f"{path}: unknown table(s) {sorted(unknown)}; "
                             "allowed: name, [model] or [sae], [train], [grid], [data]")
        if "model" in spec and "sae" in spec:
            raise ValueError(f"{path}: give one of [model] (a toy model) and [sae], not both")
        if "sae" in spec:
            model = _build(SAEConfig, spec["sae"], path, "sae")
            if "data" not in spec:
                raise ValueError(f"{path}: an [sae] sweep needs a [data] table "
                                 "(kind = \"ground_truth\" or \"toy_activations\")")
            data = _data(spec["data"], path)
        else:
            model = _build(ToyModelConfig, spec.get("model", {}), path, "model")
            if "data" in spec:
                raise ValueError(f"{path}: [data] is for [sae] sweeps; a toy model makes its own")
            data = None
        train = _build(TrainConfig, spec.get("train", {}), path, "train")
        grid = _grid(spec.get("grid", {}), path, "grid")
        return cls(spec.get("name", path.stem), model, train, grid, data)


def _data(table: dict[str, Any], path: Path) -> GroundTruth | ToySweep:
    table = dict(table)
    kind = table.pop("kind", None)
    if kind == "ground_truth":
        return _build(GroundTruth, table, path, "data")
    if kind == "toy_activations":
        unknown = set(table) - {"model", "train", "grid"}
        if unknown or "model" not in table:
            raise ValueError(f"{path}: [data] of kind toy_activations takes [data.model], "
                             f"[data.train] and [data.grid]; got {sorted(table)}")
        return ToySweep(_build(ToyModelConfig, table["model"], path, "data.model"),
                        _build(TrainConfig, table.get("train", {}), path, "data.train"),
                        _grid(table.get("grid", {}), path, "data.grid"))
    raise ValueError(f"{path}: [data] kind must be \"ground_truth\" or \"toy_activations\"; "
                     f"got {kind!r}")


def _build(cls, table: dict[str, Any], path: Path, where: str):
    names = {f for f in cls.__dataclass_fields__}
    unknown = set(table) - names
    if unknown:
        raise ValueError(f"{path}: [{where}] has unknown field(s) {sorted(unknown)}; "
                         f"allowed: {', '.join(sorted(names))}")
    table = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    return cls(**table)


def _grid(table: dict[str, Any], path: Path, where: str) -> dict[str, list]:
    return {k: _values(k, v, path, where) for k, v in table.items()}


def _values(name: str, spec: Any, path: Path, where: str = "grid") -> list:
    if isinstance(spec, list):
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        (kind, args), = spec.items()
        if kind in _SPACES:
            try:
                return _SPACES[kind](*args).tolist()
            except TypeError:
                pass
    raise ValueError(f"{path}: {where}.{name} must be a list or one of "
                     f"{{{', '.join(f'{k} = [...]' for k in _SPACES)}}}; got {spec!r}")
