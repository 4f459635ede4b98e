"""Reproductions of Toy Models of Superposition (Elhage et al. 2022). Slow: `make test-slow`."""

import numpy as np
import pytest

import toymodels as tm

pytestmark = pytest.mark.slow

SPARSITIES = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
TRAIN = tm.TrainConfig(steps=10_000, batch_size=1024, lr=1e-3)


def basic(kind):
    model = tm.ToyModelConfig(n_features=20, d_hidden=5, kind=kind, importance_decay=0.7)
    return tm.sweep(model, {"feature_probability": SPARSITIES, "seed": [0, 1, 2]}, TRAIN, progress=False)


def test_relu_output_goes_into_superposition_as_features_get_sparse():
    ds = basic("relu_output")
    n = tm.analysis.n_represented(ds.W, threshold=0.5)
    dense = n.sel(feature_probability=1.0).values
    sparse = n.sel(feature_probability=0.001).values
    assert (dense == 5).all(), dense
    assert (sparse > 10).all(), sparse
    assert (abs(sparse - 13) <= 2).all(), sparse  # issue 3: 13 ± 2 at 1 − S = 0.001


def test_linear_keeps_the_five_most_important_features():
    ds = basic("linear")
    represented = tm.analysis.represented_features(ds.W, threshold=0.5).values
    expected = np.zeros(20, bool)
    expected[:5] = True
    assert (represented == expected).all()


def test_equal_importance_five_in_two_forms_a_pentagon():
    model = tm.ToyModelConfig(n_features=5, d_hidden=2, feature_probability=0.02)
    ds = tm.sweep(model, {"seed": [0, 1, 2, 3]}, TRAIN, progress=False)
    best = ds.isel(seed=int(np.argmin(ds.loss.values)))
    D = np.asarray(tm.analysis.feature_dimensionality(best.W.values))
    np.testing.assert_allclose(D, 0.4, atol=0.02)
