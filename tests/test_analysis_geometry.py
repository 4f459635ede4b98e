"""Named fractions of D_i and the polytopes features form."""

from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import analysis as A

CHEAP = settings(max_examples=200, deadline=None)
LINES = np.array(list(A.FRACTION_LINES.values()))


def orthogonal(seed, n):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def test_fraction_lines_are_the_named_fractions():
    expected = {
        "dedicated": Fraction(1),
        "tetrahedron": Fraction(3, 4),
        "triangle": Fraction(2, 3),
        "antipodal": Fraction(1, 2),
        "pentagon": Fraction(2, 5),
        "square antiprism": Fraction(3, 8),
        "hexagon": Fraction(1, 3),  # a 6-gon in a plane: 2/k
        "4-simplex": Fraction(4, 5),  # simplices: d/(d + 1)
        "5-simplex": Fraction(5, 6),
    }
    assert set(A.FRACTION_LINES) == set(expected)
    for name, value in expected.items():
        assert A.FRACTION_LINES[name] == pytest.approx(float(value), abs=1e-15)
    assert np.all(np.diff(LINES) < 0), "largest first"


@pytest.mark.parametrize("name", list(A.POLYTOPES))
def test_polytope_vertices(name):
    k, rank, D = A.POLYTOPES[name]
    V = A.polytope_vertices(name)
    assert V.shape == (k, rank)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-12)
    assert np.linalg.matrix_rank(V) == rank
    if k > 1:
        np.testing.assert_allclose(V.sum(0), 0.0, atol=1e-12)
    # A tight frame: Σ_j v_j v_jᵀ = (k / rank) I, which is what gives every vertex D = rank / k.
    np.testing.assert_allclose(V.T @ V, k / rank * np.eye(rank), atol=1e-12)
    assert D == pytest.approx(rank / k)


D_VALUES = hnp.arrays(np.float32, 16, elements=st.floats(0, 1, width=32))


@CHEAP
@given(D_VALUES, st.sampled_from([0.0, 0.01, 0.02, 0.05]))
def test_nearest_fraction_is_the_nearest_line_within_tol(D, tol):
    nearest = np.asarray(A.nearest_fraction(D, tol))
    distance = np.abs(D[:, None].astype(np.float64) - LINES)
    for d, f, dist in zip(D, nearest, distance):
        if np.isnan(f):
            assert dist.min() > tol - 1e-6
        else:
            assert np.any(np.isclose(f, LINES, atol=1e-7))
            assert abs(d - f) <= tol + 1e-6 and abs(d - f) <= dist.min() + 1e-6
    counts = np.asarray(A.fraction_line_counts(D, tol))
    assert counts.shape == (len(LINES),) and counts.sum() <= len(D)
    assert counts.sum() == np.sum(~np.isnan(nearest))
    for j, line in enumerate(LINES):
        assert counts[j] == np.sum(np.isclose(nearest, line, atol=1e-7))


def test_fraction_line_counts_on_known_values():
    D = np.array([1.0, 0.999, 0.5, 0.51, 0.4, 0.375, 0.6, 0.0, 2 / 3, 0.74])
    counts = dict(zip(A.FRACTION_LINES, np.asarray(A.fraction_line_counts(D)).tolist()))
    assert counts == {
        "dedicated": 2, "5-simplex": 0, "4-simplex": 0, "tetrahedron": 1, "triangle": 1,
        "antipodal": 2, "pentagon": 1, "square antiprism": 1, "hexagon": 0,
    }
    custom = {"half": 0.5, "third": 1 / 3}
    np.testing.assert_array_equal(A.fraction_line_counts(D, 0.02, custom), [2, 0])
    np.testing.assert_allclose(A.nearest_fraction(np.array([0.49, 0.3]), 0.02, custom), [0.5, np.nan])


def test_fraction_line_counts_of_a_dataarray():
    D = xr.DataArray(
        np.array([[[1.0, 0.5, 0.5], [0.4, 0.2, 0.75]]]),
        dims=("feature_probability", "seed", "feature"),
        coords={"feature_probability": [0.1], "seed": [3, 4]},
    )
    counts = A.fraction_line_counts(D)
    assert counts.dims == ("feature_probability", "seed", "fraction")
    np.testing.assert_array_equal(counts["seed"], [3, 4])
    np.testing.assert_allclose(counts["fraction"], LINES)
    assert list(counts["line"].values) == list(A.FRACTION_LINES)
    assert counts.sel(seed=3).sel(fraction=0.5).item() == 2
    assert counts.sel(seed=4).sum().item() == 2
    assert A.nearest_fraction(D).dims == D.dims


def tegum(names, seed, scales, extra_dims=1, n_unrepresented=2):
    """The polytopes in orthogonal subspaces, rotated, plus short features; rows shuffled."""
    blocks = [s * A.polytope_vertices(n) for n, s in zip(names, scales)]
    d = sum(V.shape[1] for V in blocks) + extra_dims
    rows, labels, owner, offset = [], [], [], 0
    for g, (name, V) in enumerate(zip(names, blocks)):
        padded = np.zeros((len(V), d))
        padded[:, offset : offset + V.shape[1]] = V
        rows.append(padded)
        labels += [name] * len(V)
        owner += [g] * len(V)
        offset += V.shape[1]
    rng = np.random.default_rng(seed)
    short = 0.03 * rng.normal(size=(n_unrepresented, d)) / np.sqrt(d)
    short[0] = 0.0
    W = np.concatenate([*rows, short]) @ orthogonal(seed, d)
    labels += ["unrepresented"] * n_unrepresented
    owner += [-1] * n_unrepresented
    perm = rng.permutation(len(W))
    return W[perm].astype(np.float32), np.array(labels)[perm], np.array(owner)[perm]


TEGUMS = [
    list(A.POLYTOPES),
    ["pentagon", "pentagon", "antipodal", "antipodal", "antipodal", "dedicated"],
    ["square antiprism", "tetrahedron", "triangle", "triangle"],
]


@pytest.mark.parametrize("names", TEGUMS, ids=["each", "pentagons", "3d"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_polytope_groups_finds_the_factors_of_a_tegum_product(names, seed, data):
    scales = data.draw(st.lists(st.floats(0.6, 3.0), min_size=len(names), max_size=len(names)))
    W, labels, owner = tegum(names, seed, scales)
    found = A.polytope_groups(W)
    np.testing.assert_array_equal(found.label, labels)
    assert np.all((found.group == -1) == (owner == -1))
    # Same polytope ⇔ same group.
    represented = owner >= 0
    same_owner = owner[represented, None] == owner[None, represented]
    same_group = found.group[represented, None] == found.group[None, represented]
    np.testing.assert_array_equal(same_group, same_owner)
    counts = dict(zip(A.POLYTOPE_KINDS, np.asarray(A.polytope_counts(W)).tolist()))
    assert counts == {kind: names.count(kind) for kind in A.POLYTOPE_KINDS}


@pytest.mark.parametrize(
    "W",
    [
        np.array([[0.6, 0.8], [0.6, 0.8]]),  # parallel, not antipodal: D = 1/2 but same direction
        A.polytope_vertices("pentagon")[:4] @ np.eye(2),  # an irregular 4-gon
        np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], -1),
        np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]),  # a generic 3-chain
        A.polytope_vertices("pentagon") * np.array([1.0, 0.6]),  # a squashed pentagon: D ≠ 2/5
    ],
    ids=["parallel", "4-gon", "hexagon", "chain", "squashed"],
)
def test_other_groups(W):
    found = A.polytope_groups(W)
    assert set(found.label) == {"other"}
    assert len(set(found.group)) == 1


def test_a_square_is_two_antipodal_pairs():
    # Orthogonal pairs share no subspace: a square in a plane is the tegum of two digons.
    found = A.polytope_groups(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]))
    assert list(found.label) == ["antipodal"] * 4
    np.testing.assert_array_equal(found.group, [0, 1, 0, 1])


def test_nothing_represented():
    W = np.full((5, 3), 0.1)
    found = A.polytope_groups(W)
    assert list(found.label) == ["unrepresented"] * 5 and np.all(found.group == -1)
    np.testing.assert_array_equal(A.polytope_counts(W), 0)
    with pytest.raises(ValueError, match="one"):
        A.polytope_groups(np.zeros((2, 5, 3)))


def test_polytope_counts_map_over_a_grid():
    W0, _, _ = tegum(TEGUMS[1], 0, [1.0] * 6)
    W1, _, _ = tegum(TEGUMS[1][::-1], 1, [1.5] * 6)
    W = xr.DataArray(
        np.stack([[W0, W1]]),
        dims=("feature_probability", "seed", "feature", "hidden"),
        coords={"feature_probability": [0.05], "seed": [0, 1]},
    )
    counts = A.polytope_counts(W)
    assert counts.dims == ("feature_probability", "seed", "polytope")
    assert list(counts["polytope"].values) == list(A.POLYTOPE_KINDS)
    expected = [2 if k == "pentagon" else 3 if k == "antipodal" else 1 if k == "dedicated" else 0
                for k in A.POLYTOPE_KINDS]
    np.testing.assert_array_equal(counts.values, [[expected, expected]])
    plain = A.polytope_counts(W.values)
    assert isinstance(plain, jax.Array)
    np.testing.assert_array_equal(plain, counts.values)
    # One matrix of a DataArray works too, in either dim order.
    found = A.polytope_groups(W.isel(feature_probability=0, seed=1).transpose("hidden", "feature"))
    np.testing.assert_array_equal(found.label, A.polytope_groups(W1).label)


def test_jit_of_vmap():
    D = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 10)), jnp.float32)
    np.testing.assert_array_equal(
        jax.jit(jax.vmap(A.fraction_line_counts))(D), A.fraction_line_counts(D)
    )
    np.testing.assert_array_equal(jax.jit(jax.vmap(A.nearest_fraction))(D), A.nearest_fraction(D))
