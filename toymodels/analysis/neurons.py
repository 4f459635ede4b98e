"""Which features each hidden neuron responds to, for models with a nonlinearity on the hidden layer.

For a model whose hidden activation is h = ReLU(x W_in + b_hidden), with W_in (feature, hidden)
(TMS's `hidden_relu` and `abs` models; Jermyn et al.'s Linear → ReLU), we push each one-hot
feature through the first layer and ask, per neuron, whether one feature dominates its responses
(Jermyn, Schiefer & Hubinger 2022). The metrics take the response matrix, so responses measured
any other way (a GeLU layer, a different input value) work too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from toymodels.analysis._labeled import labeled

__all__ = [
    "features_per_neuron",
    "monosemantic_neurons",
    "n_monosemantic",
    "neuron_monosemanticity",
    "neuron_responses",
]


@labeled(("feature", "hidden"), ("hidden",), out=("feature", "hidden"))
@jax.jit
def neuron_responses(W_in, b_hidden=None):
    r"""r_ik = ReLU(e_i W_in + b)_k = ReLU(W_in[i, k] + b_k): neuron k's response to feature i alone.

    e_i is the unit one-hot input of feature i. For a model trained on signed inputs (the `abs`
    model), `neuron_responses(-W_in, b)` gives the responses to −e_i.

    Args:
      W_in: (..., feature, hidden) first-layer weights, row i feature i's embedding.
      b_hidden: (..., hidden) hidden bias, or None for a model without one.

    Returns:
      (..., feature, hidden) non-negative responses.
    """
    pre = jnp.asarray(W_in)
    if b_hidden is not None:
        pre = pre + jnp.asarray(b_hidden)[..., None, :]
    return jax.nn.relu(pre)


def _monosemanticity(responses):
    r = jnp.maximum(jnp.asarray(responses), 0.0)
    total = jnp.sum(r, axis=-2)
    alive = total > 0
    return jnp.where(alive, jnp.max(r, axis=-2) / jnp.where(alive, total, 1.0), 0.0)


@labeled(("feature", "hidden"), out=("hidden",))
@jax.jit
def neuron_monosemanticity(responses):
    r"""m_k = max_i r_ik / Σ_i r_ik: the share of neuron k's total response owed to its top feature.

    1 for a neuron only one feature drives, 1/n_features for one all drive equally, in (0, 1] for
    any live neuron and 0 for a dead one (all responses 0). Negative responses (a GeLU's) count
    as 0.

    Args:
      responses: (..., feature, hidden), e.g. from `neuron_responses`.

    Returns:
      (..., hidden).
    """
    return _monosemanticity(responses)


@labeled(("feature", "hidden"), out=("hidden",))
@jax.jit
def monosemantic_neurons(responses, threshold: float = 0.999):
    """Whether each neuron is monosemantic: m_k > threshold (Jermyn et al. 2022 use 0.999).

    Args:
      responses: (..., feature, hidden).
      threshold: the share of its response a neuron's top feature must exceed.

    Returns:
      (..., hidden) bool.
    """
    return _monosemanticity(responses) > threshold


@labeled(("feature", "hidden"), out=())
@jax.jit
def n_monosemantic(responses, threshold: float = 0.999):
    """The number of monosemantic neurons, #{k : m_k > threshold}.

    Args:
      responses: (..., feature, hidden).
      threshold: as for `monosemantic_neurons`.

    Returns:
      (...) int.
    """
    return jnp.sum(_monosemanticity(responses) > threshold, axis=-1)


@labeled(("feature", "hidden"), out=("hidden",))
@jax.jit
def features_per_neuron(responses, rel_threshold: float = 0.1):
    r"""#{i : r_ik > rel_threshold · max_j r_jk}: how many features drive neuron k.

    1 for a monosemantic neuron (whatever rel_threshold ∈ [0, 1)), 0 for a dead one.

    Args:
      responses: (..., feature, hidden).
      rel_threshold: the fraction of the neuron's largest response a feature's must exceed.

    Returns:
      (..., hidden) int.
    """
    r = jnp.maximum(jnp.asarray(responses), 0.0)
    return jnp.sum(r > rel_threshold * jnp.max(r, axis=-2, keepdims=True), axis=-2)
