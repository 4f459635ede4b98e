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


MODELS: dict[str, type[ToyModel]] = {
    "relu_output": ReluOutput,
    "linear": Linear,
    "hidden_relu": HiddenRelu,
    "abs": Abs,
}
