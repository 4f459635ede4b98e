"""The one table from what is trained (a config) to how it is trained (its trainer).

A config is data: `ToyModelConfig` and `SAEConfig` say what a model *is* and import nothing of how
it is trained. The trainers (`toymodels.train`, `toymodels.sae.train`) import the configs they are
built from. This module sits above both and links them, so the sweep engine — and anyone who wants
the pure functions of one training run — asks here.

It is a `functools.singledispatch` on the config's type rather than a registry that trainer modules
fill when imported: the whole table is on this page, nothing depends on import order, and a new
kind of model adds itself from its own module with

    @toymodels.trainers.make_trainer.register
    def _(config: MyConfig, train: TrainConfig, data=None) -> Trainer: ...
"""

from __future__ import annotations

import functools
from typing import Any

from toymodels import train as toy_train
from toymodels.config import ToyModelConfig, TrainConfig
from toymodels.sae import train as sae_train
from toymodels.sae.config import SAEConfig
from toymodels.trainable import Trainer

__all__ = ["make_trainer"]


@functools.singledispatch
def make_trainer(config: Any, train: TrainConfig, data: Any = None) -> Trainer:
    """The trainer of the static part of (config, train): init, step and run as pure functions.

    Args:
      config: what is trained: a `ToyModelConfig` or an `SAEConfig` (or a registered type).
      train: how it is trained.
      data: an SAE's activations (`GroundTruth`, `ToyActivations`, a store, an iterable of
        batches); None for a toy model, which draws its own features.
    """
    raise ValueError("the config must be a ToyModelConfig or an SAEConfig; "
                     f"got {type(config).__name__}")


@make_trainer.register
def _(config: ToyModelConfig, train: TrainConfig, data: Any = None) -> Trainer:
    if data is not None:
        raise ValueError("data must be None for a toy model, which draws its own features; "
                         f"got {type(data).__name__}")
    return toy_train.make_trainer(config, train)


@make_trainer.register
def _(config: SAEConfig, train: TrainConfig, data: Any = None) -> Trainer:
    return sae_train.make_trainer(config, train, data)
