"""A sweep's grid: checked, flattened into points, and turned into per-point swept values.

`Grid.make(model, train, grid)` checks every axis before anything is compiled: each key must be a
swept field of `ToyModelConfig` or `TrainConfig`, and each value must pass that config's own
validation, so the error names the field and its allowed range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from toymodels.config import ToyModelConfig, TrainConfig, swept_fields
from toymodels.train import Swept

#: fields whose grid values are vectors of length n_features (always, or when given as vectors).
VECTOR_FIELDS = ("importance", "feature_probability")


class Axis(NamedTuple):
    """One grid axis. `values` is (n,) for a scalar field, (n, feature) for a vector field."""

    name: str
    values: np.ndarray

    @property
    def is_vector(self) -> bool:
        return self.values.ndim == 2


@dataclasses.dataclass(frozen=True)
class Grid:
    """The validated axes of a sweep; points are the axes' product in C order."""

    model: ToyModelConfig
    train: TrainConfig
    axes: tuple[Axis, ...]

    @classmethod
    def make(cls, model: ToyModelConfig, train: TrainConfig, grid: Mapping[str, Any]) -> "Grid":
        if not isinstance(model, ToyModelConfig):
            raise ValueError(f"model must be a ToyModelConfig; got {type(model).__name__}")
        if not isinstance(train, TrainConfig):
            raise ValueError(f"train must be a TrainConfig; got {type(train).__name__}")
        if not isinstance(grid, Mapping):
            raise ValueError(f"grid must be a mapping of field name to values; got {type(grid).__name__}")
        owners = {name: model for name in swept_fields(ToyModelConfig)}
        owners |= {name: train for name in swept_fields(TrainConfig)}
        axes = []
        for name, values in grid.items():
            if name not in owners:
                kind = "a static (shape) field, fixed per sweep" if _is_field(name) else "not a field"
                raise ValueError(
                    f"grid key {name!r} is {kind}; the grid takes swept fields: {', '.join(owners)}"
                )
            axes.append(_axis(name, values, owners[name]))
        if "importance_decay" in grid and model.importance is not None and "importance" not in grid:
            raise ValueError("importance_decay is swept, but importance is set explicitly and would "
                             "override it; set importance=None")
        return cls(model, train, tuple(axes))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def point_values(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """{field: values at each flat point index}, shapes (len(points),) or (len(points), feature)."""
        index = np.unravel_index(points, self.shape) if self.axes else ()
        return {a.name: a.values[i] for a, i in zip(self.axes, index)}

    def configs(self, point: int) -> tuple[ToyModelConfig, TrainConfig]:
        """The (model, train) configs of one flat point: the base configs with its grid values."""
        values = {k: v[0].tolist() for k, v in self.point_values(np.asarray([point])).items()}
        model_fields = swept_fields(ToyModelConfig)
        model = dataclasses.replace(self.model, **{k: v for k, v in values.items() if k in model_fields})
        train = dataclasses.replace(self.train, **{k: v for k, v in values.items() if k not in model_fields})
        return model, train

    def swept(self, points: np.ndarray) -> Swept:
        """The `Swept` values of the given flat points, each with a leading (point,) axis."""
        rows = [Swept.from_configs(*self.configs(p)) for p in points]
        return Swept(*(np.stack(column) for column in zip(*rows)))

    def seeds(self) -> np.ndarray:
        """(point,) the seed of every flat point."""
        v = self.point_values(np.arange(self.n_points))
        return np.asarray(v["seed"] if "seed" in v else np.full(self.n_points, self.train.seed))

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, stored with results and compared on resume."""
        return {
            "model": _jsonable(dataclasses.asdict(self.model)),
            "train": _jsonable(dataclasses.asdict(self.train)),
            "grid": {a.name: a.values.tolist() for a in self.axes},
        }


def _is_field(name: str) -> bool:
    return any(name == f.name for c in (ToyModelConfig, TrainConfig) for f in dataclasses.fields(c))


def _axis(name: str, values: Any, owner) -> Axis:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"grid[{name!r}] must be a sequence of values; got {values!r}")
    if len(values) == 0:
        raise ValueError(f"grid[{name!r}] is empty; give at least one value")
    checked = []
    for value in values:
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            raise ValueError(f"grid[{name!r}] holds None; sweep over values, or leave the field out")
        # The owner's own validation names the field and its allowed range.
        checked.append(getattr(dataclasses.replace(owner, **{name: value}), name))
    if name == "seed":
        return Axis(name, np.asarray(checked, np.int64))
    arr = np.asarray(checked, float)
    if name == "importance" or (name in VECTOR_FIELDS and arr.ndim == 2):
        return Axis(name, arr.reshape(len(checked), -1))
    return Axis(name, arr)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
