"""Running one chunk of a sweep on the devices: the schedule, the compiled runner, the results.

`toymodels.sweep` decides *what* to train (the checked grid, the trainer, resume); this module
decides *how* a chunk of grid points runs. Points are put in seed order and cut into chunks sized
for the devices; each chunk is split into one block per device (`jax.shard_map` over a 1-D mesh
named "points") and every block trains its models together with `vmap` (`toymodels.loop`), or
one after another within each step where a model's activations alone overflow the cache. A
chunk runs in a few segments of whole logging intervals so that a progress bar can move (and, for
host data, so that one segment's batches fit in memory while the next is read).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import queue
import threading
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from toymodels import loop
from toymodels.grid import Grid
from toymodels.trainable import Trainer

__all__ = ["Results", "Runner", "Schedule", "default_points_per_device", "models_in_turn"]

#: bytes of one (feature, batch) float32 array over a CPU device's block of models. Measured on a
#: 2-core EPYC: throughput per model peaks near 2.5 MiB (32 models of 20 features or 256 of 2, at
#: batch 1024) and halves past it, once a block's activations no longer stay in cache.
CPU_BLOCK_BYTES = 5 * 2**19
#: a model whose activations alone overflow CPU_BLOCK_BYTES gains nothing from small blocks: its
#: blocks hold as many models as fit in this many bytes, so that each compiled call has more work
#: and models of one seed share their data stream (16 SAEs of 1024 latents at batch 1024: measured
#: 71 GFLOP/s in blocks of 8 on 2 cores against 44 in blocks of 1).
CPU_LARGE_BLOCK_BYTES = 64 * 2**20
#: a block of such models whose activations together pass this many bytes steps its models one
#: after another (`models_in_turn`). Measured on the same EPYC (32 MiB of L3 for both cores), in
#: turn against vmapped: 8 SAEs per device of d_in 256, d_sae 1024, batch 1024 (a 64 MiB block)
#: 311 against 322 ms a step at steady state, three rounds alternating; 8 TMS models per device
#: of 1000 features, d_hidden 40, batch 1024 (31 MiB) 49.2–49.6 against 52.1–53.8 s for 300
#: steps; but `experiments/sae_universality.toml`, whose d_sae 2048 and 4096 sweeps hold 2 SAEs
#: of batch 256 per device (8 and 16 MiB), 87–99 against 86–89 s.
CPU_TURN_BYTES = 24 * 2**20
#: segments a chunk's training is cut into, for the progress bar.
TARGET_SEGMENTS = 10
#: at most this many bytes of host batches per segment (one segment trains while the next is read).
HOST_SEGMENT_BYTES = 64 * 2**20



def default_points_per_device(devices, trainer: Trainer, n_points: int) -> int:
    need = math.ceil(n_points / len(devices))
    point_bytes = trainer.point_bytes()
    if devices[0].platform == "cpu":
        fit = CPU_BLOCK_BYTES // point_bytes or CPU_LARGE_BLOCK_BYTES // point_bytes
        return max(1, min(need, fit))
    # Inputs, activations and their gradients: about a dozen arrays of the largest size.
    per_point = 12 * point_bytes
    try:
        memory = devices[0].memory_stats()["bytes_limit"]
    except Exception:  # memory_stats is optional in the PJRT API
        memory = 8 * 2**30
    return max(1, min(need, memory // 4 // per_point))


def models_in_turn(devices, trainer: Trainer, per_device: int) -> bool:
    """Whether a block's models take each step one after another (`loop.over_models`) rather
    than vmapped: on a CPU, where one model's activations alone overflow CPU_BLOCK_BYTES and the
    block's together pass CPU_TURN_BYTES. Such a block is formed to share its data streams and
    give each compiled call more work, not to batch small arrays; vmapped, its (model, d_sae,
    batch) arrays outgrow the cache and every elementwise pass streams them from memory, while
    one model's stay in cache between its matmuls. On an accelerator the models stay vmapped,
    for its parallelism."""
    point = trainer.point_bytes()
    return (devices[0].platform == "cpu" and point > CPU_BLOCK_BYTES
            and per_device * point > CPU_TURN_BYTES)


class Schedule:
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
    def make(cls, plan: Grid, per_device: int, n_devices: int) -> "Schedule":
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

    def streams(self, c: int) -> loop.Streams:
        """Each block's stream seeds (device·stream,) and each point's stream index (point,)."""
        stream_seeds = np.empty((self.n_devices, self.n_streams), np.int32)
        stream_index = np.empty((self.n_devices, self.per_device), np.int32)
        for d, block in enumerate(self._padded_seeds(c)):
            unique, index = np.unique(block, return_inverse=True)
            stream_seeds[d] = np.concatenate([unique, np.full(self.n_streams - len(unique), unique[0])])
            stream_index[d] = index
        return loop.Streams(stream_seeds.reshape(-1), stream_index.reshape(-1))


def _segment_logs(n_logs: int, step_bytes: int | None, log_every: int) -> int:
    """Logging intervals per segment: the fewest that make at most TARGET_SEGMENTS segments,
    fewer where a segment's host batches (step_bytes each step) would pass HOST_SEGMENT_BYTES."""
    divisors = [d for d in range(1, n_logs + 1) if n_logs % d == 0]
    logs = min(d for d in divisors if n_logs // d <= TARGET_SEGMENTS)
    if step_bytes is not None:
        cap = HOST_SEGMENT_BYTES // max(1, step_bytes * log_every)
        logs = max(d for d in divisors if d <= max(1, min(logs, cap)))
    return logs


class Runner:
    """The compiled, sharded init and training segment of one chunk."""

    def __init__(self, plan: Grid, trainer: Trainer, mesh: Mesh, schedule: Schedule):
        self.plan, self.trainer, self.schedule = plan, trainer, schedule
        t = trainer.train_config
        n_logs = t.steps // t.log_every
        host = trainer.host_data
        step_bytes = host.bytes_per_batch(t.batch_size) if host is not None else None
        self.logs_per_segment = _segment_logs(n_logs, step_bytes, t.log_every)
        self.n_segments = n_logs // self.logs_per_segment
        feed_spec = (loop.HostBatches if trainer.host_data is not None else loop.Streams).spec()
        shard = functools.partial(jax.shard_map, mesh=mesh, check_vma=False)
        self._init = jax.jit(shard(functools.partial(loop.init, trainer),
                                   in_specs=(P("points"), feed_spec), out_specs=P("points")))
        in_turn = models_in_turn(list(mesh.devices.flat), trainer, schedule.per_device)
        run = functools.partial(loop.run, trainer, n_logs=self.logs_per_segment, in_turn=in_turn)
        self._run = jax.jit(shard(run, in_specs=(P("points"), P("points"), feed_spec, P()),
                                  out_specs=P("points")), donate_argnums=0)
        self._outputs = jax.jit(shard(functools.partial(loop.outputs, trainer),
                                      in_specs=P("points"), out_specs=P("points")))
        self.sharding = NamedSharding(mesh, P("points"))
        self.replicated = NamedSharding(mesh, P())

    def _put(self, x: np.ndarray, sharding=None) -> jax.Array:
        # Works for one process and for many (each builds the same global array, keeps its shards).
        x = np.asarray(x)
        sharding = self.sharding if sharding is None else sharding
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    def _feeds(self, c: int) -> Iterator[Any]:
        """The feed of each segment of chunk c, on the devices."""
        if self.trainer.host_data is None:
            streams = jax.tree.map(self._put, self.schedule.streams(c))
            while True:
                yield streams
        t = self.trainer.train_config
        steps = self.logs_per_segment * t.log_every
        # Only the segments this chunk trains on: an endless reader would run `depth` segments
        # past the end of every chunk, reading data no step uses.
        segments = itertools.islice(self.trainer.host_data.segments(t.batch_size, steps),
                                    self.n_segments)
        for s, batches in enumerate(_prefetch(segments)):
            data = jax.tree.map(lambda a: self._put(a, self.replicated), batches)
            yield loop.HostBatches(data, self._put(np.int32(s * steps), self.replicated))

    def run_chunk(self, c: int, on_segment) -> dict[str, np.ndarray]:
        schedule, t = self.schedule, self.trainer.train_config
        points = schedule.padded_points(c)
        rows = [self.trainer.swept(*self.plan.configs(p), i)
                for p, i in zip(points, self.plan.data_index(points))]
        swept = jax.tree.map(lambda *column: self._put(np.stack(column)), *rows)
        feeds = self._feeds(c)
        feed = next(feeds)
        state = self._init(swept, feed)
        history = []
        for s in range(self.n_segments):
            if s:
                feed = next(feeds)
            start = jnp.int32(s * self.logs_per_segment * t.log_every)
            state, h = self._run(state, swept, feed, start)
            history.append(h)
            on_segment()
        feeds.close()
        n = len(schedule.points(c))
        host = _to_host((self._outputs(state), history))
        outputs, history = jax.tree.map(lambda a: a[:n], host)
        history = {k: np.concatenate([h[k] for h in history], axis=1) for k in history[0]}
        return _point_arrays(outputs, history)


def _prefetch(iterator: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run `iterator` in a thread, `depth` items ahead, so reading overlaps training."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        """Queue `item` unless the consumer has gone (then a full queue would block forever)."""
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in iterator:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _to_host(tree):
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def _point_arrays(outputs: dict, history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-point result variables of a chunk, each with a leading (point,) axis."""
    arrays = dict(outputs)
    for name, h in history.items():
        arrays[f"{name}_history"] = h
        arrays[name] = h[:, -1]
    finite = np.ones(len(history["loss"]), bool)
    final = [v for k, v in outputs.items() if not k.endswith("_snapshot")]
    for v in list(history.values()) + final:
        if np.issubdtype(v.dtype, np.floating):
            finite &= np.isfinite(v.reshape(len(v), -1)).all(axis=1)
    arrays["diverged"] = ~finite
    return arrays


class Results:
    """Per-point results as they arrive, assembled into the labeled Dataset at the end."""

    def __init__(self, plan: Grid, trainer: Trainer, description: dict[str, Any]):
        self.plan, self.trainer, self.description = plan, trainer, description
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
        result_dims = self.trainer.result_dims()
        dims = {"diverged": ()} | result_dims
        dims |= {f"{k}_snapshot": ("snapshot_step", *d) for k, d in result_dims.items()}
        for name in self.arrays:
            if name.endswith("_history"):
                dims[name], dims[name[: -len("_history")]] = ("step",), ()
        data = {name: (plan.dims + dims[name], v.reshape(plan.shape + v.shape[1:]))
                for name, v in self.arrays.items()}
        coords: dict[str, Any] = {"step": t.log_steps}
        if t.snapshot_steps:
            coords["snapshot_step"] = np.asarray(t.snapshot_steps)
        for axis in plan.axes:
            coords[axis.name] = ((axis.name, axis.dim), axis.values) if axis.is_vector else axis.values
        data |= self.trainer.data_variables()
        attrs = {k: json.dumps(v) for k, v in self.description.items()}
        return xr.Dataset(data, coords=coords, attrs=attrs)
