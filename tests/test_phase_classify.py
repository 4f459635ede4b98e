"""Phase labels of the extra feature, best-of-seeds selection and diagram agreement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toymodels.phase import PHASES, agreement, classify_phase, lowest_loss

NOT, DEDICATED, SUPERPOSITION = range(3)
TRIANGLE = np.array([[np.cos(a), np.sin(a)] for a in np.pi / 2 + 2 * np.pi / 3 * np.arange(3)])


@pytest.mark.parametrize("W, b, expected", [
    # n = 2, m = 1
    ([[1.0], [0.0]], None, NOT),                  # extra dropped
    ([[1.0], [0.3]], None, NOT),                  # extra below the norm threshold
    ([[0.0], [1.0]], None, DEDICATED),            # extra takes the dimension alone
    ([[0.2], [-1.1]], None, DEDICATED),           # the other feature is below threshold
    ([[1.0], [-1.0]], None, SUPERPOSITION),       # antipodal pair
    ([[0.9], [-1.2]], [0.0, 0.0], SUPERPOSITION),
    ([[1.0], [-1.0]], [0.0, -2.0], NOT),          # the extra never fires: ReLU(1 − 2) = 0
    ([[1.0], [-1.0]], [-2.0, 0.0], DEDICATED),    # feature 0 never fires
    # n = 3, m = 2
    ([[1, 0], [0, 1], [0, 0]], None, NOT),
    ([[1, 0], [0, 0], [0, 1]], None, DEDICATED),  # feature 1 dropped for the extra
    ([[1, 0], [-1, 0], [0, 1]], None, DEDICATED),  # 0 and 1 antipodal, extra on its own
    ([[1, 0], [0, 1], [-1, 0]], None, SUPERPOSITION),  # extra antipodal to feature 0
    (TRIANGLE, None, SUPERPOSITION),              # three features in the plane (|cos| = ½)
    ([[1, 0], [0, 1], [0.95, 0.31]], None, SUPERPOSITION),  # nearly parallel, same side
])
def test_constructed_weights(W, b, expected):
    assert int(classify_phase(np.asarray(W, float), b)) == expected
    assert PHASES[expected] in {"not represented", "dedicated", "superposition"}


def test_batched_jax_and_dataarray_inputs():
    W = np.stack([np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]]),
                  np.array([[1.0], [-1.0]])])  # (3, 2, 1)
    W = np.broadcast_to(W, (4, 3, 2, 1))
    codes = classify_phase(W)
    assert codes.shape == (4, 3)
    np.testing.assert_array_equal(codes, np.broadcast_to([0, 1, 2], (4, 3)))
    # JAX arrays, under jit.
    codes = jax.jit(classify_phase)(jnp.asarray(W))
    np.testing.assert_array_equal(codes, np.broadcast_to([0, 1, 2], (4, 3)))
    # DataArray in, DataArray out, leading dims and coordinates kept.
    da = xr.DataArray(W, dims=("seed", "importance", "feature", "hidden"),
                      coords={"importance": [0.1, 1.0, 10.0]})
    out = classify_phase(da, threshold=0.5)
    assert isinstance(out, xr.DataArray) and out.dims == ("seed", "importance")
    np.testing.assert_array_equal(out.importance.values, [0.1, 1.0, 10.0])
    np.testing.assert_array_equal(out.values[0], [0, 1, 2])


def _far_from_the_edges(W, b, threshold, overlap, margin=0.05):
    """Inputs where tiny numerical changes cannot flip a comparison."""
    norms = np.linalg.norm(W, axis=-1)
    if np.any(np.abs(norms - threshold) < margin):
        return False
    if b is not None and np.any(np.abs(norms**2 + b) < margin):
        return False
    unit = W / np.maximum(norms, 1e-9)[:, None]
    cos = np.abs(unit[:-1] @ unit[-1])
    return not np.any(np.abs(cos - overlap) < margin)


weights = arrays(np.float64, st.tuples(st.integers(2, 4), st.just(2)),
                 elements=st.floats(-1.5, 1.5, allow_nan=False))
maybe_bias = st.one_of(st.none(), st.floats(-1.0, 1.0))


@settings(max_examples=60, deadline=None)
@given(W=weights, angle=st.floats(0, 2 * np.pi), reflect=st.booleans(), bias=maybe_bias)
def test_invariant_to_rotations_and_reflections_of_the_hidden_space(W, angle, reflect, bias):
    b = None if bias is None else np.full(len(W), bias)
    assume(_far_from_the_edges(W, b, 0.5, 0.3))
    Q = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if reflect:
        Q = Q @ np.diag([1.0, -1.0])
    assert int(classify_phase(W @ Q, b)) == int(classify_phase(W, b))


@settings(max_examples=60, deadline=None)
@given(W=weights, signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=4, max_size=4),
       seed=st.integers(0, 2**16))
def test_invariant_to_row_signs_and_to_permuting_the_other_features(W, signs, seed):
    assume(_far_from_the_edges(W, None, 0.5, 0.3))
    flipped = W * np.asarray(signs[: len(W)])[:, None]
    order = np.r_[np.random.default_rng(seed).permutation(len(W) - 1), len(W) - 1]
    expected = int(classify_phase(W))
    assert int(classify_phase(flipped)) == expected
    assert int(classify_phase(W[order])) == expected


@settings(max_examples=60, deadline=None)
@given(W=weights, scale=st.floats(1.0, 5.0), threshold=st.floats(0.2, 0.8))
def test_invariant_to_scaling_represented_features_up(W, scale, threshold):
    assume(_far_from_the_edges(W, None, threshold, 0.3))
    represented = np.linalg.norm(W, axis=-1) > threshold
    scaled = np.where(represented[:, None], scale * W, W)
    assert int(classify_phase(scaled, threshold=threshold)) == int(
        classify_phase(W, threshold=threshold))


@settings(max_examples=40, deadline=None)
@given(W=weights)
def test_codes_follow_the_definition(W):
    assume(_far_from_the_edges(W, None, 0.5, 0.3))
    code = int(classify_phase(W))
    norms = np.linalg.norm(W, axis=-1)
    if norms[-1] <= 0.5:
        assert code == NOT
    else:
        unit = W / np.maximum(norms, 1e-12)[:, None]
        shares = np.any((norms[:-1] > 0.5) & (np.abs(unit[:-1] @ unit[-1]) > 0.3))
        assert code == (SUPERPOSITION if shares else DEDICATED)


def _sweep_like():
    rng = np.random.default_rng(0)
    loss = rng.random((3, 4, 5))
    loss[1, 2, :] = np.nan
    loss[1, 2, 3] = 0.5
    return xr.Dataset(
        {"W": (("p", "r", "seed", "feature", "hidden"), rng.normal(size=(3, 4, 5, 2, 1))),
         "b": (("p", "r", "seed", "feature"), rng.normal(size=(3, 4, 5, 2))),
         "loss": (("p", "r", "seed"), loss),
         "importance": (("r", "feature"), rng.random((4, 2)))},
        coords={"p": [1.0, 0.1, 0.01], "r": [0.1, 0.5, 2.0, 10.0], "seed": [7, 8, 9, 10, 11]})


def test_lowest_loss_on_a_dataset():
    ds = _sweep_like()
    best = lowest_loss(ds, "seed")
    assert "seed" not in best.dims and best.W.dims == ("p", "r", "feature", "hidden")
    np.testing.assert_array_equal(best.loss.values, np.nanmin(ds.loss.values, axis=-1))
    pick = np.nanargmin(ds.loss.values, axis=-1)
    np.testing.assert_array_equal(best.W.values[1, 3], ds.W.values[1, 3, pick[1, 3]])
    np.testing.assert_array_equal(best.seed.values, ds.seed.values[pick])  # which one was kept
    assert best.seed.values[1, 2] == 10  # NaN losses are skipped
    xr.testing.assert_equal(best.importance, ds.importance)  # variables without `seed` stay
    with pytest.raises(ValueError, match="dim"):
        lowest_loss(ds, "hidden")


def test_lowest_loss_on_arrays():
    ds = _sweep_like()
    arrays_in = {name: ds[name].values for name in ("W", "b", "loss")}
    best = lowest_loss(arrays_in, dim=-1)
    expected = lowest_loss(ds, "seed")
    for name in ("W", "b", "loss"):
        np.testing.assert_array_equal(best[name], expected[name].values)
    with pytest.raises(ValueError):
        lowest_loss({"W": ds.W.values}, dim=0)
    with pytest.raises(ValueError):
        lowest_loss(arrays_in, dim=3)


def test_agreement():
    a = np.array([[0, 1, 2], [2, 2, 2]])
    assert agreement(a, a) == 1.0
    assert agreement(a, np.where(a == 2, 1, a)) == pytest.approx(2 / 6)
    coords = {"feature_probability": [1.0, 0.1], "relative_importance": [0.1, 1.0, 10.0]}
    theory = xr.DataArray(a, dims=tuple(coords), coords=coords)
    # Matched by dim name, not position.
    assert agreement(theory.T, theory) == 1.0
    assert agreement(theory.T.values, theory.values.T) == 1.0
    other = theory.assign_coords(relative_importance=[0.2, 1.0, 10.0])
    with pytest.raises(ValueError, match="relative_importance"):
        agreement(other, theory)
    with pytest.raises(ValueError, match="shape"):
        agreement(a, a[:, :2])
