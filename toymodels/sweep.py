"""The sweep engine: train every point of a labeled grid, many models per compiled call.

Generic over what is trained (a toy model, an SAE …: `toymodels.trainers` gives the trainer of a
config) and over where its data comes from (drawn in-graph per seed, or handed in from the host).
This module checks the grid, plans the chunks, resumes from `out` and assembles the labeled
Dataset; `toymodels.runner` runs each chunk on the devices. A finished chunk is written to `out`
at once, so a resumed sweep retrains only unfinished chunks. A point's numbers depend only on its
own values and seed, never on its neighbours, the chunk size, or the number of devices (up to
float reassociation).

Static fields that a config still lets the grid sweep (an SAE's `d_sae` and `k`, a toy model's
`d_hidden` and `dataset_size`) run as one sub-sweep per combination of values, merged into one Dataset, padded to
the widest (`toymodels.widths`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import xarray as xr
from jax.sharding import Mesh
from tqdm.auto import tqdm

from toymodels.config import TrainConfig
from toymodels.grid import Grid, current_names
from toymodels.runner import Results, Runner, Schedule, default_points_per_device
from toymodels.store import SweepStore
from toymodels.trainable import Trainer
from toymodels.trainers import make_trainer
from toymodels.widths import grid_values, merge_parts

log = logging.getLogger(__name__)

def sweep(
    config: Any,
    grid: Mapping[str, Sequence[Any]] | None = None,
    train: TrainConfig | None = None,
    *,
    data: Any = None,
    out: str | None = None,
    chunk_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    progress: bool | None = None,
) -> xr.Dataset:
    """Train one model per point of `grid` and return the results as a labeled Dataset.

    Args:
      config: what to train: a `ToyModelConfig` (a toy model and its synthetic data) or an
        `SAEConfig`; swept fields left out of the grid keep these values.
      grid: {swept field: values}; the points are the product of the axes, in the given order.
        An SAE's `d_sae` and `k` may be keys too (one compilation per value).
      train: how to train (default `TrainConfig()`; fields it leaves at None follow the recipe of
        what is trained: the TMS notebook's AdamW for toy models, SAELens's Adam for SAEs).
      data: where an SAE's activations come from: `GroundTruth`, `ToyActivations`, an
        activation store, or any iterable of (batch, d_in) arrays. None for toy models.
      out: a folder to keep finished chunks and the final `results.nc` in. Calling again with the
        same `out` and arguments resumes: finished chunks are loaded, not retrained.
      chunk_size: models per compiled call (rounded up to a multiple of the device count);
        default: on a CPU, as many per device as keep a block's activations in cache
        (`toymodels.runner.CPU_BLOCK_BYTES`); on an accelerator, as many as fit in a quarter of its memory.
      devices: devices to shard each chunk across; default `jax.devices()` (on a CPU, one host
        device per core — see `toymodels.devices`).
      progress: show a progress bar; default: only when stderr is a terminal.

    Returns:
      An `xarray.Dataset` with the grid's keys as its first dims (after any dims the data brings):
      the trained parameters, `loss` (mean training loss over the last log_every steps),
      `loss_history` over `step` (and the history of any other metric the trainer logs),
      `diverged`, and `<param>_snapshot` over `snapshot_step` if snapshots were asked for.
    """
    train = TrainConfig() if train is None else train
    grid = {} if grid is None else grid
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a mapping of field name to values; got {type(grid).__name__}")
    grid = current_names(grid, getattr(config, "renamed_fields", {}))
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}")
    static_keys = [k for k in grid if k in getattr(config, "static_grid_fields", ())]
    options = dict(chunk_size=chunk_size, devices=devices, progress=progress)
    if static_keys:
        return _sweep_static(config, grid, train, static_keys, data=data, out=out, **options)
    return _sweep(config, grid, train, data=data, out=out, **options)


def _sweep(config, grid, train, *, data, out, chunk_size, devices, progress) -> xr.Dataset:
    plan, trainer = plan_sweep(config, grid, train, data)
    devices = list(jax.devices() if devices is None else devices)
    description = plan.describe()
    if trainer.describe_data() is not None:
        description["data"] = trainer.describe_data()
    store = SweepStore(out, description, writer=_is_writer()) if out is not None else None

    per_device = (math.ceil(chunk_size / len(devices)) if chunk_size is not None
                  else default_points_per_device(devices, trainer, plan.n_points))
    schedule = Schedule.make(plan, per_device, len(devices))
    results = Results(plan, trainer, description)
    if store is not None:
        for points, arrays in store.load_chunks():
            results.put(points, arrays)

    todo = [c for c in range(schedule.n_chunks) if not results.has(schedule.points(c))]
    runner = Runner(plan, trainer, Mesh(np.asarray(devices), ("points",)), schedule)
    if trainer.host_data is not None and len(todo) > 1:
        trainer.host_data.check_reiterable(len(todo))
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
    for message in trainer.check_results(ds):
        warnings.warn(message, UserWarning, stacklevel=3)
    return ds


def plan_sweep(config: Any, grid: Mapping[str, Any], train: TrainConfig, data: Any
               ) -> tuple[Grid, Trainer]:
    """The checked grid and the trainer of a sweep; raises ValueError before anything compiles."""
    if not isinstance(train, TrainConfig):
        raise ValueError(f"train must be a TrainConfig; got {type(train).__name__}")
    trainer = make_trainer(config, train, data)
    return Grid.make(config, train, grid, trainer.data_axes), trainer


def _is_writer() -> bool:
    return jax.process_index() == 0


def _sweep_static(config: Any, grid: Mapping[str, Any], train: TrainConfig,
                  static_keys: Sequence[str], *, data: Any, out: str | None, **options
                  ) -> xr.Dataset:
    """`sweep` over a grid with static keys: every sub-sweep checked first, then run and merged."""
    values = {k: grid_values(k, grid[k]) for k in static_keys}
    combos = list(itertools.product(*values.values()))
    # Each config's own validation names the field (k outside [1, d_sae] …).
    configs = [dataclasses.replace(config, **dict(zip(static_keys, c))) for c in combos]
    rest = {k: v for k, v in grid.items() if k not in values}
    plans = [plan_sweep(c, rest, train, data) for c in configs]
    host = plans[0][1].host_data
    if host is not None and len(configs) > 1:
        host.check_reiterable(len(configs))

    description = plans[0][0].describe()
    description["grid"] = {k: (values[k] if k in values else description["grid"][k])
                           for k in grid}
    if plans[0][1].describe_data() is not None:
        description["data"] = plans[0][1].describe_data()
    store = SweepStore(out, description) if out is not None else None

    parts = []
    for combo, cfg in zip(combos, configs):
        sub = None if out is None else str(
            Path(out) / "_".join(f"{k}={v}" for k, v in zip(static_keys, combo)))
        parts.append(_sweep(cfg, rest, train, data=data, out=sub, **options))
    parts = [p.assign_coords(dict(zip(static_keys, combo))) for p, combo in zip(parts, combos)]
    shared = list(plans[0][1].data_variables())  # the data's variables: the same in every part
    ds = merge_parts([p.drop_vars(shared) for p in parts], static_keys,
                     [len(values[k]) for k in static_keys], list(grid))
    ds = ds.assign({name: parts[0][name] for name in shared})
    ds.attrs = {k: json.dumps(v) for k, v in description.items()}
    if store is not None:
        store.save_results(ds)
    return ds
