"""The toy models, each written for one instance and one example.

They are Flax NNX modules so that they read like the papers' equations, in column-vector form:
an input x has shape (feature,), and any trailing axes are further examples, so the same code
runs one example or a feature-major batch (feature, batch). The trainer feeds feature-major
batches because XLA's CPU matmuls vectorise over the long, contiguous batch axis; nothing here
knows about seeds, models or grids, which the trainer adds with `jax.vmap` over
`nnx.split`-ed state. Row `W[i]` is feature i's embedding, as in the TMS notebook's
`[instance, feature, hidden]` layout without the instance axis.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx


def _col(v: jax.Array, like: jax.Array) -> jax.Array:
    """A (feature,) vector broadcast down the columns of `like`: (feature, ...)."""
    return v.reshape(v.shape + (1,) * (like.ndim - 1))


def _normal(rngs: nnx.Rngs, shape: tuple[int, ...], std) -> nnx.Param:
    return nnx.Param(std * jax.random.normal(rngs.params(), shape))


class ToyModel(nnx.Module):
    """What every toy model declares besides `__call__(x: (feature, ...)) -> (feature, ...)`."""

    #: dims of each parameter, named for the labeled sweep results.
    param_dims: ClassVar[dict[str, tuple[str, ...]]]
    #: active features are drawn from U[-1, 1) instead of U[0, 1).
    signed_inputs: ClassVar[bool] = False

    @staticmethod
    def target(x: jax.Array) -> jax.Array:
        """What the model is trained to output for input x."""
        return x

    #: the parameter whose rows embed the features in the hidden space (an SAE's ground truth).
    embedding: ClassVar[str] = "W"

    def hidden(self, x: jax.Array) -> jax.Array:
        """The hidden activations h: (feature, ...) -> (hidden, ...), what an SAE is trained on."""
        raise NotImplementedError


class ReluOutput(ToyModel):
    """The TMS model: x' = ReLU(W Wᵀ x + b)  (row-vector form: ReLU(x W Wᵀ + b))."""

    param_dims = {"W": ("feature", "hidden"), "b": ("feature",)}

    def __init__(self, n_features: int, d_hidden: int, *, init_std, rngs: nnx.Rngs):
        self.W = _normal(rngs, (n_features, d_hidden), init_std)
        self.b = nnx.Param(jnp.zeros((n_features,)))

    def hidden(self, x):
        return self.W[...].T @ x

    def __call__(self, x):
        W = self.W[...]
        return jax.nn.relu(W @ (W.T @ x) + _col(self.b[...], x))


class Linear(ReluOutput):
    """The linear baseline: x' = W Wᵀ x + b, which can only learn a PCA-like projection."""

    def __call__(self, x):
        W = self.W[...]
        return W @ (W.T @ x) + _col(self.b[...], x)


class HiddenRelu(ReluOutput):
    """A privileged hidden basis: x' = ReLU(W ReLU(Wᵀ x) + b)."""

    def hidden(self, x):
        return jax.nn.relu(self.W[...].T @ x)

    def __call__(self, x):
        W = self.W[...]
        return jax.nn.relu(W @ jax.nn.relu(W.T @ x) + _col(self.b[...], x))


class Abs(ToyModel):
    """Computation in superposition: x' = ReLU(W_outᵀ ReLU(W_inᵀ x) + b), trained on |x|.

    W_in (feature, hidden) and W_out (hidden, feature) are untied; inputs are U[-1, 1) when active.
    """

    param_dims = {"W_in": ("feature", "hidden"), "W_out": ("hidden", "feature"), "b": ("feature",)}
    signed_inputs = True
    embedding = "W_in"

    def __init__(self, n_features: int, d_hidden: int, *, init_std, rngs: nnx.Rngs):
        self.W_in = _normal(rngs, (n_features, d_hidden), init_std)
        self.W_out = _normal(rngs, (d_hidden, n_features), init_std)
        self.b = nnx.Param(jnp.zeros((n_features,)))

    @staticmethod
    def target(x):
        return jnp.abs(x)

    def hidden(self, x):
        return jax.nn.relu(self.W_in[...].T @ x)

    def __call__(self, x):
        h = self.hidden(x)
        return jax.nn.relu(self.W_out[...].T @ h + _col(self.b[...], x))


def solu(x: jax.Array) -> jax.Array:
    """x · exp(x): what Jermyn et al.'s code calls SoLU (their `SoLU` module; not x · softmax(x))."""
    return x * jnp.exp(x)


#: the jermyn kinds' hidden nonlinearities, as torch computes them (nn.GELU is the exact erf form).
ACTIVATIONS = {
    "relu": jax.nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "solu": solu,
}


def _uniform(rngs: nnx.Rngs, shape: tuple[int, ...], bound: float) -> jax.Array:
    return jax.random.uniform(rngs.params(), shape, minval=-bound, maxval=bound)


class EmbeddedMLP(ToyModel):
    """Jermyn et al.'s model: out = W_outᵀ σ(W_inᵀ x + b_in), x the embedded features (embed, ...).

    Row-vector form (their torch `Sequential(Linear(m, k), σ, Linear(k, out, bias=False))`):
    out = σ(x W_in + b_in) W_out, with W_in (embed, hidden) = their `0.weight`ᵀ, b_in = `0.bias`,
    W_out (hidden, feature) = `2.weight`ᵀ. Initialised as torch's nn.Linear: every weight and
    bias uniform on ±1/√fan_in, then `init_bias` added to b_in (their init_bias offset).
    The input is already embedded: the fixed embedding is part of the data
    (`toymodels.train.EmbeddedFeatures`), not a parameter.
    """

    param_dims = {"W_in": ("embed", "hidden"), "b_in": ("hidden",), "W_out": ("hidden", "feature")}

    def __init__(self, d_embed: int, d_hidden: int, d_out: int, *, activation: str, init_bias=0.0,
                 rngs: nnx.Rngs):
        bound_in, bound_out = d_embed**-0.5, d_hidden**-0.5
        self.W_in = nnx.Param(_uniform(rngs, (d_embed, d_hidden), bound_in))
        self.b_in = nnx.Param(_uniform(rngs, (d_hidden,), bound_in) + init_bias)
        self.W_out = nnx.Param(_uniform(rngs, (d_hidden, d_out), bound_out))
        self.activation = activation

    def hidden(self, x):
        """h = σ(W_inᵀ x + b_in): (embed, ...) -> (hidden, ...), the activations the L1 penalises."""
        return ACTIVATIONS[self.activation](self.W_in[...].T @ x + _col(self.b_in[...], x))

    def readout(self, h):
        """out = W_outᵀ h: (hidden, ...) -> (feature, ...)."""
        return self.W_out[...].T @ h

    def __call__(self, x):
        return self.readout(self.hidden(x))


class ProjectedMLP(EmbeddedMLP):
    """`EmbeddedMLP` for the random-projection task: its output is d_embed-wide (`target` dim)."""

    param_dims = {"W_in": ("embed", "hidden"), "b_in": ("hidden",), "W_out": ("hidden", "target")}


MODELS: dict[str, type[ToyModel]] = {
    "relu_output": ReluOutput,
    "linear": Linear,
    "hidden_relu": HiddenRelu,
    "abs": Abs,
    "jermyn_autoencoder": EmbeddedMLP,
    "jermyn_random_projection": ProjectedMLP,
    "jermyn_abs": EmbeddedMLP,
}
