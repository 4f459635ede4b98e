"""The sweep engine: train every point of a labeled grid, many models per compiled call.

The grid's points are put in seed order and cut into chunks sized for the devices; each chunk is
split into one block per device (`jax.shard_map` over a 1-D mesh named "points") and every block
trains its models together with `vmap`, drawing the data stream of each distinct seed once per
step. A chunk runs in a few segments of whole logging intervals so that a progress bar can move;
a finished chunk is written to `out` at once, so a resumed sweep retrains only unfinished chunks.
A point's numbers depend only on its own values and seed, never on its neighbours, the chunk
size, or the number of devices (up to float reassociation).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from toymodels.config import ToyModelConfig, TrainConfig
from toymodels.grid import Grid
from toymodels.store import SweepStore
from toymodels.train import Swept, Trainer, make_trainer

log = logging.getLogger(__name__)

#: bytes of one (feature, batch) float32 array over a CPU device's block of models. Measured on a
#: 2-core EPYC: throughput per model peaks near 2.5 MiB (32 models of 20 features or 256 of 2, at
#: batch 1024) and halves past it, once a block's activations no longer stay in cache.
CPU_BLOCK_BYTES = 5 * 2**19
#: segments a chunk's training is cut into, for the progress bar.
TARGET_SEGMENTS = 10


def sweep(
    model: ToyModelConfig,
    grid: Mapping[str, Sequence[Any]] | None = None,
    train: TrainConfig | None = None,
    *,
    out: str | None = None,
    chunk_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Train one model per point of `grid` and return the results as a labeled Dataset.

    Args:
      model: the toy model and its data; swept fields left out of the grid keep these values.
      grid: {swept field: values}; the points are the product of the axes, in the given order.
      train: how to train (defaults: the TMS notebook's AdamW, 10,000 steps of batch 1024).
      out: a folder to keep finished chunks and the final `results.nc` in. Calling again with the
        same `out` and arguments resumes: finished chunks are loaded, not retrained.
      chunk_size: models per compiled call (rounded up to a multiple of the device count);
        default: on a CPU, as many per device as keep a block's activations in cache
        (`CPU_BLOCK_BYTES`); on an accelerator, as many as fit in a quarter of its memory.
      devices: devices to shard each chunk across; default `jax.devices()` (on a CPU, one host
        device per core — see `toymodels.devices`).
      progress: show a progress bar; default: only when stderr is a terminal.

    Returns:
      An `xarray.Dataset` with the grid's keys as its first dims: the parameters (`W`, `b`, …),
      `loss` (mean training loss over the last log_every steps), `loss_history` over `step`,
      `diverged`, and `<param>_snapshot` over `snapshot_step` if snapshots were asked for.
    """
    train = TrainConfig() if train is None else train
    plan = Grid.make(model, train, {} if grid is None else grid)
    devices = list(jax.devices() if devices is None else devices)
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    trainer = make_trainer(model, train)
    store = SweepStore(out, plan.describe(), writer=_is_writer()) if out is not None else None

    per_device = (math.ceil(chunk_size / len(devices)) if chunk_size is not None
                  else _default_points_per_device(devices, train, model, plan.n_points))
    schedule = _Schedule.make(plan, per_device, len(devices))
    results = _Results(plan, trainer)
    if store is not None:
        for points, arrays in store.load_chunks():
            results.put(points, arrays)

    todo = [c for c in range(schedule.n_chunks) if not results.has(schedule.points(c))]
    runner = _Runner(plan, trainer, Mesh(np.asarray(devices), ("points",)), schedule)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(todo) * runner.n_segments, disable=not show, delay=2.0,
              unit="segment", desc="sweep") as bar:
        for c in todo:
            arrays = runner.run_chunk(c, on_segment=lambda: bar.update(1))
            points = schedule.points(c)
            results.put(points, arrays)
            if store is not None:
                store.save_chunk(c, points, arrays)
    ds = results.dataset()
    if store is not None:
        store.save_results(ds)
    return ds


def _is_writer() -> bool:
    return jax.process_index() == 0


def _default_points_per_device(devices, train: TrainConfig, model: ToyModelConfig, n_points: int) -> int:
    need = math.ceil(n_points / len(devices))
    width = max(model.n_features, model.d_hidden)
    if devices[0].platform == "cpu":
        return max(1, min(need, CPU_BLOCK_BYTES // (4 * width * train.batch_size)))
    # Inputs, activations and their gradients: about a dozen (batch, feature) float32 arrays.
    per_point = 12 * 4 * train.batch_size * width
    try:
        memory = devices[0].memory_stats()["bytes_limit"]
    except Exception:  # memory_stats is optional in the PJRT API
        memory = 8 * 2**30
    return max(1, min(need, memory // 4 // per_point))


class _Schedule:
    """Which points each chunk trains, and how its blocks share data streams.

    Points run in seed order, so a block holds few distinct seeds and draws few streams.
    """

    def __init__(self, order: np.ndarray, seeds: np.ndarray, per_device: int, n_devices: int):
        self.order, self.seeds = order, seeds
        self.per_device, self.n_devices = per_device, n_devices
        self.chunk = per_device * n_devices
        self.n_chunks = math.ceil(len(order) / self.chunk)
        self.n_streams = max(
            len(np.unique(b)) for c in range(self.n_chunks) for b in self._padded_seeds(c)
        )

    @classmethod
    def make(cls, plan: Grid, per_device: int, n_devices: int) -> "_Schedule":
        seeds = plan.seeds()
        return cls(np.argsort(seeds, kind="stable"), seeds, per_device, n_devices)

    def points(self, c: int) -> np.ndarray:
        return self.order[c * self.chunk:(c + 1) * self.chunk]

    def padded_points(self, c: int) -> np.ndarray:
        """The chunk's points, padded with copies of its last point to the full chunk size."""
        pts = self.points(c)
        return np.concatenate([pts, np.full(self.chunk - len(pts), pts[-1])])

    def _padded_seeds(self, c: int) -> np.ndarray:
        return self.seeds[self.padded_points(c)].reshape(self.n_devices, self.per_device)

    def streams(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(device·stream,) seeds of each block's streams and (point,) index of each point's stream."""
        stream_seeds = np.empty((self.n_devices, self.n_streams), np.int32)
        stream_index = np.empty((self.n_devices, self.per_device), np.int32)
        for d, block in enumerate(self._padded_seeds(c)):
            unique, index = np.unique(block, return_inverse=True)
            stream_seeds[d] = np.concatenate([unique, np.full(self.n_streams - len(unique), unique[0])])
            stream_index[d] = index
        return stream_seeds.reshape(-1), stream_index.reshape(-1)


class _Runner:
    """The compiled, sharded init and training segment of one chunk."""

    def __init__(self, plan: Grid, trainer: Trainer, mesh: Mesh, schedule: _Schedule):
        self.plan, self.trainer, self.schedule = plan, trainer, schedule
        n_logs = trainer.train_config.steps // trainer.train_config.log_every
        self.logs_per_segment = min(d for d in range(1, n_logs + 1)
                                    if n_logs % d == 0 and n_logs // d <= TARGET_SEGMENTS)
        self.n_segments = n_logs // self.logs_per_segment
        shard = functools.partial(jax.shard_map, mesh=mesh, check_vma=False)
        self._init = jax.jit(shard(jax.vmap(trainer.init), in_specs=P("points"),
                                   out_specs=P("points")))
        run = functools.partial(trainer.run, n_logs=self.logs_per_segment)
        self._run = jax.jit(shard(run, in_specs=(P("points"),) * 4 + (P(),),
                                  out_specs=P("points")), donate_argnums=0)
        self.sharding = NamedSharding(mesh, P("points"))

    def _put(self, x: np.ndarray) -> jax.Array:
        # Works for one process and for many (each builds the same global array, keeps its shards).
        return jax.make_array_from_callback(x.shape, self.sharding, lambda idx: x[idx])

    def run_chunk(self, c: int, on_segment) -> dict[str, np.ndarray]:
        schedule, t = self.schedule, self.trainer.train_config
        points = schedule.padded_points(c)
        swept = jax.tree.map(self._put, self.plan.swept(points))
        stream_seeds, stream_index = map(self._put, schedule.streams(c))
        state = self._init(swept)
        history = []
        for s in range(self.n_segments):
            start = jnp.int32(s * self.logs_per_segment * t.log_every)
            state, h = self._run(state, swept, stream_seeds, stream_index, start)
            history.append(h)
            on_segment()
        n = len(schedule.points(c))
        host = _to_host((nnx.to_pure_dict(state.params), nnx.to_pure_dict(state.snapshots)
                         if len(t.snapshot_steps) else {}, history))
        params, snapshots, history = jax.tree.map(lambda a: a[:n], host)
        return _point_arrays(params, snapshots, np.concatenate(history, axis=1))


def _to_host(tree):
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def _point_arrays(params: dict, snapshots: dict, history: np.ndarray) -> dict[str, np.ndarray]:
    """The per-point result variables of a chunk, each with a leading (point,) axis."""
    arrays = dict(params)
    arrays |= {f"{name}_snapshot": v for name, v in snapshots.items()}
    arrays["loss_history"] = history
    arrays["loss"] = history[:, -1]
    finite = np.isfinite(history).all(axis=1)
    for v in params.values():
        finite &= np.isfinite(v.reshape(len(v), -1)).all(axis=1)
    arrays["diverged"] = ~finite
    return arrays


class _Results:
    """Per-point results as they arrive, assembled into the labeled Dataset at the end."""

    def __init__(self, plan: Grid, trainer: Trainer):
        self.plan, self.trainer = plan, trainer
        self.arrays: dict[str, np.ndarray] = {}
        self.done = np.zeros(plan.n_points, bool)

    def put(self, points: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
        for name, v in arrays.items():
            if name not in self.arrays:
                self.arrays[name] = np.zeros((self.plan.n_points,) + v.shape[1:], v.dtype)
            self.arrays[name][points] = v
        self.done[points] = True

    def has(self, points: np.ndarray) -> bool:
        return bool(self.done[points].all())

    def dataset(self) -> xr.Dataset:
        plan, t = self.plan, self.trainer.train_config
        param_dims = self.trainer.module.param_dims
        extra = {"loss": (), "diverged": (), "loss_history": ("step",)}
        extra |= param_dims
        extra |= {f"{k}_snapshot": ("snapshot_step", *d) for k, d in param_dims.items()}
        data = {name: (plan.dims + extra[name], v.reshape(plan.shape + v.shape[1:]))
                for name, v in self.arrays.items()}
        coords: dict[str, Any] = {"step": t.log_steps}
        if t.snapshot_steps:
            coords["snapshot_step"] = np.asarray(t.snapshot_steps)
        for axis in plan.axes:
            coords[axis.name] = ((axis.name, "feature"), axis.values) if axis.is_vector else axis.values
        attrs = {k: json.dumps(v) for k, v in plan.describe().items()}
        return xr.Dataset(data, coords=coords, attrs=attrs)
