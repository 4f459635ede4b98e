"""The in-graph feature distributions match their definitions."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import toymodels as tm
from toymodels.data import FeatureLayout, power_law_probabilities, sample_features
from toymodels.train import make_trainer

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


# Power-law feature frequencies (Jermyn et al.): p_i = min(1, ε n i^−a / Σ_j j^−a).


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 600), st.floats(1e-4, 1.0), st.floats(0.0, 3.0))
def test_power_law_has_mean_eps_and_the_exponent_until_clipped(n, eps, a):
    p = power_law_probabilities(n, eps, a)
    assert p.shape == (n,) and np.all((p > 0) & (p <= 1)) and np.all(np.diff(p) <= 1e-15)
    i = np.arange(1, n + 1)
    unclipped = p < 1
    # Ratios between unclipped features follow i^−a exactly.
    if unclipped.sum() >= 2:
        j = i[unclipped]
        np.testing.assert_allclose(p[unclipped] / p[unclipped][0], (j / j[0]) ** -a, rtol=1e-9)
    if unclipped.all():
        np.testing.assert_allclose(p.mean(), eps, rtol=1e-9)
    else:  # clipping at 1 only lowers the mean, as in their code
        assert p.mean() <= eps * (1 + 1e-9)
        np.testing.assert_array_equal(p[~unclipped], 1.0)


def _fit_exponent(counts: np.ndarray, draws: int, p: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares slope of log frequency on log rank, and its standard error.

    var(log f̂_i) ≈ (1 − p_i) / (draws p_i) (the delta method on a binomial frequency).
    """
    i = np.arange(1, len(counts) + 1)
    keep = (counts >= 30) & (p < 1)
    x, y = np.log(i[keep]), np.log(counts[keep] / draws)
    w = 1 / ((1 - p[keep]) / (draws * p[keep]))
    xm = np.sum(w * x) / w.sum()
    slope = np.sum(w * (x - xm) * y) / np.sum(w * (x - xm) ** 2)
    return slope, np.sqrt(1 / np.sum(w * (x - xm) ** 2))


@pytest.mark.parametrize("kind, n, eps, a", [
    ("relu_output", 64, 1 / 16, 1.1),           # Jermyn et al.'s exponent, a TMS model
    ("hidden_relu", 200, 0.01, 0.5),
    ("relu_output", 40, 0.3, 1.1),              # the first features clip at 1
    ("jermyn_autoencoder", 128, 1 / 32, 1.1),
    ("jermyn_abs", 96, 1 / 8, 1.1),             # v₁ − v₂, each drawn at ε/2
])
def test_sampled_power_law_frequencies_have_the_right_mean_and_exponent(kind, n, eps, a):
    extra = {"d_embed": 4} if kind.startswith("jermyn") else {}
    model = tm.ToyModelConfig(n_features=n, d_hidden=3, kind=kind, feature_probability=eps,
                              frequency_exponent=a, **extra)
    train = tm.TrainConfig(batch_size=50_000)
    trainer = make_trainer(model, train)
    swept = tm.Swept.from_configs(model, train)
    counts = np.zeros(n)
    rounds = 4
    for r in range(rounds):
        u = trainer.source.draw(jax.random.key(r), train.batch_size)
        x = trainer.source.features(u, swept) if kind.startswith("jermyn") else \
            trainer.source.batch(u, swept)
        counts += np.asarray((x != 0).sum(axis=1))
    draws = rounds * train.batch_size
    q = model.draw_probabilities()
    p = 2 * q - q**2 if kind == "jermyn_abs" else model.probabilities()  # P(v₁ or v₂ fires)
    # Every feature's count against its binomial (a χ² test over the features).
    chi2 = np.sum((counts - draws * p) ** 2 / (draws * p * (1 - p) + 1e-300) * (p < 1))
    dof = int((p < 1).sum())
    assert stats.chi2.sf(chi2, dof) > 1e-4, (chi2, dof)
    # The mean frequency: ε (less ε²/4 per feature for abs), within 5 standard errors.
    mean_se = np.sqrt(np.sum(p * (1 - p)) / draws) / n
    assert abs(counts.mean() / draws - p.mean()) < 5 * mean_se + 1e-12
    if not np.any(model.probabilities() >= 1):
        expected_mean = eps - np.mean(q**2) if kind == "jermyn_abs" else eps
        np.testing.assert_allclose(p.mean(), expected_mean, rtol=1e-9)
    # The exponent, fitted from the counts alone.
    if kind != "jermyn_abs":
        slope, se = _fit_exponent(counts, draws, p)
        assert abs(slope + a) < 5 * se + 0.01, (slope, se)
    # Feature 0 is the most frequent; the power law is not the flat ε.
    assert counts[0] > counts[-1] * 2
