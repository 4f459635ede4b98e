"""toymodels: train thousands of toy models of superposition, and the sparse autoencoders that take
their features back out, at once; and measure what they learn.

    import toymodels as tm
    ds = tm.sweep(tm.ToyModelConfig(n_features=20, d_hidden=5, importance_decay=0.7),
                  grid={"feature_probability": [1.0, 0.1, 0.01], "seed": [0, 1]},
                  train=tm.TrainConfig(steps=10_000))
"""

from toymodels.devices import use_host_devices

use_host_devices()

from toymodels import analysis, phase  # noqa: E402
from toymodels.config import ToyModelConfig, TrainConfig  # noqa: E402
from toymodels.io import dictionary_learning, saelens, sparsify  # noqa: E402
from toymodels.sae import SAE, SAEConfig  # noqa: E402
from toymodels.sources import GroundTruth, ToyActivations  # noqa: E402
from toymodels.store import load_results  # noqa: E402
from toymodels.sweep import sweep  # noqa: E402
from toymodels.train import Swept, training_set  # noqa: E402
from toymodels.trainers import make_trainer  # noqa: E402
from toymodels.widths import split_widths  # noqa: E402

__all__ = [
    "GroundTruth",
    "SAE",
    "SAEConfig",
    "Swept",
    "ToyActivations",
    "ToyModelConfig",
    "TrainConfig",
    "analysis",
    "dictionary_learning",
    "load_results",
    "make_trainer",
    "phase",
    "saelens",
    "sparsify",
    "split_widths",
    "sweep",
    "training_set",
]
