"""The optimizer and learning-rate schedule a `TrainConfig` describes, as one optax transform.

Shared by every trainer. The learning rate and weight decay are arrays (swept values), so one
compiled program serves every grid point; the rest of the config is static.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
import optax

from toymodels.config import TrainConfig

__all__ = ["make_optimizer", "schedule"]


def schedule(train: TrainConfig, lr) -> optax.ScalarOrSchedule:
    """The learning rate at each step (optax's count: updates done so far).

    constant: lr.
    warmup_cosine: 0 → lr linearly over warmup_steps, then cosine decay to lr·final_lr_fraction.
    warmup_decay (SAELens's constant scheduler with warm-up and decay): lr·(t+1)/warmup_steps
    during warm-up, lr, then a linear fall to lr·final_lr_fraction over the last decay_steps.
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
    return lr


_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    # torch.optim.AdamW: decoupled decay lr·wd·θ on every parameter, biases included.
    "adamw": lambda t, lr, wd: optax.adamw(lr, t.b1, t.b2, t.eps, weight_decay=wd),
    "adam": lambda t, lr, wd: optax.adam(lr, t.b1, t.b2, t.eps),
    "sgd": lambda t, lr, wd: optax.sgd(lr, momentum=t.momentum or None),
}


def make_optimizer(train: TrainConfig, lr, weight_decay) -> optax.GradientTransformation:
    """The optimizer of a resolved `train` (see `TrainConfig.resolved`), with the given lr and decay.

    Gradients are clipped to `max_grad_norm` (global norm, as torch's clip_grad_norm_) first when
    it is finite.
    """
    if train.optimizer is None or train.max_grad_norm is None:
        raise ValueError("make_optimizer needs a resolved TrainConfig (see TrainConfig.resolved)")
    opt = _OPTIMIZERS[train.optimizer](train, schedule(train, lr), weight_decay)
    if math.isfinite(train.max_grad_norm):
        opt = optax.chain(optax.clip_by_global_norm(train.max_grad_norm), opt)
    return opt
