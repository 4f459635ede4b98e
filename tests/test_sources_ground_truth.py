"""GroundTruth's independent features: firing rates, magnitudes, no empty sample, one uniform."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm

N = 200_000


def draws(truth, n=N, seed=0):
    return np.asarray(truth.coefficients(jax.random.key(seed), n))


@pytest.mark.parametrize("mean_active", [0.5, 3.0])
def test_rates_are_the_probabilities_plus_the_empty_samples_share(mean_active):
    truth = tm.GroundTruth(d_in=8, n_features=12, mean_active=mean_active, frequency_decay=0.8)
    c = draws(truth)
    on = c > 0
    p = truth.probabilities
    empty = np.prod(1 - p)  # P(no feature fires on its own): those samples get one more
    assert on.any(axis=1).all(), "a sample with no active feature"
    sigma = np.sqrt(p * (1 - p) / N)
    rate = on.mean(axis=0)
    assert np.all(rate >= p - 5 * sigma), (rate, p)
    assert np.all(rate <= p + empty + 5 * sigma), (rate, p, empty)
    assert abs(on.sum(axis=1).mean() - (p.sum() + empty)) < 5 * np.sqrt(p.sum() / N) + 5e-3


@pytest.mark.parametrize("mean_active", [0.5, 3.0])
def test_active_magnitudes_are_uniform_on_0_1(mean_active):
    truth = tm.GroundTruth(d_in=8, n_features=12, mean_active=mean_active, frequency_decay=0.8)
    c = draws(truth)
    for i in (0, 5, 11):
        m = c[c[:, i] > 0, i]
        assert m.max() < 1.0
        # the empirical CDF within 5 standard errors of U[0, 1) at the deciles
        q = np.arange(1, 10) / 10
        cdf = (m[:, None] <= q).mean(axis=0)
        assert np.all(np.abs(cdf - q) <= 5 * np.sqrt(q * (1 - q) / len(m)) + 1e-3), (i, cdf)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 64))
def test_one_uniform_per_entry_makes_gate_and_magnitude(seed, batch):
    """c_i = u_i / p_i where u_i < p_i: the gate's own uniform, not a second draw."""
    truth = tm.GroundTruth(d_in=4, n_features=6, mean_active=2.0, frequency_decay=0.9)
    key = jax.random.key(seed)
    gate_key = jax.random.split(key, 3)[0]
    u = np.asarray(jax.random.uniform(gate_key, (batch, truth.n_features)))
    p = truth.probabilities.astype(np.float32)
    c = np.asarray(truth.coefficients(key, batch))
    fires = u < p
    np.testing.assert_allclose(c[fires], (u / p)[fires], rtol=1e-6)
    assert not (c[~fires.any(axis=1)] == 0).all(axis=1).any()
    # an empty sample gets exactly one feature: the closest to firing
    for row in np.flatnonzero(~fires.any(axis=1)):
        assert np.flatnonzero(c[row]).tolist() == [int(np.argmin(u[row] / p))]


def test_correlated_data_still_fires_at_its_rates():
    truth = tm.GroundTruth(d_in=8, n_features=12, mean_active=3.0, frequency_decay=0.8,
                           correlation=0.5)
    on = draws(truth, 50_000) > 0
    p = truth.probabilities
    assert on.any(axis=1).all()
    assert np.all(on.mean(axis=0) >= p - 5 * np.sqrt(p * (1 - p) / 50_000))
