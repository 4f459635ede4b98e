"""Training one toy model, written once and mapped over thousands with `vmap`.

`make_trainer(model, train)` builds, from the configs' static fields only, the pure functions of
one training run: `init(swept) -> TrainState`, `step(state, swept, u, t)`, and
`run(state, swept, ...)`, which advances a block of models by whole logging intervals in one
`lax.scan`. `swept` (a `Swept`) carries everything that may differ between grid points as arrays,
so one compilation serves the whole grid. `Trainer.train(swept)` is the plain single-model run;
the sweep engine calls the same functions on blocks of models, sharing the data streams of
models with the same seed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from toymodels.config import ToyModelConfig, TrainConfig
from toymodels.data import FeatureLayout, features_from_uniform
from toymodels.models import MODELS, ToyModel


class Swept(NamedTuple):
    """One model's swept values (add leading axes for blocks of models)."""

    feature_probability: jax.Array  # (feature,)
    importance: jax.Array  # (feature,)
    init_std: jax.Array  # ()
    lr: jax.Array  # ()
    weight_decay: jax.Array  # ()
    seed: jax.Array  # () int32

    @classmethod
    def from_configs(cls, model: ToyModelConfig, train: TrainConfig) -> "Swept":
        """The swept values of a single configured model."""
        init_std = model.init_std if model.init_std is not None else model.xavier_std()
        return cls(
            feature_probability=np.asarray(model.probabilities(), np.float32),
            importance=np.asarray(model.importances(), np.float32),
            init_std=np.float32(init_std),
            lr=np.float32(train.lr),
            weight_decay=np.float32(train.weight_decay),
            seed=np.int32(train.seed),
        )


class TrainState(NamedTuple):
    params: Any  # nnx.State of the model's parameters
    opt_state: Any
    snapshots: Any  # params with a leading (snapshot,) axis; () when no snapshots are asked for


def stream_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(init key, data key) of a seed. The data stream at step t is fold_in(data key, t)."""
    init_key, data_key = jax.random.split(jax.random.key(seed.astype(jnp.uint32)))
    return init_key, data_key


def _schedule(train: TrainConfig, lr):
    if train.schedule == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, train.warmup_steps, train.steps, end_value=lr * train.final_lr_fraction
        )
    return lr


_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    # torch.optim.AdamW: decoupled decay lr·wd·θ on every parameter, biases included.
    "adamw": lambda t, lr, wd: optax.adamw(lr, t.b1, t.b2, t.eps, weight_decay=wd),
    "adam": lambda t, lr, wd: optax.adam(lr, t.b1, t.b2, t.eps),
    "sgd": lambda t, lr, wd: optax.sgd(lr, momentum=t.momentum or None),
}


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The pure functions that train one model of a given static configuration."""

    model: ToyModelConfig
    train_config: TrainConfig

    @functools.cached_property
    def module(self) -> type[ToyModel]:
        return MODELS[self.model.kind]

    @functools.cached_property
    def layout(self) -> FeatureLayout:
        m = self.model
        return FeatureLayout.make(m.n_features, m.n_correlated_pairs, m.n_anticorrelated_pairs)

    @functools.cached_property
    def graphdef(self):
        abstract = nnx.eval_shape(self._new_module, 1.0, jax.random.key(0))
        return nnx.split(abstract)[0]

    @property
    def snapshot_steps(self) -> np.ndarray:
        return np.asarray(self.train_config.snapshot_steps, np.int32)

    def _new_module(self, init_std, key) -> ToyModel:
        m = self.model
        return self.module(m.n_features, m.d_hidden, init_std=init_std, rngs=nnx.Rngs(params=key))

    def optimizer(self, swept: Swept) -> optax.GradientTransformation:
        t = self.train_config
        return _OPTIMIZERS[t.optimizer](t, _schedule(t, swept.lr), swept.weight_decay)

    def loss(self, params, swept: Swept, x: jax.Array) -> jax.Array:
        """Σ_i I_i (target(x)_i − x'_i)², averaged over the batch and the features.

        x: (feature, batch), feature-major (see `toymodels.models`).
        """
        model = nnx.merge(self.graphdef, params)
        err = self.module.target(x) - model(x)
        return jnp.mean(swept.importance[:, None] * err**2)

    def init(self, swept: Swept) -> TrainState:
        init_key, _ = stream_keys(swept.seed)
        params = nnx.split(self._new_module(swept.init_std, init_key))[1]
        opt_state = self.optimizer(swept).init(params)
        snapshots = ()
        if len(self.snapshot_steps):
            empty = jax.tree.map(lambda p: jnp.zeros((len(self.snapshot_steps),) + p.shape), params)
            snapshots = self.record(empty, params, 0)
        return TrainState(params, opt_state, snapshots)

    def record(self, snapshots, params, step):
        """Copy one model's params into the snapshot slots of `step`; snapshots: (snapshot, ...)."""
        take = self.snapshot_steps == step
        return jax.tree.map(lambda buf, p: jnp.where(_bcast(take, buf), p, buf), snapshots, params)

    def step(self, state: TrainState, swept: Swept, u: jax.Array) -> tuple[TrainState, jax.Array]:
        """One optimizer step on the batch made from uniforms u: (feature, batch)."""
        x = features_from_uniform(u, swept.feature_probability, self.layout, self.module.signed_inputs)
        loss, grads = jax.value_and_grad(self.loss)(state.params, swept, x)
        updates, opt_state = self.optimizer(swept).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state._replace(params=params, opt_state=opt_state), loss

    def draw(self, data_keys: jax.Array, t: jax.Array) -> jax.Array:
        """The uniforms of step t for each stream: (stream,) keys -> (stream, feature, batch)."""
        shape = (self.model.n_features, self.train_config.batch_size)
        return jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, t), shape))(data_keys)

    def run(self, state: TrainState, swept: Swept, stream_seeds: jax.Array,
            stream_index: jax.Array, start_step: jax.Array, n_logs: int):
        """Advance a block of models by n_logs logging intervals, in one `lax.scan`.

        Args:
          state, swept: (model, ...) pytrees, one row per model.
          stream_seeds: (stream,) the distinct seeds of the block; each is drawn once per step.
          stream_index: (model,) which stream each model reads.
          start_step: the step the block is at (a multiple of log_every).
          n_logs: static number of logging intervals to run.

        Returns:
          state after n_logs · log_every steps, and (model, n_logs) mean training losses.
        """
        log_every = self.train_config.log_every
        data_keys = jax.vmap(lambda s: stream_keys(s)[1])(stream_seeds)
        step = jax.vmap(self.step)

        def one_step(state, t):
            u = self.draw(data_keys, t)[stream_index]
            return step(state, swept, u)

        def one_interval(state, t0):
            state, losses = jax.lax.scan(one_step, state, t0 + jnp.arange(log_every))
            if len(self.snapshot_steps):
                record = jax.vmap(self.record, in_axes=(0, 0, None))
                state = state._replace(snapshots=record(state.snapshots, state.params, t0 + log_every))
            return state, jnp.mean(losses, axis=0)

        starts = start_step + log_every * jnp.arange(n_logs)
        state, history = jax.lax.scan(one_interval, state, starts)
        return state, history.T

    def train(self, swept: Swept) -> tuple[dict, jax.Array, Any]:
        """Train one model from scratch: (params, (n_logs,) loss history, snapshots), as dicts."""
        state = jax.tree.map(lambda a: a[None], self.init(swept))
        batch = jax.tree.map(lambda a: jnp.asarray(a)[None], swept)
        n_logs = self.train_config.steps // self.train_config.log_every
        state, history = self.run(state, batch, batch.seed, jnp.zeros(1, jnp.int32), 0, n_logs)
        one = jax.tree.map(lambda a: a[0], state)
        snapshots = nnx.to_pure_dict(one.snapshots) if len(self.snapshot_steps) else {}
        return nnx.to_pure_dict(one.params), history[0], snapshots


def _bcast(mask: jax.Array, like: jax.Array) -> jax.Array:
    """Reshape a (snapshot,) mask to broadcast along the snapshot axis of `like`: (snapshot, ...)."""
    return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def make_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    """The trainer for the static part of (model, train); swept fields are ignored here."""
    return _cached_trainer(_static_only(model), _static_only(train))


def _static_only(cfg):
    """A copy with every swept field at its default, so that equal static parts hash equal."""
    out = copy.copy(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata["swept"]:
            object.__setattr__(out, f.name, f.default)
    return out


@functools.lru_cache(maxsize=32)
def _cached_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    return Trainer(model, train)


__all__ = ["Swept", "TrainState", "Trainer", "make_trainer", "stream_keys"]
