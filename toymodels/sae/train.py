"""Training one SAE, written once and mapped over a grid of thousands with `vmap`.

The SAE trainer implements the engine's protocol (`toymodels.trainable`): from the static fields
of `SAEConfig` and `TrainConfig` it gives `init(swept, batch)`, `step(state, swept, batch, t)`
and `outputs(state)` of one SAE. Everything a step does happens inside the compiled scan:

- the activations are scaled by the normalisation factor found at init (E‖x‖ = √d_in), and the
  factor is folded back into the published weights by `outputs`;
- sparsity coefficients warm up linearly over `sparsity_warmup_steps`;
- Adam (the SAELens recipe) with gradient clipping and the configured LR schedule;
- unit-norm decoders lose the radial part of their gradient and are renormalised after the step;
- dead-latent bookkeeping (steps since each latent fired; firing counts over the final window,
  for `training_latent_density`), batchtopk's running threshold, and resampling every
  `resample_every`
  steps (`toymodels.sae.resample`).

A batch is (batch, d_in) activations for an SAE, or an (input, target) pair for a transcoder.
The step turns it feature-major, (d_in, batch), the layout of `toymodels.sae.architectures`'s
training pass, so that the batch is the minor axis of every array of the step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from toymodels.analysis._vectors import norm
from toymodels.config import TrainConfig, _fail
from toymodels.optim import make_optimizer
from toymodels.sae import architectures as arch
from toymodels.sae.config import SAEConfig
from toymodels.sae.resample import resample
from toymodels.sae.sparse import SparseActs
from toymodels.sources import as_source
from toymodels.trainable import TrainState, stream_keys
from toymodels.train import static_only

__all__ = ["SAEAux", "SAESwept", "SAETrainer", "make_trainer"]

#: a sweep warns of SAEs whose final training L0 is at least this fraction of d_sae.
DENSE_L0_FRACTION = 0.9
#: what to try, per architecture, when an SAE stays dense.
DENSE_ADVICE = {
    "standard": "Raise l1_coefficient (sweep it over a log grid).",
    "gated": "Raise l1_coefficient (sweep it over a log grid).",
    "jumprelu": ("JumpReLU's threshold stops learning once no pre-activation is within "
                 "jumprelu_bandwidth/2 of it: widen the bandwidth to about E‖x‖ (1.0 with "
                 "l0_coefficient=1e-3 sparsifies ‖x‖ ≈ 1 data), or use "
                 "jumprelu_sparsity_loss_mode='tanh' (see SAEConfig's docstring)."),
}

#: the swept SAEConfig fields, in the order SAESwept holds them.
COEFFICIENTS = ("l1_coefficient", "l0_coefficient", "aux_loss_coefficient", "pre_act_loss_coefficient",
                "jumprelu_bandwidth", "jumprelu_init_threshold", "jumprelu_tanh_scale",
                "topk_threshold_lr", "decoder_init_norm")


class SAESwept(NamedTuple):
    """One SAE's swept values (add leading axes for blocks of SAEs)."""

    l1_coefficient: jax.Array  # ()
    l0_coefficient: jax.Array
    aux_loss_coefficient: jax.Array
    pre_act_loss_coefficient: jax.Array
    jumprelu_bandwidth: jax.Array
    jumprelu_init_threshold: jax.Array
    jumprelu_tanh_scale: jax.Array
    topk_threshold_lr: jax.Array
    decoder_init_norm: jax.Array
    lr: jax.Array
    weight_decay: jax.Array
    seed: jax.Array  # () int32
    data: Any  # the data source's values for this SAE (a toy model's weights …), or ()

    @classmethod
    def from_configs(cls, sae: SAEConfig, train: TrainConfig, data: Any = ()) -> "SAESwept":
        train = train.resolved(SAEConfig.train_recipe)
        values = {name: np.float32(getattr(sae, name)) for name in COEFFICIENTS}
        return cls(**values, lr=np.float32(train.lr), weight_decay=np.float32(train.weight_decay),
                   seed=np.int32(train.seed), data=data)


class SAEAux(NamedTuple):
    """What an SAE carries between steps besides its parameters and optimizer state."""

    steps_since_fired: jax.Array  # (d_sae,) int32
    fire_count: jax.Array  # (d_sae,) float32 firings over the final dead_feature_window steps
    threshold: jax.Array  # () float32 batchtopk's running threshold
    scale_in: jax.Array  # () float32 activation normalisation of the input (1 if none)
    scale_out: jax.Array  # () float32 … and of the target


def count_positive(F: jax.Array) -> jax.Array:
    """(d_sae,) float32: how many of each latent's batch entries are positive; F (d_sae, batch).

    Counted in uint8 over slices of 128 columns first, then in float32: XLA fuses that into one
    pass over F, where a float32 count wrote F > 0 out as another (d_sae, batch) array."""
    d_sae, batch = F.shape
    if batch % 128 or batch // 128 > 255:
        return jnp.sum(F > 0, axis=1, dtype=jnp.float32)
    slices = (F > 0).astype(jnp.uint8).reshape(d_sae, batch // 128, 128)
    return jnp.sum(jnp.sum(slices, axis=1, dtype=jnp.uint8), axis=1, dtype=jnp.float32)


def geometric_median(points: jax.Array, iterations: int = 100, eps: float = 1e-8) -> jax.Array:
    """argmin_y Σ_b ‖x_b − y‖ by Weiszfeld's iteration from the mean: (batch, d) -> (d,)."""

    def update(_, y):
        w = 1.0 / jnp.maximum(norm(points - y), eps)
        return jnp.sum(w[:, None] * points, axis=0) / jnp.sum(w)

    return jax.lax.fori_loop(0, iterations, update, jnp.mean(points, axis=0))


@dataclasses.dataclass(frozen=True)
class SAETrainer:
    """The pure functions that train one SAE of a given static configuration on given data."""

    config: SAEConfig  # static fields only
    train_config: TrainConfig  # resolved against SAEConfig.train_recipe
    data: Any  # the source (in-graph) or host data; see toymodels.sources

    @property
    def source(self):
        return None if self.data.on_host else self.data

    @property
    def host_data(self):
        return self.data if self.data.on_host else None

    @property
    def data_axes(self) -> tuple:
        return self.data.axes

    @functools.cached_property
    def module(self) -> type[arch.Standard]:
        return arch.ARCHITECTURES[self.config.architecture]

    @functools.cached_property
    def graphdef(self):
        abstract = nnx.eval_shape(lambda: self._new_module(0.1, 0.01, jax.random.key(0)))
        return nnx.split(abstract)[0]

    def _new_module(self, decoder_init_norm, init_threshold, key) -> arch.Standard:
        return self.module(self.config, decoder_init_norm=decoder_init_norm,
                           jumprelu_init_threshold=init_threshold, rngs=nnx.Rngs(params=key))

    def swept(self, config: SAEConfig, train: TrainConfig, data_index: int) -> SAESwept:
        return SAESwept.from_configs(config, train, self.data.point_values(data_index))

    def describe_data(self) -> dict[str, Any]:
        return self.data.describe()

    def data_variables(self) -> dict[str, tuple[tuple[str, ...], Any]]:
        return self.data.variables()

    def optimizer(self, swept: SAESwept) -> optax.GradientTransformation:
        return make_optimizer(self.train_config, swept.lr, swept.weight_decay)

    def _inputs(self, batch) -> tuple[jax.Array, jax.Array]:
        return batch if self.config.is_transcoder else (batch, batch)

    def _context(self, swept: SAESwept, aux: SAEAux, t) -> arch.Context:
        warmup = self.config.sparsity_warmup_steps
        warm = jnp.minimum(jnp.asarray(t, jnp.float32) / warmup, 1.0) if warmup else 1.0
        return arch.Context(
            l1_coefficient=warm * swept.l1_coefficient,
            l0_coefficient=warm * swept.l0_coefficient,
            aux_loss_coefficient=swept.aux_loss_coefficient,
            pre_act_loss_coefficient=swept.pre_act_loss_coefficient,
            jumprelu_bandwidth=swept.jumprelu_bandwidth,
            jumprelu_tanh_scale=swept.jumprelu_tanh_scale,
            dead=aux.steps_since_fired > self.config.dead_feature_window,
            threshold=aux.threshold,
        )

    def loss(self, params: dict, X: jax.Array, T: jax.Array, ctx: arch.Context):
        """mean_b ‖x̂ − t‖² plus the architecture's terms; X (batch, d_in), T (batch, d_out).

        Returns (total, (feature_acts (batch, d_sae), x̂ (batch, d_out), {term: value})).
        """
        total, (F, X_hat, terms) = self.loss_columns(params, X.T, T.T, ctx)
        if isinstance(F, SparseActs):
            F = F.dense()
        return total, (F.T, X_hat.T, terms)

    def loss_columns(self, params: dict, X: jax.Array, T: jax.Array, ctx: arch.Context):
        """`loss` on a feature-major batch, what the step differentiates: X (d_in, batch),
        T (d_out, batch); feature_acts (d_sae, batch), or a `SparseActs` of the selected latents
        when decoding sparsely, and x̂ (d_out, batch)."""
        module = nnx.merge(self.graphdef, params)
        F, extras = module.train_encode(X, ctx)
        X_hat = module.decode(F)
        terms = {"mse": jnp.mean(jnp.sum((X_hat - T) ** 2, axis=0))}
        terms |= module.penalties(X, T, F, X_hat, extras, ctx)
        return sum(terms.values()), (F, X_hat, terms)

    def init(self, swept: SAESwept, batch) -> TrainState:
        """A fresh SAE; `batch` (the first batch) sets the normalisation and b_dec's init."""
        cfg = self.config
        init_key, _ = stream_keys(swept.seed)
        module = self._new_module(swept.decoder_init_norm, swept.jumprelu_init_threshold, init_key)
        params = nnx.to_pure_dict(nnx.split(module)[1])
        X, T = self._inputs(batch)
        if cfg.normalize_activations == "expected_average_only_in":
            scale_in = jnp.sqrt(cfg.d_in) / jnp.mean(norm(X))
            scale_out = scale_in if not cfg.is_transcoder else (
                jnp.sqrt(cfg.output_width) / jnp.mean(norm(T)))
        else:
            scale_in = scale_out = jnp.float32(1.0)
        if cfg.b_dec_init_method == "mean":
            params["b_dec"] = jnp.mean(T * scale_out, axis=0)
        elif cfg.b_dec_init_method == "geometric_median":
            params["b_dec"] = geometric_median(T * scale_out)
        aux = SAEAux(
            steps_since_fired=jnp.zeros((cfg.d_sae,), jnp.int32),
            fire_count=jnp.zeros((cfg.d_sae,), jnp.float32),
            threshold=jnp.float32(0.0),
            scale_in=jnp.float32(scale_in),
            scale_out=jnp.float32(scale_out),
        )
        return TrainState(params, self.optimizer(swept).init(params), aux, ())

    def step(self, state: TrainState, swept: SAESwept, batch, t) -> tuple[TrainState, dict]:
        """One optimizer step on `batch`; t: () int32, the step's index."""
        cfg, aux, steps = self.config, state.aux, self.train_config.steps
        X, T = self._inputs(batch)
        X, T = X.T * aux.scale_in, T.T * aux.scale_out  # feature-major: (d_in, batch) …
        ctx = self._context(swept, aux, t)
        (total, (F, X_hat, terms)), grads = jax.value_and_grad(self.loss_columns, has_aux=True)(
            state.params, X, T, ctx)
        if cfg.has_unit_norm_decoder:
            # Only the tangential part of the gradient moves a unit-norm row (its rows have norm 1:
            # from init, after every step's renormalisation and after resampling, as SAELens's).
            w = state.params["W_dec"]
            g = grads["W_dec"]
            grads = grads | {"W_dec": g - jnp.sum(g * w, axis=-1, keepdims=True) * w}
        optimizer = self.optimizer(swept)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if cfg.has_unit_norm_decoder:
            params = params | {"W_dec": params["W_dec"] / norm(params["W_dec"], keepdims=True)}

        if isinstance(F, SparseActs):
            fired, acts = F.firing_counts(), F.values
        else:
            fired, acts = count_positive(F), F  # (d_sae,) firings
        since = jnp.where(fired > 0, 0, aux.steps_since_fired + 1)
        window = t >= steps - min(cfg.dead_feature_window, steps)
        threshold = aux.threshold
        if self.module.running_threshold:
            positive = acts > 0
            smallest = jnp.min(jnp.where(positive, acts, jnp.inf))
            lr = swept.topk_threshold_lr
            threshold = jnp.where(jnp.any(positive), (1 - lr) * threshold + lr * smallest, threshold)
        aux = aux._replace(steps_since_fired=since, threshold=threshold,
                           fire_count=aux.fire_count + jnp.where(window, fired, 0))
        if cfg.resample != "none":
            params, opt_state, aux = self._maybe_resample(params, opt_state, aux, swept, X.T,
                                                          T.T, X_hat.T, t)

        batch = X.shape[1]
        var = jnp.sum((T - jnp.mean(T, axis=1, keepdims=True)) ** 2)
        metrics = {
            "loss": total,
            "mse": terms["mse"] / aux.scale_out**2,  # in the data's own units
            "fvu": batch * terms["mse"] / jnp.where(var > 0, var, 1.0),
            "l0": jnp.sum(fired) / batch,
        }
        return TrainState(params, opt_state, aux, state.snapshots), metrics

    def _maybe_resample(self, params, opt_state, aux, swept, X, T, X_hat, t):
        cfg = self.config
        due = ((t + 1) % cfg.resample_every == 0) & (t + 1 < self.train_config.steps)
        dead = aux.steps_since_fired > cfg.dead_feature_window
        key = jax.random.fold_in(stream_keys(swept.seed)[0], t)

        def apply(operands):
            params, opt_state, since = operands
            params, opt_state = resample(cfg.resample, params, opt_state, self.optimizer(swept),
                                         dead, key, X, T, X_hat, cfg.subtracts_b_dec)
            return params, opt_state, jnp.where(dead, 0, since)

        params, opt_state, since = jax.lax.cond(
            due, apply, lambda operands: operands, (params, opt_state, aux.steps_since_fired))
        return params, opt_state, aux._replace(steps_since_fired=since)

    def _published(self, params: dict, aux: SAEAux) -> dict[str, jax.Array]:
        """Parameters in SAELens's form with the normalisation folded in (W_enc·s, W_dec/s …)."""
        out = dict(nnx.merge(self.graphdef, params).published(aux.threshold))
        out["W_enc"] = out["W_enc"] * aux.scale_in
        out["W_dec"] = out["W_dec"] / aux.scale_out
        out["b_dec"] = out["b_dec"] / aux.scale_out
        return out

    def outputs(self, state: TrainState) -> dict[str, jax.Array]:
        aux = state.aux
        samples = min(self.config.dead_feature_window, self.train_config.steps) * self.train_config.batch_size
        return self._published(state.params, aux) | {
            "training_latent_density": aux.fire_count / samples,
            "activation_scale": aux.scale_in,
        }

    def snapshot_outputs(self, params, aux) -> dict[str, jax.Array]:
        return self._published(params, aux)

    def result_dims(self) -> dict[str, tuple[str, ...]]:
        return arch.param_dims(self.config) | {"training_latent_density": ("latent",),
                                               "activation_scale": ()}

    def point_bytes(self) -> int:
        """The step's (d_sae, batch) pre-activations and feature_acts, both live through the
        backward pass (or the input and target where they are wider). Counting both halves the
        blocks of small SAEs against counting one: 1000 SAEs of d_in 2, d_sae 10 at batch 1024
        measured about 70,000 SAE-steps/s on 2 cores in blocks of 32 per device against 44,000
        in blocks of 64."""
        cfg = self.config
        return 8 * max(cfg.d_in, cfg.d_sae, cfg.output_width) * self.train_config.batch_size

    def check_results(self, results) -> list[str]:
        """SAEs whose final training L0 is at least DENSE_L0_FRACTION of d_sae never became
        sparse (jumprelu at its defaults on small data, a standard SAE with a tiny l1_coefficient).
        The TopK family (k set) is left out: its L0 is k by construction."""
        cfg = self.config
        if cfg.k is not None or "l0" not in results:
            return []
        dense = results["l0"] >= DENSE_L0_FRACTION * cfg.d_sae
        if not bool(dense.any()):
            return []
        worst = float(results["l0"].max())
        return [f"{int(dense.sum())} of {dense.size} {cfg.architecture} SAEs did not become sparse: "
                f"training L0 ≥ {DENSE_L0_FRACTION:.0%} of d_sae={cfg.d_sae} (up to {worst:.1f}). "
                + DENSE_ADVICE.get(cfg.architecture, DENSE_ADVICE["standard"])]


def make_trainer(sae: SAEConfig, train: TrainConfig, data: Any) -> SAETrainer:
    """The trainer of the static part of (sae, train) on `data`, checked against the config.

    Raises ValueError (before anything compiles) when the data's width is not d_in (or d_out).
    """
    if data is None:
        _fail("data", "GroundTruth, ToyActivations, an activation store or an iterable of "
              "(batch, d_in) arrays for an SAE", data)
    train = train.resolved(SAEConfig.train_recipe)
    if sae.sparsity_warmup_steps > train.steps:
        _fail("sparsity_warmup_steps", f"at most steps={train.steps}", sae.sparsity_warmup_steps)
    source = as_source(data, sae, train)
    return SAETrainer(static_only(sae), static_only(train), source)
