"""Training one toy model, written once and mapped over thousands with `vmap`.

`make_trainer(model, train)` builds, from the configs' static fields only, the pure functions of
one toy model's training run (the `toymodels.trainable.Trainer` protocol): `init(swept, batch)`,
`step(state, swept, x, t)` and `outputs(state)`. `swept` (a `Swept`) carries everything that may
differ between grid points as arrays, so one compilation serves the whole grid. The data is the
toy model's own sparse features (`ToyFeatures`), drawn inside the compiled step from a stream
that depends only on the seed. `Trainer.train(swept)` is the plain single-model run; the sweep
engine runs the same functions on blocks of models through `toymodels.loop`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from toymodels import loop
from toymodels.config import ToyModelConfig, TrainConfig
from toymodels.data import FeatureLayout, features_from_uniform
from toymodels.models import MODELS, ToyModel
from toymodels.optim import make_optimizer
from toymodels.trainable import TrainState, stream_keys


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
        train = train.resolved(ToyModelConfig.train_recipe)
        init_std = model.init_std if model.init_std is not None else model.xavier_std()
        return cls(
            feature_probability=np.asarray(model.probabilities(), np.float32),
            importance=np.asarray(model.importances(), np.float32),
            init_std=np.float32(init_std),
            lr=np.float32(train.lr),
            weight_decay=np.float32(train.weight_decay),
            seed=np.int32(train.seed),
        )


@dataclasses.dataclass(frozen=True)
class ToyFeatures:
    """A toy model's input features (a `toymodels.trainable.Source`), feature-major.

    One stream draws the uniforms u: (feature, batch); each model gates and scales them with its
    own feature probabilities (`features_from_uniform`).
    """

    layout: FeatureLayout
    signed: bool

    def draw(self, key, batch_size: int) -> jax.Array:
        return jax.random.uniform(key, (len(self.layout.gate), batch_size))

    def batch(self, u: jax.Array, swept) -> jax.Array:
        return features_from_uniform(u, swept.feature_probability, self.layout, self.signed)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The pure functions that train one toy model of a given static configuration."""

    model: ToyModelConfig
    train_config: TrainConfig  # resolved against ToyModelConfig.train_recipe

    @functools.cached_property
    def module(self) -> type[ToyModel]:
        return MODELS[self.model.kind]

    @functools.cached_property
    def source(self) -> ToyFeatures:
        m = self.model
        layout = FeatureLayout.make(m.n_features, m.n_correlated_pairs, m.n_anticorrelated_pairs)
        return ToyFeatures(layout, self.module.signed_inputs)

    @functools.cached_property
    def graphdef(self):
        abstract = nnx.eval_shape(self._new_module, 1.0, jax.random.key(0))
        return nnx.split(abstract)[0]

    def _new_module(self, init_std, key) -> ToyModel:
        m = self.model
        return self.module(m.n_features, m.d_hidden, init_std=init_std, rngs=nnx.Rngs(params=key))

    def optimizer(self, swept: Swept) -> optax.GradientTransformation:
        return make_optimizer(self.train_config, swept.lr, swept.weight_decay)

    def loss(self, params, swept: Swept, x: jax.Array) -> jax.Array:
        """Σ_i I_i (target(x)_i − x'_i)², averaged over the batch and the features.

        x: (feature, batch), feature-major (see `toymodels.models`).
        """
        model = nnx.merge(self.graphdef, params)
        err = self.module.target(x) - model(x)
        return jnp.mean(swept.importance[:, None] * err**2)

    def init(self, swept: Swept, batch=None) -> TrainState:  # noqa: ARG002 (no data-dependent init)
        init_key, _ = stream_keys(swept.seed)
        params = nnx.split(self._new_module(swept.init_std, init_key))[1]
        return TrainState(params, self.optimizer(swept).init(params), (), ())

    def step(self, state: TrainState, swept: Swept, x: jax.Array, t=None  # noqa: ARG002
             ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimizer step on the feature-major batch x: (feature, batch)."""
        loss, grads = jax.value_and_grad(self.loss)(state.params, swept, x)
        updates, opt_state = self.optimizer(swept).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state._replace(params=params, opt_state=opt_state), {"loss": loss}

    def outputs(self, state: TrainState) -> dict[str, jax.Array]:
        return self.snapshot_outputs(state.params, state.aux)

    def snapshot_outputs(self, params, aux) -> dict[str, jax.Array]:  # noqa: ARG002
        return nnx.to_pure_dict(params)

    def result_dims(self) -> dict[str, tuple[str, ...]]:
        return dict(self.module.param_dims)

    #: toy models draw their own data: no host data, no data axes.
    host_data = None
    data_axes: ClassVar[tuple] = ()

    def swept(self, model: ToyModelConfig, train: TrainConfig, data_index: int) -> Swept:  # noqa: ARG002
        return Swept.from_configs(model, train)

    def describe_data(self) -> None:
        return None  # the data is the model's own (its config says it all)

    def data_variables(self) -> dict:
        return {}

    def point_bytes(self) -> int:
        return 4 * max(self.model.n_features, self.model.d_hidden) * self.train_config.batch_size

    def train(self, swept: Swept) -> tuple[dict, jax.Array, Any]:
        """Train one model from scratch: (params, (n_logs,) loss history, snapshots), as dicts."""
        batch = jax.tree.map(lambda a: jnp.asarray(a)[None], swept)
        feed = loop.Streams(batch.seed, jnp.zeros(1, jnp.int32))
        state = loop.init(self, batch, feed)
        n_logs = self.train_config.steps // self.train_config.log_every
        state, history = loop.run(self, state, batch, feed, jnp.int32(0), n_logs)
        out = jax.tree.map(lambda a: a[0], loop.outputs(self, state))
        params = {k: out[k] for k in self.module.param_dims}
        snapshots = {k: out[f"{k}_snapshot"] for k in self.module.param_dims
                     if f"{k}_snapshot" in out}
        return params, history["loss"][0], snapshots


def make_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    """The trainer for the static part of (model, train); swept fields are ignored here."""
    train = train.resolved(ToyModelConfig.train_recipe)
    return _cached_trainer(static_only(model), static_only(train))


def static_only(cfg):
    """A copy with every swept field at its default, so that equal static parts hash equal."""
    out = copy.copy(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata["swept"]:
            object.__setattr__(out, f.name, f.default)
    return out


@functools.lru_cache(maxsize=32)
def _cached_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    return Trainer(model, train)


__all__ = ["Swept", "ToyFeatures", "Trainer", "make_trainer", "static_only"]
