"""Properties of one-hot neuron responses and neuron monosemanticity (Jermyn et al. 2022)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

# Each example draws arrays and makes a few calls (~5 ms); 100 per property keeps the analysis
# tests well inside their 60 s budget on 2 cores.
EXAMPLES = settings(max_examples=100, deadline=None)
ELEMENTS = st.floats(-10, 10, width=32, allow_subnormal=False)
#: (feature, hidden) shapes to draw from: few, as each new one costs a compilation.
SHAPES = [(1, 1), (2, 5), (3, 2), (8, 5)]


def matrices(shapes=SHAPES):
    """(feature, hidden) matrices in [−10, 10]."""
    return st.sampled_from(shapes).flatmap(lambda s: hnp.arrays(np.float32, s, elements=ELEMENTS))


@EXAMPLES
@given(matrices(), st.data())
def test_responses_are_relu_of_each_feature_alone(W_in, data):
    np.testing.assert_array_equal(A.neuron_responses(W_in), np.maximum(W_in, 0))
    b = data.draw(hnp.arrays(np.float32, W_in.shape[1], elements=ELEMENTS))
    # The response to feature i alone is the hidden layer on the one-hot input e_i.
    hidden = np.maximum(np.eye(len(W_in), dtype=np.float32) @ W_in + b, 0)
    np.testing.assert_allclose(A.neuron_responses(W_in, b), hidden, rtol=1e-6, atol=1e-6)


@EXAMPLES
@given(matrices())
def test_monosemanticity_is_max_over_sum_in_0_1(W_in):
    r = np.asarray(A.neuron_responses(W_in), np.float64)
    m = np.asarray(A.neuron_monosemanticity(r))
    alive = r.sum(0) > 0
    assert np.all(m[~alive] == 0)
    np.testing.assert_allclose(m[alive], r.max(0)[alive] / r.sum(0)[alive], rtol=1e-5)
    assert np.all(m[alive] > 0) and np.all(m <= 1 + 1e-6)
    assert np.all(m[alive] >= 1 / len(r) - 1e-6)
    n = np.asarray(A.features_per_neuron(r))
    assert np.all(n[~alive] == 0) and np.all((n[alive] >= 1) & (n[alive] <= len(r)))


@EXAMPLES
@given(matrices(SHAPES[1:]), st.integers(0, 4), st.data())
def test_a_one_hot_column_is_monosemantic(W_in, k, data):
    k = k % W_in.shape[1]
    i = data.draw(st.integers(0, len(W_in) - 1))
    W_in[:, k] = -np.abs(W_in[:, k])
    W_in[i, k] = data.draw(st.floats(0.01, 10))
    r = np.asarray(A.neuron_responses(W_in))
    assert float(A.neuron_monosemanticity(r)[k]) == 1.0
    assert bool(A.monosemantic_neurons(r)[k])
    assert int(A.features_per_neuron(r, rel_threshold=0.0)[k]) == 1


@EXAMPLES
@given(matrices(), st.randoms(use_true_random=False))
def test_feature_order_does_not_matter_and_neuron_order_permutes(W_in, random):
    f = np.array(random.sample(range(W_in.shape[0]), W_in.shape[0]))
    k = np.array(random.sample(range(W_in.shape[1]), W_in.shape[1]))
    r = np.asarray(A.neuron_responses(W_in))
    for fn in (A.neuron_monosemanticity, A.features_per_neuron, A.monosemantic_neurons):
        np.testing.assert_allclose(fn(r[f][:, k]), np.asarray(fn(r))[k], rtol=1e-6)


@EXAMPLES
@given(matrices(), st.floats(0, 1), st.floats(0, 1))
def test_features_per_neuron_counts_responses_above_a_fraction_of_the_max(W_in, t1, t2):
    r = np.asarray(A.neuron_responses(W_in))
    low, high = sorted([t1, t2])
    n_low, n_high = np.asarray(A.features_per_neuron(r, low)), A.features_per_neuron(r, high)
    assert np.all(n_high <= n_low)
    np.testing.assert_array_equal(n_low, (r > np.float32(low) * r.max(0)).sum(0))
    threshold = float(np.float32(high))  # a Python float, as callers pass it
    mono = np.asarray(A.neuron_monosemanticity(r))
    clear = np.abs(mono - threshold) > 1e-5
    np.testing.assert_array_equal(
        np.asarray(A.monosemantic_neurons(r, threshold))[clear], (mono > threshold)[clear]
    )
    if clear.all():
        assert int(A.n_monosemantic(r, threshold)) == int((mono > threshold).sum())


def test_known_cases():
    # Neuron 0 sees one feature, neuron 1 three equally, neuron 2 none (dead), neuron 3 mostly one.
    r = np.array([[1.0, 1.0, 0.0, 9.0], [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(A.neuron_monosemanticity(r), [1, 1 / 3, 0, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(A.monosemantic_neurons(r), [True, False, False, False])
    np.testing.assert_array_equal(A.monosemantic_neurons(r, 0.85), [True, False, False, True])
    np.testing.assert_array_equal(A.features_per_neuron(r), [1, 3, 0, 2])
    np.testing.assert_array_equal(A.features_per_neuron(r, 0.2), [1, 3, 0, 1])
    assert int(A.n_monosemantic(r)) == 1
    # Negative (GeLU-like) responses count as 0, so the share stays in [0, 1].
    np.testing.assert_allclose(A.neuron_monosemanticity(np.array([[2.0], [-1.0]])), [1.0])
    # The identity embedding gives one dedicated neuron per feature.
    assert int(A.n_monosemantic(A.neuron_responses(np.eye(4)))) == 4
    # A negative hidden bias can silence a neuron entirely.
    r = A.neuron_responses(np.eye(2), b_hidden=np.array([0.0, -2.0]))
    np.testing.assert_array_equal(A.neuron_monosemanticity(r), [1.0, 0.0])


def test_dataarray_in_dataarray_out():
    rng = np.random.default_rng(0)
    W_in = xr.DataArray(
        rng.normal(size=(3, 2, 6, 4)).astype(np.float32),
        dims=("feature_probability", "seed", "feature", "hidden"),
        coords={"feature_probability": [1.0, 0.1, 0.01], "seed": [7, 8], "hidden": list("abcd")},
    )
    b = xr.DataArray(rng.normal(size=(2, 4)).astype(np.float32), dims=("seed", "hidden"))
    r = A.neuron_responses(W_in, b)
    assert r.dims == ("feature_probability", "seed", "feature", "hidden")
    np.testing.assert_allclose(r.values, np.maximum(W_in.values + b.values[:, None, :], 0))
    m = A.neuron_monosemanticity(r)
    assert m.dims == ("feature_probability", "seed", "hidden")
    np.testing.assert_array_equal(m["hidden"], list("abcd"))
    np.testing.assert_array_equal(m["seed"], [7, 8])
    np.testing.assert_allclose(m.values, A.neuron_monosemanticity(r.values))
    assert A.n_monosemantic(r).dims == ("feature_probability", "seed")
    assert A.features_per_neuron(r).dims == ("feature_probability", "seed", "hidden")


@pytest.mark.parametrize(
    "fn",
    [A.neuron_responses, A.neuron_monosemanticity, A.monosemantic_neurons, A.n_monosemantic,
     A.features_per_neuron],
)
def test_jit_of_vmap(fn):
    r = jnp.asarray(np.random.default_rng(2).normal(size=(4, 7, 3)), jnp.float32)
    eager = fn(r)
    # One compilation checks both: the functions trace under jit and map under vmap.
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(r), eager, rtol=1e-6)
