"""Neuron responses of models that read their features through a fixed embedding (Jermyn et al.).

Jermyn, Schiefer & Hubinger (2022) call a neuron monosemantic when, pushing each feature alone
(a one-hot v = e_i) through the embedding and the first layer with its bias, max_i / Σ_i of its
responses exceeds 0.999 (their `single_feature_activations` and `r_threshold`). With the
embedding U (feature, embed), the first layer W_in (embed, hidden), b_in (hidden) and the
nonlinearity σ, the response of neuron k to feature i is σ(U_i W_in + b_in)_k; the share and the
count are then `neuron_monosemanticity` and `n_monosemantic` of `toymodels.analysis.neurons`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from toymodels.analysis._labeled import labeled
from toymodels.models import ACTIVATIONS

__all__ = ["embedded_neuron_responses"]


@labeled(("embed", "hidden"), ("hidden",), ("feature", "embed"), out=("feature", "hidden"))
@functools.partial(jax.jit, static_argnames="activation")
def embedded_neuron_responses(W_in, b_in, embedding, activation: str = "relu"):
    r"""r_ik = σ(U_i W_in + b_in)_k: neuron k's activation when feature i alone is 1.

    Args:
      W_in: (..., embed, hidden) first-layer weights (the jermyn kinds' `W_in`).
      b_in: (..., hidden) first-layer bias.
      embedding: (..., feature, embed) the fixed embedding U, row i feature i's direction
        (`ToyModelConfig.embeddings()[0]`).
      activation: σ: "relu", "gelu" (exact) or "solu" (x·exp(x)), as `toymodels.models.ACTIVATIONS`.

    Returns:
      (..., feature, hidden) responses. GeLU and SoLU responses can be negative; the
      monosemanticity metrics count a negative response as 0 (their code sums them as they are,
      which only matters for a neuron whose negative responses are large).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}; "
                         f"got {activation!r}")
    pre = jnp.asarray(embedding) @ jnp.asarray(W_in) + jnp.asarray(b_in)[..., None, :]
    return ACTIVATIONS[activation](pre)
