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
from toymodels.devices import memory_bytes
from toymodels.finite import FiniteDataset, dataset_bytes
from toymodels.models import MODELS, EmbeddedMLP, ToyModel
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
        """The swept values of a single configured model (`JermynSwept` for the jermyn kinds)."""
        if model.is_jermyn:
            return JermynSwept.from_configs(model, train)
        train = train.resolved(model.train_recipe)
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
    unit_norm: bool = False  # scale each sample to unit norm (Henighan et al.'s preprocessing)

    def draw(self, key, batch_size: int) -> jax.Array:
        return jax.random.uniform(key, (len(self.layout.gate), batch_size))

    def batch(self, u: jax.Array, swept) -> jax.Array:
        x = features_from_uniform(u, swept.feature_probability, self.layout, self.signed)
        if self.unit_norm:
            norm = jnp.sqrt(jnp.sum(x * x, axis=0, keepdims=True))
            x = x / jnp.where(norm > 0, norm, 1.0)
        return x


@dataclasses.dataclass(frozen=True)
class Trainer:
    """The pure functions that train one toy model of a given static configuration."""

    model: ToyModelConfig
    train_config: TrainConfig  # resolved against model.train_recipe

    @functools.cached_property
    def module(self) -> type[ToyModel]:
        return MODELS[self.model.kind]

    @functools.cached_property
    def source(self) -> ToyFeatures | FiniteDataset:
        m = self.model
        layout = FeatureLayout.make(m.n_features, m.n_correlated_pairs, m.n_anticorrelated_pairs)
        return self.finite(ToyFeatures(layout, self.module.signed_inputs, m.unit_norm_inputs))

    def finite(self, stream):
        """The model's stream, or its fixed dataset when it trains on one (`dataset_size`)."""
        m = self.model
        return stream if m.dataset_size is None else FiniteDataset(stream, m.dataset_size,
                                                                   m.test_size)

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

    def check_results(self, results) -> list[str]:  # noqa: ARG002 (nothing to warn of yet)
        return []

    def training_set(self, swept: Swept) -> Any:
        """The fixed training set a model with these swept values trains on, sample-major:
        (dataset_size, n_features) for the TMS kinds (an `Example` of such arrays for the jermyn
        kinds): exactly what its steps see, drawn from its seed's stream."""
        if not isinstance(self.source, FiniteDataset):
            raise ValueError("the model has no fixed training set: set dataset_size")
        draws = self.source.draws(stream_keys(jnp.int32(swept.seed))[1])[0]
        batch = self.source.batch(draws, jax.tree.map(jnp.asarray, swept))
        return jax.tree.map(lambda a: np.asarray(a).T, batch)

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


class JermynSwept(NamedTuple):
    """One jermyn-kind model's swept values (add leading axes for blocks of models)."""

    feature_probability: jax.Array  # (feature,) per draw (`ToyModelConfig.draw_probabilities`)
    l1_coefficient: jax.Array  # ()
    init_bias: jax.Array  # ()
    bias_decay: jax.Array  # ()
    lr: jax.Array  # ()
    weight_decay: jax.Array  # ()
    seed: jax.Array  # () int32

    @classmethod
    def from_configs(cls, model: ToyModelConfig, train: TrainConfig) -> "JermynSwept":
        train = train.resolved(model.train_recipe)
        return cls(
            feature_probability=np.asarray(model.draw_probabilities(), np.float32),
            l1_coefficient=np.float32(model.l1_coefficient),
            init_bias=np.float32(model.init_bias),
            bias_decay=np.float32(model.bias_decay),
            lr=np.float32(train.lr),
            weight_decay=np.float32(train.weight_decay),
            seed=np.int32(train.seed),
        )


class Example(NamedTuple):
    """A jermyn-kind batch, feature-major: what the model reads and what it must output."""

    inputs: jax.Array  # (embed, batch): x = v U
    target: jax.Array  # (feature, batch) v or |v|; (target, batch) v U_out for random projection


@dataclasses.dataclass(frozen=True, eq=False)
class EmbeddedFeatures:
    """The jermyn kinds' data (a `toymodels.trainable.Source`): sparse features v read through a
    fixed embedding U, with the task's target.

    One stream draws uniforms u: (draws, feature, batch); v = features_from_uniform(u[0]) for the
    autoencoder and random-projection tasks, v = v₁ − v₂ from two independent draws for abs (their
    code: "different samples have different sparse choices"). The embeddings are constants of the
    compiled step, the same for every model: (feature, embed) each.
    """

    layout: FeatureLayout
    embedding: np.ndarray  # (feature, embed) U
    target_embedding: np.ndarray | None  # (feature, embed) U_out, random projection only
    difference: bool  # abs: v = v₁ − v₂, target |v|

    def draw(self, key, batch_size: int) -> jax.Array:
        draws = 2 if self.difference else 1
        return jax.random.uniform(key, (draws, len(self.layout.gate), batch_size))

    def features(self, u: jax.Array, swept) -> jax.Array:
        """v: (feature, batch), the features before embedding."""
        v = features_from_uniform(u[0], swept.feature_probability, self.layout)
        if self.difference:
            v = v - features_from_uniform(u[1], swept.feature_probability, self.layout)
        return v

    def batch(self, u: jax.Array, swept) -> Example:
        v = self.features(u, swept)
        if self.difference:
            target = jnp.abs(v)
        elif self.target_embedding is not None:
            target = self.target_embedding.T @ v
        else:
            target = v
        return Example(self.embedding.T @ v, target)


@dataclasses.dataclass(frozen=True)
class JermynTrainer(Trainer):
    """Jermyn et al.'s training of one model (`model3.py`'s `train`), for the jermyn kinds.

    loss = Σ (out − target)² / batch + λ Σ_k |h_k| / batch, summed over outputs (TMS averages);
    the logged `loss` is the first term alone, as theirs, and `hidden_l1` is Σ_k |h_k| / batch.
    After every optimizer step t (from 0) with t < steps/2, b_in ← b_in (1 − bias_decay · lr),
    lr the peak rate (their `learning_rate`, not the scheduled one). b_in is their only bias.
    """

    @functools.cached_property
    def source(self) -> EmbeddedFeatures | FiniteDataset:
        m = self.model
        layout = FeatureLayout.make(m.n_features, m.n_correlated_pairs, m.n_anticorrelated_pairs)
        embeddings = m.embeddings()
        target = embeddings[1] if m.kind == "jermyn_random_projection" else None
        return self.finite(EmbeddedFeatures(layout, embeddings[0], target, m.kind == "jermyn_abs"))

    @property
    def d_out(self) -> int:
        return self.model.d_embed if self.model.kind == "jermyn_random_projection" else \
            self.model.n_features

    def _new_module(self, init_bias, key) -> EmbeddedMLP:
        m = self.model
        return self.module(m.d_embed, m.d_hidden, self.d_out, activation=m.activation,
                           init_bias=init_bias, rngs=nnx.Rngs(params=key))

    def objective(self, params, swept: JermynSwept, batch: Example):
        """(loss + λ · hidden_l1, (loss, hidden_l1)) on a feature-major batch."""
        model = nnx.merge(self.graphdef, params)
        h = model.hidden(batch.inputs)
        n = batch.inputs.shape[-1]
        loss = jnp.sum((model.readout(h) - batch.target) ** 2) / n
        hidden_l1 = jnp.sum(jnp.abs(h)) / n
        return loss + swept.l1_coefficient * hidden_l1, (loss, hidden_l1)

    def loss(self, params, swept: JermynSwept, batch: Example) -> jax.Array:
        """Σ (out − target)² / batch, the reconstruction part of the objective."""
        return self.objective(params, swept, batch)[1][0]

    def init(self, swept: JermynSwept, batch=None) -> TrainState:  # noqa: ARG002
        init_key, _ = stream_keys(swept.seed)
        params = nnx.split(self._new_module(swept.init_bias, init_key))[1]
        return TrainState(params, self.optimizer(swept).init(params), (), ())

    def step(self, state: TrainState, swept: JermynSwept, batch: Example, t
             ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One optimizer step, then the first half's bias decay (their order)."""
        grad = jax.value_and_grad(self.objective, has_aux=True)
        (_, (loss, hidden_l1)), grads = grad(state.params, swept, batch)
        updates, opt_state = self.optimizer(swept).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        decay = jnp.where(t < self.train_config.steps / 2, 1.0 - swept.bias_decay * swept.lr, 1.0)
        params = decay_bias(params, decay)
        return (state._replace(params=params, opt_state=opt_state),
                {"loss": loss, "hidden_l1": hidden_l1})

    def swept(self, model: ToyModelConfig, train: TrainConfig, data_index: int) -> JermynSwept:  # noqa: ARG002
        return JermynSwept.from_configs(model, train)

    def point_bytes(self) -> int:
        m = self.model
        return 4 * max(m.n_features, m.d_hidden, m.d_embed) * self.train_config.batch_size


def decay_bias(params, factor: jax.Array):
    """params with b_in scaled by `factor` (every other parameter untouched)."""
    def scale(path, leaf):
        return leaf * factor if path[0] == jax.tree_util.DictKey("b_in") else leaf

    return jax.tree_util.tree_map_with_path(scale, params)


def make_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    """The trainer for the static part of (model, train); swept fields are ignored here.

    Raises ValueError when a finite dataset's minibatch is larger than the dataset, or when the
    dataset and one model's step would not fit in the default device's memory."""
    train = train.resolved(model.train_recipe)
    if model.dataset_size is not None:
        _check_dataset(model, train)
    return _cached_trainer(static_only(model), static_only(train))


def _check_dataset(model: ToyModelConfig, train: TrainConfig) -> None:
    size = model.dataset_size
    if train.batch_size > size:
        raise ValueError(f"batch_size must be at most dataset_size={size} (a minibatch of the "
                         f"fixed dataset; None: full batch); got {train.batch_size}")
    values = model.n_features * (2 if model.kind == "jermyn_abs" else 1)
    need = dataset_bytes(max(values, model.d_hidden), size, model.test_size, train.batch_size)
    have = memory_bytes(jax.devices()[0])
    if need > have:
        raise ValueError(
            f"dataset_size={size} needs about {need / 2**30:.1f} GiB at batch_size="
            f"{train.batch_size} (its {size} × {values} draws, the test set of test_size="
            f"{model.test_size} and one model's activations), more than the "
            f"{have / 2**30:.1f} GiB of {jax.devices()[0].platform} memory; lower dataset_size, "
            "test_size or batch_size")


def training_set(model: ToyModelConfig, seed: int = 0) -> np.ndarray:
    """The fixed training set of a model with a `dataset_size`, as it trains on it:
    (dataset_size, n_features), gated by its feature probabilities and scaled as
    `unit_norm_inputs` says, drawn from the stream of `seed` (`TrainConfig.seed`). The hidden
    vectors of the training points are `training_set(model, seed) @ W`."""
    if model.dataset_size is None:
        raise ValueError("dataset_size must be set for a model to have a fixed training set")
    if model.is_jermyn:
        raise ValueError(f"training_set gives the TMS kinds' inputs; got kind={model.kind!r}")
    train = TrainConfig(seed=seed)
    return make_trainer(model, train).training_set(Swept.from_configs(model, train))


def static_only(cfg):
    """A copy with every swept field at its default, so that equal static parts hash equal."""
    out = copy.copy(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata["swept"]:
            object.__setattr__(out, f.name, f.default)
    return out


@functools.lru_cache(maxsize=32)
def _cached_trainer(model: ToyModelConfig, train: TrainConfig) -> Trainer:
    return (JermynTrainer if model.is_jermyn else Trainer)(model, train)


__all__ = ["EmbeddedFeatures", "Example", "JermynSwept", "JermynTrainer", "Swept", "ToyFeatures",
           "Trainer", "decay_bias", "make_trainer", "static_only", "training_set"]
