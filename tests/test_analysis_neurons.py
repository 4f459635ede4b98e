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
    assert np.all(n[~alive] == 0) and np.all(n <= (r > 0).sum(0))


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
    # Its one feature is the model's strongest, so it counts whatever the threshold.
    W_in[i, k] = max(W_in[i, k], 10 * np.sqrt((np.maximum(W_in, 0) ** 2).sum(1)).max())
    r = np.asarray(A.neuron_responses(W_in))
    threshold = data.draw(st.floats(0, 0.99))
    assert int(A.features_per_neuron(r, threshold)[k]) == 1


@EXAMPLES
@given(matrices(), st.randoms(use_true_random=False))
def test_feature_order_does_not_matter_and_neuron_order_permutes(W_in, random):
    f = np.array(random.sample(range(W_in.shape[0]), W_in.shape[0]))
    k = np.array(random.sample(range(W_in.shape[1]), W_in.shape[1]))
    r = np.asarray(A.neuron_responses(W_in))
    for fn in (A.neuron_monosemanticity, A.features_per_neuron, A.monosemantic_neurons):
        np.testing.assert_allclose(fn(r[f][:, k]), np.asarray(fn(r))[k], rtol=1e-6)


def _scale(r):
    """The model's scale s = max_i ‖r_i‖₂, in float64."""
    return np.sqrt((np.maximum(np.asarray(r, np.float64), 0) ** 2).sum(1)).max()


@EXAMPLES
@given(matrices(), st.floats(0, 0.99), st.floats(0, 0.99))
def test_features_per_neuron_counts_responses_above_a_fraction_of_the_model_scale(W_in, t1, t2):
    r = np.asarray(A.neuron_responses(W_in))
    low, high = sorted([t1, t2])
    n_low, n_high = np.asarray(A.features_per_neuron(r, low)), np.asarray(A.features_per_neuron(r, high))
    assert np.all(n_high <= n_low)
    assert np.all((n_low >= 0) & (n_low <= (r > 0).sum(0)))
    assert np.all(n_low[(r > 0).sum(0) == 0] == 0)
    cut = high * _scale(r)
    clear = np.all(np.abs(r - cut) > 1e-5 * (1 + cut), axis=0)
    np.testing.assert_array_equal(n_high[clear], (r > cut).sum(0)[clear])


@EXAMPLES
@given(matrices(SHAPES[1:]), st.floats(0.01, 0.5), st.floats(2.0**-20, 2.0**20), st.data())
def test_features_per_neuron_ignores_negligible_residuals_and_scale(W_in, threshold, c, data):
    r = np.asarray(A.neuron_responses(W_in))
    n = np.asarray(A.features_per_neuron(r, threshold))
    cut = threshold * _scale(r)
    clear = np.all(np.abs(r - cut) > 1e-4 * (1 + cut), axis=0)
    # The count does not depend on the unit the responses are measured in.
    scaled = np.asarray(A.features_per_neuron(r * np.float32(c), threshold))
    np.testing.assert_array_equal(scaled[clear], n[clear])
    # Residual weights of features the model does not represent: many new features whose
    # responses, each below threshold · s (and of row norm below s, which they leave alone),
    # sum to far more than any one response.
    n_new = data.draw(st.sampled_from([3, 60]))  # few shapes: each compiles once
    fractions = data.draw(hnp.arrays(np.float32, (n_new, r.shape[1]),
                                     elements=st.floats(0, 0.5, width=32)))
    residual = np.float32(cut / np.sqrt(r.shape[1])) * fractions
    with_residuals = np.concatenate([r, residual])
    np.testing.assert_array_equal(A.features_per_neuron(with_residuals, threshold)[clear], n[clear])


@pytest.mark.parametrize("threshold", [-0.1, 1.0, 1.5, float("nan")])
def test_features_per_neuron_rejects_a_threshold_outside_0_1(threshold):
    with pytest.raises(ValueError, match="threshold"):
        A.features_per_neuron(np.eye(3), threshold)


def test_features_per_neuron_of_trained_like_weights():
    # 40 features dedicated to 40 neurons, and 60 unrepresented features with residual weights of
    # ≈0.03 (as dense hidden_relu models keep): they do not count.
    rng = np.random.default_rng(0)
    residual = 0.03 * np.abs(rng.normal(size=(60, 40))).clip(0, 2)
    W = np.concatenate([np.eye(40), residual])
    np.testing.assert_array_equal(A.features_per_neuron(A.neuron_responses(W)), np.ones(40))
    # The same features in a random rotation of the neurons: each neuron's largest response is
    # smaller, and the residuals exceed a tenth of it (they would count against the neuron's own
    # maximum), yet only the represented features count.
    Q = np.linalg.qr(rng.normal(size=(40, 40)))[0]
    cut = 0.1 * np.linalg.norm(np.maximum(Q, 0), axis=1).max()
    assert residual.max() < cut
    assert np.all((residual > 0.1 * np.maximum(Q, 0).max(0)).sum(0) > 0)
    rotated = A.features_per_neuron(A.neuron_responses(np.concatenate([Q, residual])))
    np.testing.assert_array_equal(rotated, (Q > cut).sum(0))


def test_known_cases():
    # Neuron 0 sees one feature, neuron 1 three equally, neuron 2 none (dead), neuron 3 mostly one.
    r = np.array([[1.0, 1.0, 0.0, 9.0], [0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(A.neuron_monosemanticity(r), [1, 1 / 3, 0, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(A.monosemantic_neurons(r), [True, False, False, False])
    np.testing.assert_array_equal(A.monosemantic_neurons(r, 0.85), [True, False, False, True])
    # s = ‖feature 0's responses (1, 1, 0, 9)‖ = √83 ≈ 9.1: every response of 1 or more passes
    # 0.1 s ≈ 0.91; only the 9 passes 0.2 s ≈ 1.8.
    np.testing.assert_array_equal(A.features_per_neuron(r), [1, 3, 0, 2])
    np.testing.assert_array_equal(A.features_per_neuron(r, 0.2), [0, 0, 0, 1])
    np.testing.assert_array_equal(A.features_per_neuron(r, 0.0), [1, 3, 0, 2])
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


@pytest.mark.parametrize("p", [1.0, 0.3, [0.2, 1.0, 0.5, 0.9, 0.1, 1.0, 0.7, 0.4]])
def test_aligned_solution_reconstructs_the_kept_features_at_the_exact_loss(p):
    # A NumPy forward pass of hidden_relu on the aligned weights, 400,000 samples, against the
    # formula Σ_{dropped} I_i (p_i/3 − p_i²/4) / n.
    n, m = 8, 3
    importance = 0.7 ** np.arange(n)
    W, b = A.aligned_solution(importance, p, m)
    probs = np.broadcast_to(np.asarray(p, float), (n,))
    weighted = importance * (probs / 3 - probs**2 / 4)
    kept = np.argsort(-weighted, kind="stable")[:m]
    assert sorted(np.flatnonzero(W.any(1))) == sorted(kept)
    np.testing.assert_array_equal(A.features_per_neuron(A.neuron_responses(W)), np.ones(m))
    rng = np.random.default_rng(0)
    u = rng.random((400_000, n))
    x = np.where(rng.random((400_000, n)) < probs, u, 0.0)
    out = np.maximum(np.maximum(x @ W, 0) @ W.T + b, 0)
    samples = np.mean(importance * (x - out) ** 2, axis=1)
    np.testing.assert_array_equal(out[:, kept], x[:, kept])
    exact = A.aligned_loss(importance, p, m)
    assert exact == pytest.approx(np.delete(weighted, kept).sum() / n, rel=1e-12)
    assert abs(samples.mean() - exact) < 4 * samples.std() / np.sqrt(len(samples))


def test_aligned_loss_of_the_dense_hidden_relu_setup():
    assert A.aligned_loss(0.8 ** np.arange(100), 1.0, 40) == pytest.approx(
        5 * 0.8**40 * (1 - 0.8**60) / 1200, rel=1e-12)
    with pytest.raises(ValueError, match="d_hidden"):
        A.aligned_loss(np.ones(3), 1.0, 0)
    with pytest.raises(ValueError, match="feature_probability"):
        A.aligned_solution(np.ones(3), 1.5, 2)
    with pytest.raises(ValueError, match="one value per feature"):
        A.aligned_loss(np.ones((2, 3)), 1.0, 2)
