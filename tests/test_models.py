"""Each model computes its equation, for one example and for a feature-major batch alike."""

import jax
import numpy as np
import pytest
from flax import nnx

from toymodels.config import JERMYN_KINDS
from toymodels.models import MODELS

relu = lambda v: np.maximum(v, 0.0)  # noqa: E731

EQUATIONS = {
    "relu_output": lambda p, x: relu(x @ p["W"] @ p["W"].T + p["b"]),
    "linear": lambda p, x: x @ p["W"] @ p["W"].T + p["b"],
    "hidden_relu": lambda p, x: relu(relu(x @ p["W"]) @ p["W"].T + p["b"]),
    "abs": lambda p, x: relu(relu(x @ p["W_in"]) @ p["W_out"] + p["b"]),
}


@pytest.mark.parametrize("kind", sorted(set(MODELS) - set(JERMYN_KINDS)))
def test_model_matches_its_equation(kind):
    model = MODELS[kind](7, 3, init_std=0.5, rngs=nnx.Rngs(params=jax.random.key(1)))
    params = {k: np.asarray(v) for k, v in nnx.to_pure_dict(nnx.state(model)).items()}
    params["b"] = np.linspace(-0.2, 0.2, 7).astype(np.float32)
    model.b[...] = params["b"]
    x = np.random.default_rng(0).uniform(-1, 1, (11, 7)).astype(np.float32)
    expected = EQUATIONS[kind](params, x)
    np.testing.assert_allclose(np.asarray(model(x.T)).T, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(model(x[0])), expected[0], rtol=1e-5, atol=1e-6)
    assert set(params) == set(MODELS[kind].param_dims)


# The jermyn kinds (their equation, on the embedded input x, is tested against NumPy for every
# task and activation in tests/test_jermyn.py); here: one example and a batch agree.
@pytest.mark.parametrize("kind", JERMYN_KINDS)
def test_jermyn_model_runs_one_example_or_a_batch(kind):
    d_out = 3 if kind == "jermyn_random_projection" else 7
    model = MODELS[kind](3, 5, d_out, activation="gelu", rngs=nnx.Rngs(params=jax.random.key(1)))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 11)).astype(np.float32)
    batch = np.asarray(model(x))
    assert batch.shape == (d_out, 11)
    np.testing.assert_allclose(np.asarray(model(x[:, 4])), batch[:, 4], rtol=1e-5, atol=1e-6)
    assert set(nnx.to_pure_dict(nnx.state(model))) == set(MODELS[kind].param_dims)
