"""The theoretical phase diagram: exact losses per configuration, their optima, and the diagram."""

import math

import numpy as np
import pytest

from toymodels.phase import (
    PHASES,
    Configuration,
    classify_phase,
    configurations,
    expected_loss,
    optimal_loss,
    optimize,
    theoretical_phase_diagram,
)
from toymodels.phase.theory import _coefficients, _components_of

R20 = np.logspace(-1, 1, 20)
P20 = np.logspace(0, -2, 20)
ALL = [(n, m, name) for n, m in [(2, 1), (3, 2)] for name in configurations(n, m)]


@pytest.fixture(scope="module")
def pair_diagram():
    return theoretical_phase_diagram(R20, P20)


def monte_carlo(W, b, p, r, n_samples=2_000_000, seed=0):
    rng = np.random.default_rng(seed)
    n = W.shape[0]
    importance = np.r_[np.ones(n - 1), r]
    x = rng.random((n_samples, n), dtype=np.float32) * (rng.random((n_samples, n)) < p)
    loss = ((x - np.maximum(x @ (W @ W.T) + b, 0.0)) ** 2 @ importance) / n
    return loss.mean(dtype=np.float64), loss.std(dtype=np.float64) / math.sqrt(n_samples)


@pytest.mark.parametrize("n, m, name", ALL)
def test_expected_loss_matches_monte_carlo(n, m, name):
    config = configurations(n, m)[name]
    rng = np.random.default_rng(len(name) + n)
    theta = np.array([rng.uniform(*box) for box in config.box])
    p, r = rng.uniform(0.05, 0.6), rng.uniform(0.3, 3.0)
    exact = float(expected_loss(config, theta, p, r))
    W, b = config.embed(theta)
    mean, se = monte_carlo(W, b, p, r, seed=n)
    assert abs(exact - mean) < 4 * se, (exact, mean, se)


@pytest.mark.parametrize("n, m, name", ALL)
def test_blocks_sum_to_the_full_exact_loss(n, m, name):
    """The search integrates non-interacting groups of features apart; that must be exact."""
    config = configurations(n, m)[name]
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(5, len(config.params)))
    p, r = rng.uniform(0.01, 1, 5), rng.uniform(0.1, 10, 5)
    split = np.sum(_coefficients(config, p, r) * _components_of(config, theta), axis=1)
    np.testing.assert_allclose(split, expected_loss(config, theta, p, r), rtol=1e-12)


def _quadratic(theta):
    w = np.asarray(theta, float)[..., 0]
    return np.stack([w, w**2], -1)[..., None], np.zeros(w.shape + (2,))


def test_configurations_are_well_formed():
    for n, m, name in ALL:
        config = configurations(n, m)[name]
        W, b = config.embed(np.ones(len(config.params)))
        assert W.shape == (n, m) and b.shape == (n,)
        assert PHASES[config.phase]
    assert [c.phase for c in configurations(2, 1).values()] == [0, 1, 2]
    with pytest.raises(ValueError, match="n_features, d_hidden"):
        configurations(3, 1)
    with pytest.raises(ValueError, match="linear"):
        Configuration("bad", 2, 2, 1, ("w",), _quadratic, ((0.0, 1.0),))


def test_closed_form_configurations():
    p = np.array([1.0, 0.4, 0.1, 0.01])
    r = np.array([0.1, 1.0, 3.0, 10.0])
    sigma2 = p / 3 - p**2 / 4  # the variance of a feature, the cost of predicting its mean
    for n, m in [(2, 1), (3, 2)]:
        configs = configurations(n, m)
        np.testing.assert_allclose(optimal_loss(configs["extra not represented"], p, r),
                                   r * sigma2 / n, rtol=1e-13)
        np.testing.assert_allclose(optimal_loss(configs["extra dedicated"], p, r), sigma2 / n,
                                   rtol=1e-13)


@pytest.mark.parametrize("n, m, name", [c for c in ALL if configurations(c[0], c[1])[c[2]].pinned])
def test_pinned_parameters_are_optimal_whatever_the_others(n, m, name):
    config = configurations(n, m)[name]
    rng = np.random.default_rng(11)
    for p, r in [(0.5, 0.3), (0.05, 3.0)]:
        theta = rng.uniform(-1, 1, size=len(config.params))
        for k, value in config.pinned.items():
            theta[k] = p / 2 if value == "mean" else value
        base = expected_loss(config, theta, p, r)
        for k in config.pinned:
            for step in (-1e-3, 1e-3):
                moved = theta.copy()
                moved[k] += step
                assert expected_loss(config, moved, p, r) > base


def _general_pair(theta):
    w0, w1, b0, b1 = np.moveaxis(np.asarray(theta, float), -1, 0)
    return np.stack([w0, w1], -1)[..., None], np.stack([b0, b1], -1)


def _general_triple(theta):
    a, b, c, d, e, b0, b1, b2 = np.moveaxis(np.asarray(theta, float), -1, 0)
    W = np.stack([np.stack([a, b], -1), np.stack([c, d], -1),
                  np.stack([np.zeros_like(e), e], -1)], -2)  # any three vectors, up to rotation
    return W, np.stack([b0, b1, b2], -1)


@pytest.mark.parametrize("n, m, points", [
    (2, 1, [(1.0, 0.5), (0.6, 1.0), (0.3, 0.3), (0.3, 3.0), (0.05, 1.0), (0.01, 0.2)]),
    (3, 2, [(0.6, 1.0), (0.1, 0.3), (0.05, 3.0)]),
])
def test_no_weights_beat_the_best_candidate(n, m, points):
    """An unconstrained search over all W (and b) finds nothing below the candidates' best."""
    wide, bias = (-1.5, 1.5), (-1.0, 1.0)
    general = (Configuration("general", 2, 2, 1, ("w0", "w1", "b0", "b1"), _general_pair,
                             (wide, wide, bias, bias)) if n == 2 else
               Configuration("general", 2, 3, 2, tuple("abcde") + ("b0", "b1", "b2"),
                             _general_triple, (wide,) * 5 + (bias,) * 3))
    p, r = np.array(points).T
    free = optimize(general, p, r, n_starts=3)
    best = np.min([optimal_loss(c, p, r) for c in configurations(n, m).values()], axis=0)
    assert np.all(free.loss >= best * (1 - 1e-8)), (free.loss - best) / best


def test_pair_limits():
    antipodal = configurations(2, 1)["antipodal"]
    not_represented = configurations(2, 1)["extra not represented"]
    # Dense: no superposition; the feature that matters more takes the dimension.
    ds = theoretical_phase_diagram([0.1, 0.3, 3.0, 10.0], [1.0])
    np.testing.assert_array_equal(ds.phase.values, [[0, 0, 1, 1]])
    # Dense, r < 1: the antipodal family cannot beat dropping the extra feature.
    assert optimal_loss(antipodal, 1.0, 0.5) >= optimal_loss(not_represented, 1.0, 0.5) * (
        1 - 1e-8)
    # Sparse, r = 1: superposition wins, by a wide margin, with both norms ≈ 1.
    best = optimize(antipodal, 0.02, 1.0)
    assert best.loss < 0.1 * optimal_loss(not_represented, 0.02, 1.0)
    np.testing.assert_allclose(np.abs(best.W[:, 0]), 1.0, atol=0.01)
    assert best.W[0, 0] * best.W[1, 0] < 0  # antipodal
    assert np.all(np.abs(best.b) < 0.01)  # small biases (positive, ≈ 0.1 p²)


def test_pair_diagram_has_all_phases_in_the_right_places(pair_diagram):
    phase = pair_diagram.phase.values  # rows p from 1 down to 0.01, columns r from 0.1 to 10
    assert phase.shape == (20, 20) and set(np.unique(phase)) == {0, 1, 2}
    # Dense row: no superposition; r < 1 drops the extra feature, r > 1 keeps only it.
    assert np.all(phase[0, R20 < 1] == 0) and np.all(phase[0, R20 > 1] == 1)
    # Sparse rows: superposition wherever r ≈ 1, and at p = 0.01 across the whole range.
    middle = (R20 > 0.5) & (R20 < 2)
    assert np.all(phase[P20 < 0.2][:, middle] == 2)
    assert np.all(phase[-1] == 2)
    # Superposition, once reached, persists as features get sparser (each column).
    for column in phase.T:
        first = np.argmax(column == 2)
        assert np.all(column[first:] == 2)
    # The superposition region narrows towards dense data.
    width = (phase == 2).sum(axis=1)
    assert np.all(np.diff(width) >= 0) and width[0] == 0


def test_pair_diagram_symmetry(pair_diagram):
    """Swapping the two features maps (p, r) to (p, 1/r): loss(p, r) = r · loss(p, 1/r), and
    phases 0 and 1 trade places. An exact symmetry of the problem, so a test of the search."""
    lowest = pair_diagram.loss.min("configuration").values
    np.testing.assert_allclose(lowest, R20 * lowest[:, ::-1], rtol=1e-7)
    phase = pair_diagram.phase.values
    mirrored = np.array([1, 0, 2])[phase[:, ::-1]]
    assert np.mean(phase == mirrored) >= 0.97


def test_diagram_phase_is_the_classification_of_the_winner(pair_diagram):
    ds = pair_diagram
    winner = ds.isel(configuration=ds.configuration_index)
    np.testing.assert_array_equal(classify_phase(winner.W.values, winner.b.values),
                                  ds.phase.values)
    np.testing.assert_allclose(winner.loss.values, ds.loss.min("configuration").values,
                               rtol=1e-7)
    # Where superposition wins it is the antipodal family, non-degenerate.
    sup = ds.phase.values == 2
    assert np.all(ds.configuration_label.values[sup] == 2)
    assert ds.phase.dims == ("feature_probability", "relative_importance")


def test_triple_diagram():
    r = np.array([0.2, 0.5, 2.0, 5.0])
    p = np.array([1.0, 0.1, 0.02])
    ds = theoretical_phase_diagram(r, p, n_features=3, d_hidden=2)
    phase = ds.phase.values
    # Dense: the extra feature is dropped (r < 1) or takes feature 1's dimension (r > 1).
    np.testing.assert_array_equal(phase[0], [0, 0, 1, 1])
    # Sparse, r < 1: the extra feature shares a dimension with one of the others, antipodally.
    np.testing.assert_array_equal(phase[1:, :2], 2)
    names = ds.configuration.values[ds.configuration_index.values[1:, :2]]
    assert np.all(names == "extra antipodal to 0")
    # Sparse, r > 1: the extra feature keeps a dimension; features 0 and 1 share the other.
    np.testing.assert_array_equal(phase[1:, 2:], 1)
    W = ds.W.isel(configuration=ds.configuration_index).values[1:, 2:]
    norms = np.linalg.norm(W, axis=-1)
    assert np.all(norms > 0.9)
    assert np.all(np.abs(np.sum(W[..., 0, :] * W[..., 1, :], -1)) > 0.9 * norms[..., 0]
                  * norms[..., 1])  # features 0 and 1 (anti)parallel


def test_bad_grids_are_errors():
    config = configurations(2, 1)["antipodal"]
    with pytest.raises(ValueError, match="feature_probability"):
        optimize(config, 1.5, 1.0)
    with pytest.raises(ValueError, match="relative_importance"):
        optimize(config, 0.5, -1.0)
    with pytest.raises(ValueError, match="1-D"):
        theoretical_phase_diagram(np.ones((2, 2)), [0.5])
