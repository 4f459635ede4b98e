"""Training a block of models at once: `vmap` over models (or, for models that each overflow the
cache, one after another within each step), one `lax.scan` over steps.

Generic over the trainer (see `toymodels.trainable`) and over how its data arrives:

- `Streams`: drawn inside the compiled program. Each distinct seed of the block is one stream,
  drawn once per step by the trainer's `source`; every model reads the stream of its seed and
  makes its own batch from it. A model's data thus depends only on its seed and the step. A
  finite dataset (`toymodels.finite.FiniteDataset`) draws its T samples once per stream, before
  the scan, and each step takes all of them or a minibatch; its fixed test set is scored at every
  log point (`test_loss`).
- `HostBatches`: a segment's batches handed in from the host, shared by every model of the block.

`init` and `run` are pure and shape-static, so the sweep engine jits them once per chunk layout
and shards them over devices; `outputs` turns the final state into result variables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from toymodels.finite import FiniteDataset
from toymodels.trainable import Trainer, TrainState, stream_keys

__all__ = ["HostBatches", "Streams", "init", "outputs", "run"]

BatchAt = Callable[[jax.Array], Any]


class Streams(NamedTuple):
    """In-graph data of a block: its distinct seeds, and which one each model reads."""

    seeds: jax.Array  # (stream,) int32
    index: jax.Array  # (model,) int32, into seeds

    @staticmethod
    def spec() -> "Streams":
        return Streams(P("points"), P("points"))

    def batches(self, trainer: Trainer, swept: Any) -> tuple[BatchAt, int]:
        """(t -> every model's batch at step t, the batch's model axis)."""
        source, batch_size = trainer.source, trainer.train_config.batch_size
        keys = self.data_keys()
        if isinstance(source, FiniteDataset):
            train_draws = jax.vmap(lambda k: source.draws(k)[0])(keys)  # once, outside the scan

            def draw(k, t, d):
                return source.minibatch(d, k, t, batch_size)
        else:
            train_draws = keys

            def draw(k, t, _):
                return source.draw(jax.random.fold_in(k, t), batch_size)

        def at(t):
            raw = jax.vmap(draw, in_axes=(0, None, 0))(keys, t, train_draws)
            raw = jax.tree.map(lambda r: r[self.index], raw)
            return jax.vmap(source.batch)(raw, swept)

        return at, 0

    def data_keys(self) -> jax.Array:
        """(stream,) each stream's data key."""
        return jax.vmap(lambda s: stream_keys(s)[1])(self.seeds)

    def test_batch(self, trainer: Trainer, swept: Any) -> tuple[Any, int] | None:
        """Every model's batch of its stream's fixed test set; None without a finite dataset."""
        source = trainer.source
        if not isinstance(source, FiniteDataset):
            return None
        raw = jax.vmap(lambda k: source.draws(k)[1])(self.data_keys())
        raw = jax.tree.map(lambda r: r[self.index], raw)
        return jax.vmap(source.batch)(raw, swept), 0

    def first_batch(self, trainer: Trainer, swept: Any) -> tuple[Any, int]:
        """The batch `init` sees: the streams' draws at step `steps`, which no step trains on."""
        at, axis = self.batches(trainer, swept)
        return at(jnp.int32(trainer.train_config.steps)), axis


class HostBatches(NamedTuple):
    """The batches of one segment of steps, from the host, shared by every model of the block."""

    data: Any  # pytree of (step, batch, ...) arrays, step 0 = the segment's first step
    start_step: jax.Array  # () int32, the step of data[0]

    @staticmethod
    def spec() -> "HostBatches":
        return HostBatches(P(), P())

    def batches(self, trainer: Trainer, swept: Any) -> tuple[BatchAt, None]:  # noqa: ARG002
        return (lambda t: jax.tree.map(lambda a: a[t - self.start_step], self.data)), None

    def first_batch(self, trainer: Trainer, swept: Any) -> tuple[Any, None]:  # noqa: ARG002
        return jax.tree.map(lambda a: a[0], self.data), None

    def test_batch(self, trainer: Trainer, swept: Any) -> None:  # noqa: ARG002
        return None  # host data has no held-out set of its own


def over_models(f: Callable, in_axes: tuple, in_turn: bool = False) -> Callable:
    """f over the block's models: the args whose axis in `in_axes` is 0 have one row per model,
    those whose axis is None are shared.

    By default `jax.vmap(f, in_axes)`; with `in_turn`, one model after another in a `lax.map`
    (`toymodels.runner.models_in_turn` says when). A block of one model runs f unbatched (its
    leading axis taken off and put back), as models in turn do, so that a `lax.cond` inside f
    stays a branch: vmap turns a cond whose predicate differs between models into a select that
    computes both (a large SAE, one per device, skips AuxK's matmuls while no latent is dead)."""
    batched = jax.vmap(f, in_axes=in_axes)

    def mapped(*args):
        sizes = {a.shape[0] for x, axis in zip(args, in_axes) if axis == 0
                 for a in jax.tree.leaves(x)}
        if sizes == {1}:
            one = [jax.tree.map(lambda a: a[0], x) if axis == 0 else x
                   for x, axis in zip(args, in_axes)]
            return jax.tree.map(lambda a: a[None], f(*one))
        if not in_turn:
            return batched(*args)

        def one_model(rows):
            rows = iter(rows)
            return f(*[next(rows) if axis == 0 else x for x, axis in zip(args, in_axes)])

        return jax.lax.map(one_model, [x for x, axis in zip(args, in_axes) if axis == 0])

    return mapped


def _record(snapshot_steps: np.ndarray, snapshots, params, step):
    """Copy params into the snapshot slots of `step`; snapshots: (snapshot, ...) per leaf."""
    take = jnp.asarray(snapshot_steps) == step
    return jax.tree.map(
        lambda buf, p: jnp.where(take.reshape(take.shape + (1,) * (buf.ndim - 1)), p, buf),
        snapshots, params)


def init(trainer: Trainer, swept: Any, feed: Streams | HostBatches) -> TrainState:
    """The initial state of a block of models; swept: (model, ...) pytree."""
    batch, axis = feed.first_batch(trainer, swept)
    state = jax.vmap(trainer.init, in_axes=(0, axis))(swept, batch)
    steps = np.asarray(trainer.train_config.snapshot_steps, np.int32)
    if len(steps):
        empty = jax.tree.map(lambda p: jnp.zeros((p.shape[0], len(steps)) + p.shape[1:], p.dtype),
                             state.params)
        record = jax.vmap(_record, in_axes=(None, 0, 0, None))
        state = state._replace(snapshots=record(steps, empty, state.params, 0))
    return state


def run(trainer: Trainer, state: TrainState, swept: Any, feed: Streams | HostBatches,
        start_step: jax.Array, n_logs: int, in_turn: bool = False
        ) -> tuple[TrainState, dict[str, jax.Array]]:
    """Advance a block of models by n_logs logging intervals, in one `lax.scan`.

    Args:
      trainer: what is trained.
      state, swept: (model, ...) pytrees, one row per model.
      feed: where each step's batches come from.
      start_step: the step the block is at (a multiple of log_every).
      n_logs: static number of logging intervals to run.
      in_turn: step the block's models one after another instead of vmapped (`over_models`).

    Returns:
      The state after n_logs · log_every steps, and {metric: (model, n_logs)} the mean of each
      of the step's metrics (the loss, …) over each interval; with a finite dataset also
      `test_loss`, the loss on its fixed test set at the end of each interval.
    """
    log_every = trainer.train_config.log_every
    snapshot_steps = np.asarray(trainer.train_config.snapshot_steps, np.int32)
    batch_at, axis = feed.batches(trainer, swept)
    step = over_models(trainer.step, (0, 0, axis, None), in_turn)
    test = feed.test_batch(trainer, swept)

    def one_step(state, t):
        return step(state, swept, batch_at(t), t)

    def add_step(carry, t):
        state, sums = carry
        state, metrics = one_step(state, t)
        leaves = jax.tree.leaves(metrics)
        return (state, sums + jnp.stack([m.astype(jnp.float32) for m in leaves], axis=-1)), None

    def one_interval(state, t0):
        # The interval's metrics are summed in the carry as one (model, metric) array, not
        # stacked step by step and averaged one by one (measured: about 5 % of a small SAE's
        # step).
        shapes = jax.eval_shape(one_step, state, t0)[1]
        leaves, tree = jax.tree.flatten(shapes)
        zeros = jnp.zeros(leaves[0].shape + (len(leaves),), jnp.float32)
        (state, sums), _ = jax.lax.scan(add_step, (state, zeros), t0 + jnp.arange(log_every))
        if len(snapshot_steps):
            record = jax.vmap(_record, in_axes=(None, 0, 0, None))
            state = state._replace(
                snapshots=record(snapshot_steps, state.snapshots, state.params, t0 + log_every))
        metrics = jax.tree.unflatten(tree, list(jnp.moveaxis(sums / log_every, -1, 0)))
        if test is not None:
            loss = jax.vmap(trainer.loss, in_axes=(0, 0, test[1]))
            metrics["test_loss"] = loss(state.params, swept, test[0])
        return state, metrics

    starts = start_step + log_every * jnp.arange(n_logs)
    state, history = jax.lax.scan(one_interval, state, starts)
    return state, jax.tree.map(lambda h: h.T, history)


def outputs(trainer: Trainer, state: TrainState) -> dict[str, jax.Array]:
    """A block's result variables: `trainer.outputs` per model, and `<name>_snapshot` per snapshot."""
    out = jax.vmap(trainer.outputs)(state)
    if len(trainer.train_config.snapshot_steps):
        per_snapshot = jax.vmap(trainer.snapshot_outputs, in_axes=(0, None))
        snaps = jax.vmap(per_snapshot)(state.snapshots, state.aux)
        out |= {f"{name}_snapshot": v for name, v in snaps.items()}
    return out
