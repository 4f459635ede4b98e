"""Properties of the datapoint dimensionality D_X,i, the mean over represented vectors and the
weight norm (Henighan et al. 2023)."""

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

EXAMPLES = settings(max_examples=100, deadline=None)
SHAPES = [(1, 2), (3, 2), (7, 2), (5, 3), (20, 4)]


def hidden_vectors():
    """h (sample, hidden) in [−10, 10]; entries below 1e-3 set to 0 (clear of the norm floor)."""
    elements = st.floats(-10, 10, width=32, allow_subnormal=False)
    return st.sampled_from(SHAPES).flatmap(
        lambda s: hnp.arrays(np.float32, s, elements=elements)
    ).map(lambda h: np.where(np.abs(h) < 1e-3, 0, h).astype(np.float32))


def rotation(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def pairwise_formula(h):
    """The paper's definition, written out over all pairs in float64."""
    h = np.asarray(h, np.float64)
    norms = np.linalg.norm(h, axis=1)
    out = np.zeros(len(h))
    for i in range(len(h)):
        if norms[i] >= 1e-6:
            out[i] = norms[i] ** 2 / np.sum((h[i] / norms[i] @ h.T) ** 2)
    return out


@given(st.integers(3, 40), st.floats(0.01, 100), st.floats(0, 2 * np.pi))
@EXAMPLES
def test_regular_polygon_points_have_two_over_T(T, scale, phase):
    angles = phase + 2 * np.pi * np.arange(T) / T
    h = scale * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    np.testing.assert_allclose(A.datapoint_dimensionality(h), 2 / T, rtol=1e-4)
    np.testing.assert_allclose(A.represented_dimensionality(h, threshold=0.5 * scale), 2 / T,
                               rtol=1e-4)


@given(st.integers(1, 6), st.integers(0, 2**16), st.floats(0.01, 100))
@EXAMPLES
def test_orthogonal_points_have_one(n, seed, scale):
    h = scale * rotation(seed, 6)[:n]
    np.testing.assert_allclose(A.datapoint_dimensionality(h), 1.0, rtol=1e-4)


@given(hidden_vectors(), st.integers(0, 2**16), st.floats(0.1, 10))
@EXAMPLES
def test_matches_the_pairwise_definition_and_its_invariances(h, seed, scale):
    d = np.asarray(A.datapoint_dimensionality(h))
    np.testing.assert_allclose(d, pairwise_formula(h), rtol=1e-3, atol=1e-5)
    assert ((d >= 0) & (d <= 1 + 1e-5)).all()
    assert d.sum() <= h.shape[1] + 1e-4
    R = rotation(seed, h.shape[1]).astype(np.float32)
    np.testing.assert_allclose(A.datapoint_dimensionality(scale * h @ R), d, rtol=1e-3,
                               atol=1e-5)
    # a permutation of the points permutes their dimensionalities
    perm = np.random.default_rng(seed).permutation(len(h))
    np.testing.assert_allclose(A.datapoint_dimensionality(h[perm]), d[perm], rtol=1e-4,
                               atol=1e-6)


def test_zero_points_get_zero_and_labels_are_kept():
    h = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]], np.float32)
    np.testing.assert_allclose(A.datapoint_dimensionality(h), [1.0, 0.0, 1.0])
    grid = xr.DataArray(np.stack([h, 2 * h]), dims=("seed", "sample", "hidden"),
                        coords={"seed": [4, 5]})
    d = A.datapoint_dimensionality(grid)
    assert d.dims == ("seed", "sample") and d.seed.values.tolist() == [4, 5]
    mean = A.represented_dimensionality(grid.rename(sample="vector"), threshold=0.5)
    assert mean.dims == ("seed",)
    np.testing.assert_allclose(mean.values, [1.0, 1.0])  # the zero point does not count
    assert np.isnan(A.represented_dimensionality(h, threshold=10.0))


def test_weight_norm():
    W = np.array([[3.0, 0.0], [0.0, 4.0]], np.float32)
    np.testing.assert_allclose(A.weight_norm(W), 5.0)
    ds = xr.DataArray(np.stack([W, 2 * W]), dims=("seed", "feature", "hidden"))
    np.testing.assert_allclose(A.weight_norm(ds).values, [5.0, 10.0])
