"""Feature trees in GroundTruth: firing rates, conditionals, exclusivity, presets, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm

N = 200_000


def draws(truth, n=N, seed=0):
    return np.asarray(truth.coefficients(jax.random.key(seed), n))


def within_5_sigma(observed, n, p):
    return abs(observed - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("name", ["chanin_absorption", "matryoshka_tree", "tree_64"])
def test_marginal_and_conditional_rates_and_ancestry(name):
    truth = tm.GroundTruth.preset(name, seed=0)
    on = draws(truth) > 0
    parents, p = truth.parents, np.asarray(truth.feature_probabilities)
    for i in range(truth.n_features):
        assert within_5_sigma(on[:, i].mean(), N, truth.probabilities[i]), (name, i)
        if parents[i] >= 0:
            given = on[on[:, parents[i]], i]
            assert not (on[:, i] & ~on[:, parents[i]]).any(), "a child fired without its parent"
            assert within_5_sigma(given.mean(), len(given), p[i]), (name, i)


def test_exclusive_children_never_fire_together():
    truth = tm.GroundTruth.preset("matryoshka_tree")
    on = draws(truth, 50_000) > 0
    for root in np.flatnonzero(truth.parents == -1):
        children = np.flatnonzero(truth.parents == root)
        if len(children):
            assert on[:, children].sum(axis=1).max() == 1
            # 0.4 of the parent's samples have no child
            with_parent = on[on[:, root]][:, children].sum(axis=1)
            assert within_5_sigma((with_parent == 0).mean(), len(with_parent), 0.4)


def test_independent_children_do_fire_together():
    on = draws(tm.GroundTruth.preset("chanin_absorption"), 50_000) > 0
    assert (on[:, 1:].sum(axis=1) >= 2).any()


def test_tied_magnitudes_are_tied_and_untied_are_not():
    fields = dict(d_in=8, n_features=4, feature_parents=(-1, 0, 1, -1),
                  feature_probabilities=(0.5, 0.5, 0.5, 0.3))
    tied = draws(tm.GroundTruth(**fields, tie_parent_magnitude=True), 20_000)
    both = (tied[:, 2] > 0)
    np.testing.assert_array_equal(tied[both, 2], tied[both, 0])  # grandchild = root's magnitude
    free = draws(tm.GroundTruth(**fields), 20_000)
    both = free[:, 1] > 0
    assert not np.allclose(free[both, 1], free[both, 0])
    assert 0.3 < free[free > 0].mean() < 0.7  # U[0, 1) magnitudes


def test_presets_match_the_published_toys():
    chanin = tm.GroundTruth.preset("chanin_absorption")
    assert (chanin.d_in, chanin.n_features) == (50, 4)
    np.testing.assert_array_equal(chanin.parents, [-1, 0, 0, 0])
    np.testing.assert_allclose(chanin.probabilities, [0.25, 0.0375, 0.0375, 0.0375])
    tree = tm.GroundTruth.preset("matryoshka_tree", seed=3)
    assert (tree.d_in, tree.n_features, tree.seed) == (20, 20, 3)
    assert (tree.parents == -1).sum() == 11 and tree.exclusive_children
    for truth in (chanin, tree):
        np.testing.assert_allclose(truth.dictionary @ truth.dictionary.T,
                                   np.eye(truth.n_features), atol=1e-5)


def test_no_tree_draws_the_documented_stream():
    """A plain GroundTruth's stream, bit for bit: trees must not change it (committed results
    use it). One uniform per (sample, feature) gates and scales, c = u / p where u < p; an empty
    sample's closest feature gets the sample's one fresh uniform."""
    truth = tm.GroundTruth(d_in=6, n_features=9, mean_active=0.5, seed=4)
    key = jax.random.key(7)
    gate_key, magnitude_key, _ = jax.random.split(key, 3)
    ratio = np.asarray(jax.random.uniform(gate_key, (64, 9)) / jnp.asarray(truth.probabilities,
                                                                           jnp.float32))
    fallback = np.asarray(jax.random.uniform(magnitude_key, (64, 1)))
    want = np.where(ratio < 1, ratio, 0.0)
    empty = np.flatnonzero(~(ratio < 1).any(axis=1))
    assert len(empty) > 5  # mean_active 0.5 leaves empty samples to fill
    want[empty, np.argmin(ratio[empty], axis=1)] = fallback[empty, 0]
    np.testing.assert_array_equal(np.asarray(truth.coefficients(key, 64)), want)
    assert (truth.parents == -1).all()


def test_sae_sweeps_train_on_a_tree_preset():
    truth = tm.GroundTruth.preset("chanin_absorption")
    sae = tm.SAEConfig(d_in=truth.d_in, d_sae=4, architecture="topk", k=1)
    ds = tm.sweep(sae, {"seed": [0, 1]}, tm.TrainConfig(steps=20, batch_size=64), data=truth,
                  progress=False)
    assert not ds.diverged.any() and ds.dictionary.shape == (4, 50)


@pytest.mark.parametrize("fields, name", [
    (dict(feature_parents=(-1, 0), feature_probabilities=(0.5, 1.5)), "feature_probabilities"),
    (dict(feature_parents=(-1, 0), feature_probabilities=(0.5, 0.0)), "feature_probabilities"),
    (dict(feature_parents=(1, 0), feature_probabilities=(0.5, 0.5)), "feature_parents"),
    (dict(feature_parents=(-1, 5), feature_probabilities=(0.5, 0.5)), "feature_parents"),
    (dict(feature_parents=(-1, 0)), "feature_probabilities"),
    (dict(feature_parents=(-1,), feature_probabilities=(0.5,)), "feature_parents"),
    (dict(feature_parents=(-1, 0, 0), feature_probabilities=(0.5, 0.7, 0.7),
          exclusive_children=True), "feature_probabilities"),
    (dict(feature_parents=(-1, -1), feature_probabilities=(1.0, 1.0), d_in=1), "expected L0"),
    (dict(orthogonal=True, d_in=1), "orthogonal"),
    (dict(exclusive_children=True), "exclusive_children"),
])
def test_bad_trees_name_the_field(fields, name):
    base = {"d_in": 4, "n_features": 2 if "feature_parents" not in fields
            else len(fields["feature_parents"]) if len(fields["feature_parents"]) > 1 else 2,
            "mean_active": 1.0}
    with pytest.raises(ValueError, match=name):
        tm.GroundTruth(**(base | fields))


def test_an_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match="chanin_absorption"):
        tm.GroundTruth.preset("chanin")


def test_a_plain_ground_truth_is_described_as_before_and_a_tree_with_its_parents():
    plain = tm.GroundTruth(d_in=6, n_features=9, mean_active=2.0)
    assert set(plain.describe()) == {"kind", "d_in", "n_features", "mean_active",
                                     "frequency_decay", "seed", "correlation", "d_out", "axes"}
    tree = tm.GroundTruth.preset("chanin_absorption")
    assert tree.describe()["feature_parents"] == (-1, 0, 0, 0)
    np.testing.assert_array_equal(tree.variables()["parents"][1], [-1, 0, 0, 0])
