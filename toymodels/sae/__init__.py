"""Sparse autoencoders, transcoders and crosscoders, trained through the same sweep engine.

- `config`: `SAEConfig`, the architecture and its training objective.
- `architectures`: activation functions (JumpReLU and its straight-through estimators, TopK,
  BatchTopK, gated) and the trainable NNX modules, one per architecture.
- `train`: the SAE trainer (`toymodels.trainable` protocol): normalisation, warm-ups, dead
  latents, resampling, all inside the compiled step.
- `resample`: dead-latent resampling.
- `model`: `SAE`, one trained dictionary, to encode and decode activations.
"""

from toymodels.sae.architectures import ARCHITECTURES, jumprelu, param_names, step, topk_relu
from toymodels.sae.config import SAEConfig
from toymodels.sae.model import SAE

__all__ = ["ARCHITECTURES", "SAE", "SAEConfig", "jumprelu", "param_names", "step", "topk_relu"]
