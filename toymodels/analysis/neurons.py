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
import numpy as np

from toymodels.analysis._labeled import labeled

__all__ = [
    "aligned_loss",
    "aligned_solution",
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
def features_per_neuron(responses, threshold: float = 0.1):
    r"""N_k = #{i : r_ik > threshold · s}: the features neuron k carries, on the model's own scale.

    s = max_i ‖r_i‖₂ is the response norm of the model's strongest feature (r_i the row of feature
    i's responses over the neurons): the scale a represented feature has, about 1 in a TMS model
    whose represented features have unit-norm embeddings. A feature counts for neuron k when its
    response alone is more than `threshold` of that scale.

    Why not a fraction of the neuron's own largest response: where a model spreads its features
    over neurons (a rotated basis), a neuron's largest response is small, and the residual weights
    of features the model does not represent pass a fraction of it. In dense `hidden_relu` models
    (100 → 40, 10,000 steps of AdamW) the 60 dropped features keep rows of norm ≈0.35 spread over
    the 40 neurons (≈0.05 each) while each neuron's largest response is ≈0.3: counting responses
    above a tenth of it gave 40–65 features per neuron.

    0 for a dead neuron, 1 for a neuron that responds to a single feature of the model's scale;
    0 ≤ N_k ≤ #{i : r_ik > 0}. Unchanged by a permutation of the features or of the neurons, by
    scaling every response of the model by c > 0, and by appending features whose responses are
    all below threshold · s (negligible residual weights). Negative responses count as 0.

    Args:
      responses: (..., feature, hidden), e.g. from `neuron_responses`; s is taken per model, over
        the trailing two axes.
      threshold: the fraction of s a response must exceed, in [0, 1) (0 counts every positive
        response).

    Returns:
      (..., hidden) int.
    """
    if not isinstance(threshold, jax.core.Tracer) and not 0.0 <= float(threshold) < 1.0:
        raise ValueError(f"threshold must be a number in [0, 1); got {threshold!r}")
    return _features_per_neuron(responses, threshold)


@jax.jit
def _features_per_neuron(responses, threshold):
    r = jnp.maximum(jnp.asarray(responses), 0.0)
    scale = jnp.max(jnp.sqrt(jnp.sum(r * r, axis=-1)), axis=-1)
    return jnp.sum(r > threshold * scale[..., None, None], axis=-2)


def _dropped_variance(importance, feature_probability, d_hidden: int):
    """Per feature: I_i σ_i², σ_i² = p_i/3 − p_i²/4, and whether it is among the kept d_hidden."""
    I, p = np.broadcast_arrays(np.asarray(importance, np.float64),
                               np.asarray(feature_probability, np.float64))
    if I.ndim != 1:
        raise ValueError(f"importance and feature_probability must be one value per feature (or a "
                         f"number); got shapes {np.shape(importance)}, {np.shape(feature_probability)}")
    if not isinstance(d_hidden, (int, np.integer)) or isinstance(d_hidden, bool) or d_hidden < 1:
        raise ValueError(f"d_hidden must be an integer ≥ 1; got {d_hidden!r}")
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError("feature_probability must be in (0, 1]")
    if not np.all((I >= 0) & np.isfinite(I)):
        raise ValueError("importance must be non-negative and finite")
    weighted = I * (p / 3 - p**2 / 4)
    # Stable, so that ties keep the lower index (the more important feature under a decay).
    kept = np.zeros(len(I), bool)
    kept[np.argsort(-weighted, kind="stable")[:d_hidden]] = True
    return weighted, kept, p


def aligned_solution(importance, feature_probability, d_hidden: int):
    r"""The neuron-aligned weights of a `hidden_relu` model: one neuron per kept feature.

    The d_hidden features of largest I_i σ_i² (σ_i² = p_i/3 − p_i²/4, the variance of a feature
    active with probability p_i and U[0, 1] when active) get a neuron each, W_ik = 1 for the k-th
    of them, and output bias 0; every other feature has W_i = 0 and the bias b_i = E[x_i] = p_i/2,
    the best constant. x' = ReLU(W ReLU(Wᵀx) + b) then reconstructs the kept features exactly.

    Args:
      importance: (feature,) I_i.
      feature_probability: (feature,) or a number, p_i in (0, 1].
      d_hidden: m, the number of neurons.

    Returns:
      (W (feature, hidden), b (feature,)) float32 NumPy arrays.
    """
    _, kept, p = _dropped_variance(importance, feature_probability, d_hidden)
    W = np.zeros((len(kept), d_hidden), np.float32)
    W[np.flatnonzero(kept), np.arange(kept.sum())] = 1.0
    return W, np.where(kept, 0.0, p / 2).astype(np.float32)


def aligned_loss(importance, feature_probability, d_hidden: int) -> float:
    r"""The exact expected loss of `aligned_solution`: L = Σ_{i dropped} I_i σ_i² / n.

    The toy models' loss, Σ_i I_i E[(x_i − x'_i)²] averaged over the n features, for a
    `hidden_relu` model whose neurons each carry one of the d_hidden features of largest I_i σ_i²
    (σ_i² = p_i/3 − p_i²/4) and whose biases hold the others at their means. It is the lowest
    loss of any solution in which each neuron carries one feature; for dense features (p = 1),
    where superposition does not pay, the best rank-m affine reconstruction drops the same
    features, and no `hidden_relu` model we trained went below it.
    100 features at I_i = 0.8^i, p = 1, in 40 neurons: 5 · 0.8^40 / (12 · 100) = 5.54e-7.

    Args:
      importance: (feature,) I_i.
      feature_probability: (feature,) or a number, p_i in (0, 1].
      d_hidden: m.

    Returns:
      The loss, a float.
    """
    weighted, kept, _ = _dropped_variance(importance, feature_probability, d_hidden)
    return float(weighted[~kept].sum() / len(weighted))
