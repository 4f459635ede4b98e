"""Properties of the SAE metrics: reconstruction (MSE, FVU, shrinkage), sparsity (L0, density)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

# ~5 ms per example after the first compilation of each shape; 60 per property keeps this file
# well inside its 60 s budget on 2 cores.
EXAMPLES = settings(max_examples=60, deadline=None)
TOL = 1e-4
#: (batch, d_in) shapes: few, as each new one costs a compilation.
SHAPES = [(1, 1), (5, 3), (8, 4), (16, 2)]
ELEMENTS = st.floats(-10, 10, width=32, allow_subnormal=False)


def array(shape):
    return hnp.arrays(np.float32, shape, elements=ELEMENTS).map(
        lambda x: np.where(np.abs(x) < 1e-3, 0, x).astype(np.float32)
    )


def pairs(shapes=SHAPES):
    """(x, x_hat) of one shape."""
    return st.sampled_from(shapes).flatmap(lambda s: st.tuples(array(s), array(s)))


def latents(shapes=((1, 1), (6, 5), (16, 8))):
    """(batch, d_sae) activations ≥ 0, most of them exactly 0; the others ≥ 1e-3, so that a
    rescaling cannot make them subnormal (XLA on CPU flushes subnormals to zero)."""
    element = st.one_of(st.just(0.0), st.just(0.0), st.floats(0, 10, width=32))
    return st.sampled_from(shapes).flatmap(
        lambda s: hnp.arrays(np.float32, s, elements=element).map(
            lambda f: np.where(f < 1e-3, 0, f).astype(np.float32)
        )
    )


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def reference(x, x_hat):
    """Every reconstruction metric, in float64 NumPy, straight from its definition."""
    x, x_hat = np.float64(x), np.float64(x_hat)
    residual = ((x - x_hat) ** 2).sum()
    total = ((x - x.mean(axis=0)) ** 2).sum()
    fvu = residual / total if total > 0 else (0.0 if residual == 0 else np.inf)
    x_norm, x_hat_norm = np.linalg.norm(x, axis=-1), np.linalg.norm(x_hat, axis=-1)
    nonzero = x_norm > 0
    l2 = (x_hat_norm[nonzero] / x_norm[nonzero]).mean() if nonzero.any() else 0.0
    squared, overlap = (x_hat_norm**2).mean(), (x * x_hat).sum(-1).mean()
    bias = 0.0 if squared == 0 else (squared / overlap if overlap != 0 else np.inf)
    return {
        "mse": ((x_hat - x) ** 2).sum(-1).mean(),
        "fraction_of_variance_unexplained": fvu,
        "explained_variance": 1 - fvu,
        "l2_ratio": l2,
        "relative_reconstruction_bias": bias,
    }


RECONSTRUCTION = list(reference(np.ones((1, 1)), np.ones((1, 1))))


def all_metrics(x, x_hat):
    return {name: np.asarray(getattr(A, name)(x, x_hat)) for name in RECONSTRUCTION}


def well_conditioned(x, x_hat):
    """The metrics whose denominators are clear of 0, where float32 rounding cannot swing them."""
    x, x_hat = np.float64(x), np.float64(x_hat)
    names = {"mse", "l2_ratio"}
    if ((x - x.mean(0)) ** 2).sum() > 1:
        names |= {"fraction_of_variance_unexplained", "explained_variance"}
    if abs((x * x_hat).sum(-1).mean()) > 1:
        names.add("relative_reconstruction_bias")
    return names


@EXAMPLES
@given(pairs())
def test_reconstruction_metrics_match_a_reference(pair):
    x, x_hat = pair
    expected = reference(x, x_hat)
    for name in well_conditioned(x, x_hat):
        value = getattr(A, name)(x, x_hat)
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=TOL, err_msg=name)


@EXAMPLES
@given(pairs(), st.integers(0, 2**32 - 1), st.randoms(use_true_random=False))
def test_reconstruction_metrics_ignore_rotations_of_d_in_and_the_order_of_the_batch(
    pair, seed, random
):
    x, x_hat = pair
    Q = orthogonal(seed, x.shape[1]).astype(np.float32)
    order = random.sample(range(len(x)), len(x))
    expected = all_metrics(x, x_hat)
    for moved in (all_metrics(x @ Q, x_hat @ Q), all_metrics(x[order], x_hat[order])):
        for name in well_conditioned(x, x_hat):
            np.testing.assert_allclose(
                moved[name], expected[name], rtol=1e-3, atol=1e-3, err_msg=name
            )


@EXAMPLES
@given(pairs(), st.integers(-50, 50))
def test_fvu_is_about_the_mean_so_a_constant_shift_changes_nothing(pair, shift):
    x, x_hat = np.float64(pair[0]), np.float64(pair[1])
    total = ((x - x.mean(0)) ** 2).sum()
    assume(total > 1)  # away from the ill-conditioned zero-variance batches
    offset = shift * np.linspace(1, 2, x.shape[1])
    fvu = float(A.fraction_of_variance_unexplained(x, x_hat))
    shifted = float(A.fraction_of_variance_unexplained(x + offset, x_hat + offset))
    np.testing.assert_allclose(shifted, fvu, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(
        A.explained_variance(x + offset, x_hat + offset), 1 - fvu, rtol=1e-3, atol=1e-4
    )


def test_fvu_about_zero_would_flatter_inputs_with_a_large_mean():
    rng = np.random.default_rng(0)
    offset = np.array([20.0, -30.0, 10.0])
    x = offset + rng.normal(size=(256, 3))
    x_hat = np.broadcast_to(x.mean(0), x.shape)  # predicting the mean explains nothing
    assert float(A.fraction_of_variance_unexplained(x, x_hat)) == pytest.approx(1.0, abs=1e-5)
    assert float(A.explained_variance(x, x_hat)) == pytest.approx(0.0, abs=1e-5)
    about_zero = ((x - x_hat) ** 2).sum() / (x**2).sum()  # the buggy SAELens release's formula
    assert about_zero < 0.01


@EXAMPLES
@given(pairs(), st.floats(0.01, 100))
def test_perfect_and_scaled_reconstructions(pair, c):
    x = pair[0]
    assume(np.any(x != 0))
    exact = all_metrics(x, x)
    assert exact["mse"] == 0 and exact["fraction_of_variance_unexplained"] == 0
    assert exact["explained_variance"] == 1
    np.testing.assert_allclose(exact["l2_ratio"], 1.0, rtol=1e-5)
    np.testing.assert_allclose(exact["relative_reconstruction_bias"], 1.0, rtol=1e-5)
    scaled = all_metrics(x, np.float32(c) * x)
    np.testing.assert_allclose(scaled["l2_ratio"], c, rtol=1e-4)
    np.testing.assert_allclose(scaled["relative_reconstruction_bias"], c, rtol=1e-4)
    total = ((np.float64(x) - np.float64(x).mean(0)) ** 2).sum()
    if total > 1:
        np.testing.assert_allclose(scaled["fraction_of_variance_unexplained"],
                                   (1 - c) ** 2 * (np.float64(x) ** 2).sum() / total,
                                   rtol=1e-3, atol=1e-5)  # c x rounds in float32


@EXAMPLES
@given(pairs())
def test_reconstruction_bounds(pair):
    metrics = all_metrics(*pair)
    assert metrics["mse"] >= 0 and metrics["l2_ratio"] >= 0
    assert metrics["fraction_of_variance_unexplained"] >= 0
    assert metrics["explained_variance"] <= 1
    assert not any(np.isnan(v) for v in metrics.values())


def test_zero_vectors_give_no_nan():
    zero = np.zeros((4, 3), np.float32)
    x = np.array([[1, 2, 3], [0, 0, 0], [4, 5, 6], [0, 0, 0]], np.float32)
    assert all_metrics(zero, zero) == {
        "mse": 0.0,
        "fraction_of_variance_unexplained": 0.0,
        "explained_variance": 1.0,
        "l2_ratio": 0.0,
        "relative_reconstruction_bias": 0.0,
    }
    shrunk = all_metrics(x, zero)
    assert shrunk["l2_ratio"] == 0 and shrunk["relative_reconstruction_bias"] == 0
    np.testing.assert_allclose(all_metrics(x, 2 * x)["l2_ratio"], 2.0)  # zero rows left out
    assert all_metrics(zero, x)["fraction_of_variance_unexplained"] == np.inf
    grads = jax.grad(lambda h: sum(getattr(A, n)(x, h) for n in RECONSTRUCTION[:-1]))(zero)
    assert np.all(np.isfinite(grads))


def test_reconstruction_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="mse: x and x_hat must agree"):
        A.mse(np.ones((4, 3)), np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"explained_variance: x needs shape \(..., batch, d_in\)"):
        A.explained_variance(np.ones(3), np.ones(3))


def reference_density(f):
    return (np.asarray(f) != 0).mean(axis=-2)


@EXAMPLES
@given(latents(), st.floats(0, 0.99), st.floats(0, 0.99))
def test_sparsity_metrics_match_a_reference(f, dead_at, dense_above):
    density = reference_density(f)
    np.testing.assert_allclose(A.latent_density(f), density, atol=1e-6)
    np.testing.assert_allclose(A.l0(f), (f != 0).sum(-1).mean(), rtol=1e-6)
    np.testing.assert_allclose(A.l0(f), density.sum(), rtol=1e-5)
    # Thresholds clear of the densities (multiples of 1/batch) so float32 rounding cannot decide.
    assume(np.all(np.abs(density - dead_at) > 1e-6))
    assume(np.all(np.abs(density - dense_above) > 1e-6))
    np.testing.assert_array_equal(A.dead_latents(f, dead_at), density <= dead_at)
    np.testing.assert_allclose(A.dead_fraction(f, dead_at), (density <= dead_at).mean())
    np.testing.assert_array_equal(A.dense_latents(f, dense_above), density > dense_above)
    np.testing.assert_allclose(A.dense_fraction(f, dense_above), (density > dense_above).mean())


@EXAMPLES
@given(latents(), st.randoms(use_true_random=False), st.floats(0.01, 100))
def test_sparsity_follows_latent_order_and_ignores_example_order_and_scale(f, random, c):
    latents_order = np.array(random.sample(range(f.shape[1]), f.shape[1]))
    examples_order = np.array(random.sample(range(f.shape[0]), f.shape[0]))
    density = np.asarray(A.latent_density(f))
    np.testing.assert_allclose(A.latent_density(f[:, latents_order]), density[latents_order])
    np.testing.assert_allclose(A.latent_density(f[examples_order]), density)
    np.testing.assert_allclose(A.latent_density(np.float32(c) * f), density)
    assert 0 <= float(A.l0(f)) <= f.shape[1]
    assert 0 <= float(A.dead_fraction(f)) <= 1


def reference_histogram(density, edges):
    alive = density[density > 0]
    counts, _ = np.histogram(np.clip(np.log10(alive), edges[0], edges[-1]), bins=edges)
    return np.concatenate([[np.sum(density == 0)], counts])


@EXAMPLES
@given(
    latents(),
    st.sampled_from([A.DENSITY_BINS, np.array([-2.0, -1.0, 0.0]), np.linspace(-1.5, -0.2, 6)]),
)
def test_density_histogram_matches_numpy(f, edges):
    density = np.asarray(A.latent_density(f))
    # log10 of a density on a bin edge is decided by rounding: compare away from the edges.
    assume(np.all(np.abs(np.log10(density[density > 0])[:, None] - edges[1:-1]) > 1e-5))
    counts = np.asarray(A.density_histogram(density, bins=edges))
    np.testing.assert_array_equal(counts, reference_histogram(density, edges))
    assert counts.sum() == f.shape[1]
    assert counts[0] == int(np.asarray(A.dead_latents(f)).sum())


def test_density_histogram_edges_and_labels():
    density = np.array([0.0, 0.0, 1e-9, 0.001, 0.5, 1.0, 0.01])
    np.testing.assert_array_equal(A.density_histogram(density, bins=[-3, -2, 0]), [2, 2, 3])
    labeled = A.density_histogram(
        xr.DataArray(np.stack([density, density[::-1]]), dims=("seed", "latent"),
                     coords={"seed": [3, 4]}),
        bins=[-3, -2, 0],
    )
    assert labeled.dims == ("seed", "log10_density")
    np.testing.assert_array_equal(labeled["log10_density"], [-np.inf, -2.5, -1.0])
    np.testing.assert_array_equal(labeled.sel(log10_density=-np.inf), [2, 2])
    for bad in ([0.0], [0.0, -1.0], [[-1.0, 0.0]], [-np.inf, 0.0]):
        with pytest.raises(ValueError, match="density_histogram: bins must be"):
            A.density_histogram(density, bins=bad)


@pytest.mark.parametrize("fn", [A.dead_latents, A.dead_fraction, A.dense_latents, A.dense_fraction])
@pytest.mark.parametrize("threshold", [-0.1, 1.0, 2.0])
def test_thresholds_outside_zero_one_are_refused(fn, threshold):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: threshold must be in \[0, 1\)"):
        fn(np.ones((3, 2)), threshold)


def test_dataarray_in_dataarray_out():
    rng = np.random.default_rng(0)
    grid = {"l1_coefficient": [0.01, 0.1], "seed": [5, 6, 7]}
    x = xr.DataArray(rng.normal(size=(2, 3, 32, 4)).astype(np.float32),
                     dims=(*grid, "token", "d_in"), coords=grid)
    x_hat = 0.9 * x
    for name in RECONSTRUCTION:
        out = getattr(A, name)(x, x_hat)
        assert out.dims == ("l1_coefficient", "seed"), name
        np.testing.assert_array_equal(out["seed"], [5, 6, 7])
        np.testing.assert_allclose(out.values, getattr(A, name)(x.values, x_hat.values), rtol=1e-6)
    f = xr.DataArray(np.maximum(rng.normal(size=(2, 3, 32, 6)), 0).astype(np.float32),
                     dims=(*grid, "token", "latent"), coords={**grid, "latent": list("abcdef")})
    assert A.l0(f).dims == ("l1_coefficient", "seed")
    density = A.latent_density(f)
    assert density.dims == ("l1_coefficient", "seed", "latent")
    np.testing.assert_array_equal(density["latent"], list("abcdef"))
    assert A.dead_latents(f).dims == density.dims
    assert A.dense_fraction(f, threshold=0.5).dims == ("l1_coefficient", "seed")


def test_jit_of_vmap():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(3, 16, 4)), jnp.float32)
    x_hat = x * 0.8 + 0.1
    f = jnp.maximum(x, 0)
    for name in RECONSTRUCTION:
        fn = getattr(A, name)
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(x, x_hat), fn(x, x_hat), rtol=1e-5)
    for fn in (A.l0, A.latent_density, A.dead_fraction, A.dense_fraction, A.dense_latents):
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(f), fn(f), rtol=1e-6)
    density = A.latent_density(f)
    np.testing.assert_array_equal(jax.jit(jax.vmap(A.density_histogram))(density),
                                  A.density_histogram(density))
