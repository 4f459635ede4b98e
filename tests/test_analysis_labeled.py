"""The helper that lets every analysis function take xarray.DataArrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from toymodels.analysis._labeled import labeled


@labeled(("feature", "hidden"), ("feature",), out=("feature",))
def weighted_norms(W, weight=None, power=2.0):
    """(…, feature, hidden), (…, feature) -> (…, feature)."""
    out = jnp.sum(jnp.abs(jnp.asarray(W)) ** power, axis=-1)
    return out if weight is None else out * jnp.asarray(weight)


@pytest.fixture
def W():
    return xr.DataArray(
        np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4),
        dims=("seed", "feature", "hidden"),
        coords={"seed": [10, 20], "feature": list("abc"), "note": ("seed", ["x", "y"])},
    )


def test_plain_arrays_go_straight_through(W):
    out = weighted_norms(W.values)
    assert isinstance(out, jax.Array)
    np.testing.assert_allclose(out, (W.values**2).sum(-1))
    np.testing.assert_allclose(jax.jit(weighted_norms)(W.values, power=1.0), W.values.sum(-1))


def test_dataarray_keeps_leading_dims_and_coords(W):
    out = weighted_norms(W)
    assert out.name == "weighted_norms"
    assert out.dims == ("seed", "feature")
    np.testing.assert_array_equal(out["seed"], [10, 20])
    np.testing.assert_array_equal(out["feature"], list("abc"))
    np.testing.assert_array_equal(out["note"], ["x", "y"])
    np.testing.assert_allclose(out.values, (W.values**2).sum(-1))
    # Core dims are found by name, wherever they sit.
    xr.testing.assert_allclose(weighted_norms(W.transpose("hidden", "feature", "seed")), out)
    # Options pass through by keyword or position.
    np.testing.assert_allclose(weighted_norms(W, None, 1.0).values, W.values.sum(-1))


def test_grid_dims_broadcast_by_name(W):
    weight = xr.DataArray(
        np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]]),
        dims=("feature_probability", "feature"),
        coords={"feature_probability": [1.0, 0.1, 0.01]},
    )
    out = weighted_norms(W, weight)
    assert out.dims == ("seed", "feature_probability", "feature")
    expected = (W.values**2).sum(-1)[:, None, :] * weight.values[None]
    np.testing.assert_allclose(out.values, expected)
    np.testing.assert_array_equal(out["feature_probability"], [1.0, 0.1, 0.01])


def test_unnamed_core_dims_are_taken_from_the_end(W):
    renamed = W.rename(feature="latent", hidden="d_model")
    out = weighted_norms(renamed)
    assert out.dims == ("seed", "latent")
    np.testing.assert_array_equal(out["latent"], list("abc"))
    np.testing.assert_allclose(out.values, (W.values**2).sum(-1))
    with pytest.raises(ValueError, match="weighted_norms: W needs at least 2 dims"):
        weighted_norms(xr.DataArray(np.ones(3), dims="x"))
