"""The universality study's table, figures and split table: right numbers, clear refusals."""

import json

import jax
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from matplotlib.figure import Figure

import toymodels as tm
from toymodels import analysis, plots
from toymodels.experiment import Experiment
from toymodels.plots import _universality
from toymodels.plots import universality as U

TRUTH = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0, seed=0)
N_INPUTS = 512


@pytest.fixture(scope="module")
def ds():
    """Two widths × three seeds on a 12-feature ground truth (seconds, mostly compiling)."""
    return tm.sweep(tm.SAEConfig(d_in=8, d_sae=12, l1_coefficient=0.05),
                    {"d_sae": [12, 24], "seed": [0, 1, 2]},
                    tm.TrainConfig(steps=60, batch_size=128, lr=3e-3, log_every=30), data=TRUTH,
                    progress=False)


@pytest.fixture(scope="module")
def table(ds):
    return U.universality_table(ds, n_inputs=N_INPUTS)


def test_table_layout_and_decoder_scores(ds, table):
    pair = ("d_sae_a", "seed_a", "d_sae_b", "seed_b")
    assert table["decoder_similarity"].dims == pair
    assert table["activation_similarity"].dims == pair
    assert table["baseline"].dims == ("d_sae_a", "d_sae_b")
    for name in ("mmcs", "mcc", "recovered", "dead_fraction", "activation_recovery"):
        assert table[name].dims == ("d_sae", "seed")
    np.testing.assert_array_equal(table["ratio"], [1.0, 2.0])
    parts = tm.split_widths(ds)
    for wa, sa, wb, sb in [(12, 0, 12, 1), (12, 2, 24, 0), (24, 1, 24, 2)]:
        expected = analysis.mean_max_cosine(parts[wa].W_dec.sel(seed=sa).values,
                                            parts[wb].W_dec.sel(seed=sb).values)
        got = table["decoder_similarity"].sel(d_sae_a=wa, seed_a=sa, d_sae_b=wb, seed_b=sb)
        np.testing.assert_allclose(got, expected, rtol=1e-5)
        np.testing.assert_allclose(
            table["baseline"].sel(d_sae_a=wa, d_sae_b=wb), analysis.random_baseline(wa, wb, 8))
    for name in ("decoder_similarity", "activation_similarity"):
        S = table[name].values.reshape(6, 6)
        np.testing.assert_allclose(S, S.T, rtol=1e-6)
        np.testing.assert_allclose(np.diag(S), 1.0, rtol=1e-5)
    np.testing.assert_allclose(table["mmcs"].sel(d_sae=24),
                               analysis.mmcs(parts[24].W_dec, TRUTH.dictionary), rtol=1e-5)


def test_latent_scores_match_brute_force(ds, table):
    W = tm.split_widths(ds)[24].W_dec.values                   # (seed, 24, 8)

    def unit(x):
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    truth = (unit(W) @ unit(TRUTH.dictionary).T).max(-1)
    np.testing.assert_allclose(table["latent_truth_cosine"].sel(d_sae=24), truth, atol=1e-5)
    other = [(unit(W[0]) @ unit(W[j]).T).max(-1) for j in (1, 2)]
    np.testing.assert_allclose(table["latent_seed_cosine"].sel(d_sae=24, seed=0),
                               np.mean(other, axis=0), atol=1e-5)
    assert np.isnan(table["latent_truth_cosine"].sel(d_sae=12).isel(latent=slice(12, None))).all()


def test_activation_scores_match_the_dense_metrics(ds, table):
    c = TRUTH.coefficients(jax.random.key(0), N_INPUTS)
    x = c @ TRUTH.dictionary
    saes = [tm.SAE.from_results(ds.sel(d_sae=w, seed=s)) for w, s in [(12, 1), (24, 2)]]
    fa, fb = (np.asarray(sae.encode(x)) for sae in saes)
    alive_a, alive_b = fa.std(0) > 0, fb.std(0) > 0
    expected = 0.5 * (np.asarray(analysis.max_activation_correlation(fa, fb))[alive_a].mean()
                      + np.asarray(analysis.max_activation_correlation(fb, fa))[alive_b].mean())
    got = table["activation_similarity"].sel(d_sae_a=12, seed_a=1, d_sae_b=24, seed_b=2)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    varies = np.asarray(c).std(0) > 0
    recovery = np.asarray(analysis.max_activation_correlation(c, fb))[varies].mean()
    np.testing.assert_allclose(table["activation_recovery"].sel(d_sae=24, seed=2), recovery,
                               atol=1e-5)


def test_diverged_saes_are_left_out(ds):
    broken = ds.copy(deep=True)
    point = {"d_sae": 24, "seed": 1}
    broken["diverged"].loc[point] = True
    for name in ("W_enc", "W_dec"):        # what a diverged run leaves behind
        broken[name].loc[point] = np.nan
    table = U.universality_table(broken, n_inputs=N_INPUTS)
    for name in ("mmcs", "mcc", "activation_recovery"):
        assert np.isnan(table[name].sel(point))
        assert np.isfinite(table[name].sel(d_sae=24, seed=[0, 2])).all()
    for name in ("decoder_similarity", "activation_similarity"):
        assert np.isnan(table[name].sel(d_sae_a=24, seed_a=1)).all()
        assert np.isnan(table[name].sel(d_sae_b=24, seed_b=1)).all()
        assert np.isfinite(table[name].sel(d_sae_a=12, seed_a=0, d_sae_b=24, seed_b=0))
        assert np.isfinite(_universality.by_width(table[name])).all()


def test_figures_draw_and_share_a_table(ds, table):
    for figure in (U.universality_similarity, U.universality_vs_recovery):
        assert isinstance(figure(ds, table), Figure)
    assert isinstance(U.universality_similarity(ds), Figure)  # computes its own (decoders only)
    with pytest.raises(ValueError, match="no activation scores"):
        U.universality_vs_recovery(ds, U.universality_table(ds, activations=False))


def test_split_table_names_the_true_features(ds):
    splits = U.feature_split_table(ds, n_inputs=N_INPUTS)
    assert list(splits.columns[:3]) == ["d_sae_narrow", "d_sae_wide", "seed"]
    assert {"narrow_latent", "wide_latent", "cosine", "coactivation", "n_split", "narrow_feature",
            "narrow_truth_cosine", "wide_feature", "wide_truth_cosine"} <= set(splits.columns)
    assert (splits.d_sae_narrow == 12).all() and (splits.d_sae_wide == 24).all()
    narrow = tm.SAE.from_results(ds.sel(d_sae=12, seed=0)).W_dec
    for row in splits.itertuples():
        cosines = narrow[row.narrow_latent] @ TRUTH.dictionary.T / np.linalg.norm(
            narrow[row.narrow_latent])
        assert row.narrow_feature == cosines.argmax()
        np.testing.assert_allclose(row.narrow_truth_cosine, cosines.max(), atol=1e-5)
    with pytest.raises(ValueError, match=r"wide must be one of the widths \[12, 24\]"):
        U.feature_split_table(ds, wide=48)
    with pytest.raises(ValueError, match=r"seed must be one of \[0, 1, 2\]"):
        U.feature_split_table(ds, seed=7)


def test_write_figures_routes_the_sweep_and_writes_the_csv(ds, tmp_path):
    names = [file for file, _, _ in plots.figure_plan({"u": ds})]
    assert names == ["latent_density.png", "universality_similarity.png",
                     "universality_vs_recovery.png", "universality_feature_splits.csv"]
    paths = plots.write_figures({"u": ds.isel(seed=[0, 1])}, tmp_path)
    assert sorted(p.name for p in paths) == sorted(names)
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(tmp_path / "universality_feature_splits.csv")
    assert "narrow_truth_cosine" in table.columns


def relabel(ds, **data):
    return ds.assign_attrs(data=json.dumps(json.loads(ds.attrs["data"]) | data))


def without_attrs(ds):
    out = ds.copy()
    out.attrs = {}
    return out


@pytest.mark.parametrize("change, match", [
    (lambda ds: ds.isel(seed=[0]), "needs a 'seed' grid dim with at least 2 seeds"),
    (lambda ds: ds.isel(d_sae=[1]), "needs a 'd_sae' grid dim with at least 2 widths"),
    (lambda ds: ds.drop_vars("dictionary"), "needs one known dictionary"),
    (lambda ds: relabel(ds, kind="toy_activations"), "needs GroundTruth data"),
    (lambda ds: ds.expand_dims(lr=[1e-3, 3e-3]).transpose("lr", ...),
     "grid dim 'lr' has 2 values"),
    (without_attrs, "not an SAE sweep"),
    (lambda ds: ds.drop_vars("loss"), "not a sweep result"),
])
def test_figures_refuse_what_they_cannot_draw(ds, change, match):
    bad = change(ds)
    assert any(match in p for p in U.problems(bad))
    for function in (U.universality_table, U.universality_similarity,
                     U.universality_vs_recovery, U.feature_split_table):
        with pytest.raises(ValueError, match=match):
            function(bad)
    assert [f for f, _, _ in plots.figure_plan({"bad": bad}) if "universality" in f] == []


def test_table_refuses_bad_options_and_foreign_data(ds):
    with pytest.raises(ValueError, match="n_inputs must be an integer ≥ 2"):
        U.universality_table(ds, n_inputs=1)
    with pytest.raises(ValueError, match="does not rebuild its 'dictionary'"):
        U.universality_table(relabel(ds, seed=1), n_inputs=N_INPUTS)


# --- pure helpers, for every input -------------------------------------------------------------

EXAMPLES = settings(max_examples=30, deadline=None)


def sparse_activations(batch, width):
    """(batch, width) ≥ 0, mostly zeros, some columns dead or constant."""
    values = st.sampled_from([0.0, 0.0, 0.0, 0.25, 1.0, 1.5, 3.0])
    return hnp.arrays(np.float64, (batch, width), elements=values)


@EXAMPLES
@given(st.sampled_from([3, 12]).flatmap(lambda n: st.tuples(sparse_activations(n, 4),
                                                      sparse_activations(n, 3))))
def test_sparse_correlations_equal_the_dense_metric(acts):
    a, b = acts
    row, column = _universality.max_correlations(_universality.Activations(sp.csr_matrix(a)),
                                                 _universality.Activations(sp.csr_matrix(b)))
    np.testing.assert_allclose(row, analysis.max_activation_correlation(a, b), atol=1e-5)
    np.testing.assert_allclose(column, analysis.max_activation_correlation(b, a), atol=1e-5)
    assert np.all(np.abs(row) <= 1 + 1e-9)


@EXAMPLES
@given(hnp.arrays(np.float64, (2, 3, 2, 3), elements=st.floats(-1, 1)),
       st.floats(0.0, 1.0))
def test_seed_averages_leave_out_each_sae_against_itself(values, self_score):
    coords = {"d_sae_a": [4, 8], "seed_a": [0, 1, 2], "d_sae_b": [4, 8], "seed_b": [0, 1, 2]}
    pairs = xr.DataArray(values, dims=list(coords), coords=coords)
    for w in range(2):
        for s in range(3):
            pairs[w, s, w, s] = self_score       # whatever a self-pair holds, it never counts
    flat = values.reshape(6, 6).copy()
    np.fill_diagonal(flat, np.nan)
    blocks = flat.reshape(2, 3, 2, 3)
    np.testing.assert_allclose(_universality.by_width(pairs), np.nanmean(blocks, axis=(1, 3)))
    rows = _universality.per_sae(pairs)
    for w in range(2):
        np.testing.assert_allclose(rows["same_width"][w], np.nanmean(blocks[w, :, w, :], -1))
        np.testing.assert_allclose(rows["other_widths"][w],
                                   np.nanmean(blocks[w, :, 1 - w, :], -1))


def test_the_experiment_is_sharkey_shrunk_by_four():
    exp = Experiment.from_toml("experiments/sae_universality.toml")
    truth, sharkey = exp.data, tm.GroundTruth(d_in=256, n_features=512, mean_active=5.0,
                                              frequency_decay=0.99)
    assert list(exp.grid) == ["d_sae", "seed"] and exp.grid["seed"] == [0, 1, 2, 3]
    assert [w / truth.n_features for w in exp.grid["d_sae"]] == [1, 2, 4, 8, 16, 32]
    assert truth.n_features / truth.d_in == sharkey.n_features / sharkey.d_in
    assert truth.mean_active / truth.d_in == sharkey.mean_active / sharkey.d_in
    # Feature i fires as often as Sharkey's features 4i … 4i+3 do on average.
    np.testing.assert_allclose(truth.probabilities,
                               sharkey.probabilities.reshape(-1, 4).mean(1), rtol=1e-12)
