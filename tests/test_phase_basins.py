"""The fraction of seeds that train into the theory's phase, per grid point."""

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toymodels.phase import basin_fraction

EXAMPLES = settings(max_examples=100, deadline=None)
# Phase codes 0, 1, 2 or NaN (a diverged seed), on a (point, seed) grid.
CODES = st.sampled_from([0.0, 1.0, 2.0, np.nan])


def _loop(phases, optimal):
    """basin_fraction written out, one point at a time: (point, seed), (point,) -> (point,)."""
    out = []
    for row, best in zip(phases, optimal):
        known = row[~np.isnan(row)]
        out.append(np.mean(known == best) if known.size else np.nan)
    return np.array(out)


@EXAMPLES
@given(st.integers(1, 6).flatmap(lambda n: st.tuples(
    arrays(float, (n, 5), elements=CODES), arrays(float, n, elements=st.sampled_from([0.0, 1.0, 2.0])))),
    st.randoms(use_true_random=False))
def test_fraction_of_known_seeds_in_the_optimal_phase(case, random):
    phases, optimal = case
    f = basin_fraction(phases, optimal, dim=1)
    np.testing.assert_array_equal(np.isnan(f), np.isnan(phases).all(1))
    np.testing.assert_allclose(f, _loop(phases, optimal))
    known = ~np.isnan(f)
    assert np.all((f[known] >= 0) & (f[known] <= 1))
    # The seeds' order does not matter, nor which axis holds them.
    order = random.sample(range(phases.shape[1]), phases.shape[1])
    np.testing.assert_array_equal(basin_fraction(phases[:, order], optimal, dim=1), f)
    np.testing.assert_array_equal(basin_fraction(phases.T, optimal, dim=0), f)
    # Every seed in the optimal phase: 1; none: 0.
    everyone = np.repeat(optimal[:, None], 5, axis=1)
    np.testing.assert_array_equal(basin_fraction(everyone, optimal, dim=1), 1.0)
    np.testing.assert_array_equal(basin_fraction((everyone + 1) % 3, optimal, dim=1), 0.0)


def test_dataarrays_are_matched_by_dim_name():
    phases = xr.DataArray(
        np.array([[[1, 1, 2, 2], [0, 0, 0, np.nan]], [[2, 2, 2, 1], [np.nan] * 4]]),
        dims=("feature_probability", "relative_importance", "seed"),
        coords={"feature_probability": [1.0, 0.1], "relative_importance": [0.5, 2.0],
                "seed": [3, 4, 5, 6]},
    )
    # The theory's dims in the other order: matched by name, not position.
    optimal = xr.DataArray([[1, 2], [0, 1]], dims=("relative_importance", "feature_probability"),
                           coords={"relative_importance": [0.5, 2.0],
                                   "feature_probability": [1.0, 0.1]})
    f = basin_fraction(phases, optimal)
    assert f.dims == ("feature_probability", "relative_importance") and f.name == "basin_fraction"
    np.testing.assert_array_equal(f.values, [[0.5, 1.0], [0.75, np.nan]])
    np.testing.assert_array_equal(f["relative_importance"], [0.5, 2.0])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dim must be a dim of phases"):
        basin_fraction(xr.DataArray(np.zeros((2, 3)), dims=("p", "s")), np.zeros(2))
    with pytest.raises(ValueError, match="must be grid dims of phases"):
        basin_fraction(xr.DataArray(np.zeros((2, 3)), dims=("p", "seed")),
                       xr.DataArray(np.zeros(2), dims=("q",)))
    with pytest.raises(ValueError, match="dim must be an axis of phases"):
        basin_fraction(np.zeros((2, 3)), np.zeros(2), dim=2)
