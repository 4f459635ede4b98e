"""The optimizer and learning-rate schedule a `TrainConfig` describes, as one optax transform.

Shared by every trainer. The learning rate and weight decay are arrays (swept values), so one
compiled program serves every grid point; the rest of the config is static.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from toymodels.config import TrainConfig

__all__ = ["lamb", "make_optimizer", "schedule", "scale_by_clamped_trust_ratio",
           "scale_by_undebiased_adam"]


def schedule(train: TrainConfig, lr) -> optax.ScalarOrSchedule:
    """The learning rate at each step (optax's count: updates done so far).

    constant: lr.
    warmup_cosine: 0 → lr linearly over warmup_steps, then cosine decay to lr·final_lr_fraction.
    warmup_decay (SAELens's constant scheduler with warm-up and decay): lr·(t+1)/warmup_steps
    during warm-up, lr, then a linear fall to lr·final_lr_fraction over the last decay_steps.
    cosine_annealing (torch's CosineAnnealingLR(T_max, eta_min), stepped after every optimizer
    step as Jermyn et al. do): η_t = η_min + (lr − η_min)(1 + cos(π t / T_max))/2 with
    T_max = annealing_steps and η_min = lr·final_lr_fraction. torch computes it recursively,
    η_t = η_min + (η_{t−1} − η_min)(1 + cos(π t/T))/(1 + cos(π (t−1)/T)), with a special case at
    t = T_max + 1 (mod 2 T_max) where the ratio is 0/0; the recursion follows this closed form for
    every t, so past T_max the rate climbs back to lr at 2 T_max and the cycle repeats.
    """
    if train.schedule == "warmup_cosine":
        # As optax.warmup_cosine_decay_schedule, which cannot take a traced (swept) lr.
        warmup, cosine_steps = train.warmup_steps, max(train.steps - train.warmup_steps, 1)
        end = lr * train.final_lr_fraction

        def warmup_cosine(count):
            t = jnp.asarray(count, jnp.float32)
            rising = lr * t / warmup if warmup else lr
            progress = jnp.clip((t - warmup) / cosine_steps, 0.0, 1.0)
            falling = end + (lr - end) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
            return jnp.where(t < warmup, rising, falling)

        return warmup_cosine
    if train.schedule == "warmup_decay":
        warmup, decay = train.warmup_steps, train.decay_steps
        decay_start = train.steps - decay

        def warmup_decay(count):
            t = jnp.asarray(count, jnp.float32)
            warm = jnp.minimum((t + 1.0) / warmup, 1.0) if warmup else 1.0
            fall = jnp.clip((t - decay_start) / decay, 0.0, 1.0) if decay else 0.0
            return lr * warm * (1.0 - (1.0 - train.final_lr_fraction) * fall)

        return warmup_decay
    if train.schedule == "cosine_annealing":
        period, low = train.annealing_steps, lr * train.final_lr_fraction

        def cosine_annealing(count):
            t = jnp.asarray(count, jnp.float32)
            return low + (lr - low) * 0.5 * (1.0 + jnp.cos(jnp.pi * t / period))

        return cosine_annealing
    return lr


class UndebiasedAdamState(NamedTuple):
    mu: optax.Updates
    nu: optax.Updates


def scale_by_undebiased_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6
                             ) -> optax.GradientTransformation:
    r"""Adam's direction without bias correction: u = m_t / (√v_t + ε).

    m_t = β₁ m_{t−1} + (1 − β₁) g, v_t = β₂ v_{t−1} + (1 − β₂) g², both from 0. LAMB's step in
    torch_optimizer (its default debias=False, "paper v3 does not use debiasing"); optax's
    `scale_by_adam` always corrects the bias.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return UndebiasedAdamState(zeros, zeros)

    def update(updates, state, params=None):  # noqa: ARG001
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, updates)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, updates)
        step = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
        return step, UndebiasedAdamState(mu, nu)

    return optax.GradientTransformation(init, update)


def scale_by_clamped_trust_ratio(clamp_value: float = 10.0) -> optax.GradientTransformation:
    r"""LAMB's layer-wise trust ratio: u ← u · min(‖θ‖, clamp) / ‖u‖, per parameter array.

    The ratio is 1 where either norm is 0. torch_optimizer.Lamb clamps the weight norm at
    `clamp_value` = 10; optax's `scale_by_trust_ratio` does not clamp.
    """

    def update(updates, state, params):
        def scale(u, p):
            weight_norm = jnp.minimum(jnp.linalg.norm(p), clamp_value)
            step_norm = jnp.linalg.norm(u)
            zero = (weight_norm == 0) | (step_norm == 0)
            return u * jnp.where(zero, 1.0, weight_norm / jnp.where(zero, 1.0, step_norm))

        return jax.tree.map(scale, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def lamb(learning_rate: optax.ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-6, weight_decay=0.0, clamp_value: float = 10.0
         ) -> optax.GradientTransformation:
    r"""LAMB as torch_optimizer.Lamb (0.3.0) computes it, which Jermyn et al. train with.

    Per parameter array θ: s = m_t / (√v_t + ε) + λ θ (no bias correction), then
    θ ← θ − η · min(‖θ‖, clamp_value) / ‖s‖ · s (ratio 1 where a norm is 0). torch_optimizer's
    defaults: β = (0.9, 0.999), ε = 1e-6, λ = 0, clamp_value = 10, debias=False. optax.lamb
    differs: it corrects Adam's bias and does not clamp ‖θ‖ (You et al. 2019, arXiv 1904.00962).
    """
    return optax.chain(
        scale_by_undebiased_adam(b1, b2, eps),
        optax.add_decayed_weights(weight_decay),
        scale_by_clamped_trust_ratio(clamp_value),
        optax.scale_by_learning_rate(learning_rate),
    )


_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    # torch.optim.AdamW: decoupled decay lr·wd·θ on every parameter, biases included.
    "adamw": lambda t, lr, wd: optax.adamw(lr, t.b1, t.b2, t.eps, weight_decay=wd),
    "adam": lambda t, lr, wd: optax.adam(lr, t.b1, t.b2, t.eps),
    "sgd": lambda t, lr, wd: optax.sgd(lr, momentum=t.momentum or None),
    "lamb": lambda t, lr, wd: lamb(lr, t.b1, t.b2, t.eps, weight_decay=wd),
}


def make_optimizer(train: TrainConfig, lr, weight_decay) -> optax.GradientTransformation:
    """The optimizer of a resolved `train` (see `TrainConfig.resolved`), with the given lr and decay.

    Gradients are clipped to `max_grad_norm` (global norm, as torch's clip_grad_norm_) first when
    it is finite.
    """
    if train.optimizer is None or train.max_grad_norm is None or train.eps is None:
        raise ValueError("make_optimizer needs a resolved TrainConfig (see TrainConfig.resolved)")
    opt = _OPTIMIZERS[train.optimizer](train, schedule(train, lr), weight_decay)
    if math.isfinite(train.max_grad_norm):
        opt = optax.chain(optax.clip_by_global_norm(train.max_grad_norm), opt)
    return opt
