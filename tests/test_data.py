"""The in-graph feature distributions match their definitions."""

import jax
import numpy as np

from toymodels.data import FeatureLayout, sample_features

N = 200_000


def draw(p, layout, signed=False):
    return np.asarray(sample_features(jax.random.key(0), N, np.asarray(p, np.float32), layout, signed))


def test_independent_features_have_the_right_density_and_magnitudes():
    p = [1.0, 0.5, 0.1, 0.01]
    x = draw(p, FeatureLayout.make(4))
    np.testing.assert_allclose((x > 0).mean(0), p, atol=4 * np.sqrt(0.25 / N) + 1e-3)
    for i in range(4):
        active = x[:, i][x[:, i] > 0]
        assert active.max() < 1.0
        # U[0, 1) when active: mean 1/2, variance 1/12.
        np.testing.assert_allclose(active.mean(), 0.5, atol=0.02)
        np.testing.assert_allclose(active.var(), 1 / 12, atol=0.01)
    assert abs(np.corrcoef(x[:, 1] > 0, x[:, 2] > 0)[0, 1]) < 0.01


def test_correlated_pairs_fire_together():
    x = draw([0.2] * 4, FeatureLayout.make(4, n_correlated_pairs=1))
    np.testing.assert_array_equal(x[:, 0] > 0, x[:, 1] > 0)
    np.testing.assert_allclose((x[:, 0] > 0).mean(), 0.2, atol=0.01)
    both = (x[:, 0] > 0)
    # magnitudes are independent draws, not copies
    assert abs(np.corrcoef(x[both, 0], x[both, 1])[0, 1]) < 0.05


def test_anticorrelated_pairs_never_fire_together():
    x = draw([0.3] * 4, FeatureLayout.make(4, n_anticorrelated_pairs=2))
    for a in (0, 2):
        assert not ((x[:, a] > 0) & (x[:, a + 1] > 0)).any()
        np.testing.assert_allclose((x[:, a + 1] > 0).mean(), 0.3, atol=0.01)
        active = x[:, a + 1][x[:, a + 1] > 0]
        np.testing.assert_allclose(active.mean(), 0.5, atol=0.02)


def test_signed_magnitudes_are_uniform_on_minus_one_one():
    x = draw([0.5], FeatureLayout.make(1), signed=True)
    active = x[x != 0]
    np.testing.assert_allclose(active.mean(), 0.0, atol=0.01)
    np.testing.assert_allclose(active.var(), 1 / 3, atol=0.01)
    np.testing.assert_allclose((x != 0).mean(), 0.5, atol=0.01)
