"""A sweep's grid: checked, flattened into points, and turned into per-point configs.

`Grid.make(config, train, grid)` checks every axis before anything is compiled: each key must be
a swept field of the config (`ToyModelConfig`, `SAEConfig`, …) or of `TrainConfig`, and each
value must pass that config's own validation, so the error names the field and its allowed
range. A data source may add leading axes of its own (one SAE per toy model of a toy sweep):
`data_axes`, whose flat index a point carries to its source.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from toymodels.config import TrainConfig, swept_fields


class Axis(NamedTuple):
    """One grid axis. `values` is (n,) for a scalar field, (n, k) for a vector-valued one.

    `dim` names the entries of a vector value (`feature` for importance vectors).
    """

    name: str
    values: np.ndarray
    dim: str | None = None

    @property
    def is_vector(self) -> bool:
        return self.values.ndim == 2


@dataclasses.dataclass(frozen=True)
class Grid:
    """The validated axes of a sweep; points are the axes' product in C order.

    `axes` holds the data source's axes first (`n_data_axes` of them), then the grid's keys in
    the order given.
    """

    config: Any
    train: TrainConfig
    axes: tuple[Axis, ...]
    n_data_axes: int = 0

    @classmethod
    def make(cls, config: Any, train: TrainConfig, grid: Mapping[str, Any],
             data_axes: Sequence[Axis] = ()) -> "Grid":
        if not dataclasses.is_dataclass(config) or not hasattr(config, "train_recipe"):
            raise ValueError("the config must be a ToyModelConfig or an SAEConfig; "
                             f"got {type(config).__name__}")
        if not isinstance(train, TrainConfig):
            raise ValueError(f"train must be a TrainConfig; got {type(train).__name__}")
        if not isinstance(grid, Mapping):
            raise ValueError(f"grid must be a mapping of field name to values; got {type(grid).__name__}")
        train = train.resolved(config.train_recipe)
        owners = {name: config for name in swept_fields(type(config))}
        owners |= {name: train for name in swept_fields(TrainConfig)}
        taken = {a.name for a in data_axes}
        axes = list(data_axes)
        for name, values in grid.items():
            if name not in owners:
                kind = ("a static (shape) field, fixed per sweep" if _is_field(config, name)
                        else "not a field")
                raise ValueError(
                    f"grid key {name!r} is {kind}; the grid takes swept fields: {', '.join(owners)}"
                )
            if name in taken:
                raise ValueError(f"grid key {name!r} clashes with a dim of the data: "
                                 f"{', '.join(sorted(taken))}")
            axes.append(_axis(name, values, owners[name], config.vector_fields.get(name)))
        config.check_grid(dict(grid))
        return cls(config, train, tuple(axes), len(data_axes))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    @property
    def n_points(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    def _index(self, points: np.ndarray) -> tuple[np.ndarray, ...]:
        return np.unravel_index(points, self.shape) if self.axes else ()

    def point_values(self, points: np.ndarray) -> dict[str, np.ndarray]:
        """{field: values at each flat point index} of the grid's own (non-data) axes."""
        index = self._index(points)[self.n_data_axes:]
        return {a.name: a.values[i] for a, i in zip(self.axes[self.n_data_axes:], index)}

    def data_index(self, points: np.ndarray) -> np.ndarray:
        """(len(points),) each point's flat index into the data source's axes."""
        data_shape = self.shape[:self.n_data_axes]
        index = self._index(points)[:self.n_data_axes]
        return np.ravel_multi_index(index, data_shape) if data_shape else np.zeros(len(points), int)

    def configs(self, point: int) -> tuple[Any, TrainConfig]:
        """The (config, train) of one flat point: the base configs with its grid values."""
        values = {k: v[0].tolist() for k, v in self.point_values(np.asarray([point])).items()}
        own = swept_fields(type(self.config))
        config = dataclasses.replace(self.config, **{k: v for k, v in values.items() if k in own})
        train = dataclasses.replace(self.train, **{k: v for k, v in values.items() if k not in own})
        return config, train

    def seeds(self) -> np.ndarray:
        """(point,) the seed of every flat point."""
        v = self.point_values(np.arange(self.n_points))
        return np.asarray(v["seed"] if "seed" in v else np.full(self.n_points, self.train.seed))

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, stored with results and compared on resume."""
        own = self.axes[self.n_data_axes:]
        return {
            self.config.describe_as: _jsonable(dataclasses.asdict(self.config)),
            "train": _jsonable(dataclasses.asdict(self.train)),
            "grid": {a.name: a.values.tolist() for a in own},
        }


def current_names(grid: Mapping[str, Any], renamed: Mapping[str, str]) -> dict[str, Any]:
    """The grid with any field's earlier name replaced by its current one (with a warning that
    points at the caller of `tm.sweep`)."""
    out = {}
    for name, values in grid.items():
        if name in renamed:
            warnings.warn(f"grid key {name!r} is now {renamed[name]!r}, SAELens's name; "
                          f"{name!r} will be removed", DeprecationWarning, stacklevel=3)
            name = renamed[name]
        if name in out:
            raise ValueError(f"grid key {name!r} is given twice (once by an earlier name)")
        out[name] = values
    return out


def _is_field(config, name: str) -> bool:
    return any(name == f.name for c in (type(config), TrainConfig) for f in dataclasses.fields(c))


def _axis(name: str, values: Any, owner, vector_dim: str | None) -> Axis:
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
    if vector_dim is not None and arr.ndim == 2:
        return Axis(name, arr.reshape(len(checked), -1), vector_dim)
    return Axis(name, arr)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
