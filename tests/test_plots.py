"""The figures: which datasets feed which, that each draws a sensible PNG, and clear refusals."""

import json

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure
from PIL import Image

import toymodels as tm
from toymodels import plots
from toymodels.phase import PHASES
from toymodels.plots import basins, neurons, phase_change, style

TRAIN = tm.TrainConfig(steps=100, batch_size=256, log_every=50)
DENSITIES = [1.0, 0.1]


def sweep(model, grid, train=TRAIN):
    return tm.sweep(model, grid, train, progress=False)


@pytest.fixture(scope="module")
def data():
    """Tiny real sweeps, one per kind of figure input (a few seconds each, mostly compiling)."""
    relu = sweep(tm.ToyModelConfig(n_features=8, d_hidden=3, importance_decay=0.8),
                 {"feature_probability": DENSITIES, "seed": [0, 1]},
                 tm.TrainConfig(steps=100, batch_size=256, log_every=50,
                                snapshot_steps=(0, 50, 100)))
    linear = sweep(tm.ToyModelConfig(n_features=8, d_hidden=3, importance_decay=0.8, kind="linear"),
                   {"feature_probability": DENSITIES, "seed": [0, 1]})
    wide = sweep(tm.ToyModelConfig(n_features=50, d_hidden=5), {"feature_probability": DENSITIES})
    phase21 = sweep(tm.ToyModelConfig(n_features=2, d_hidden=1, extra_importance=1.0),
                    {"feature_probability": DENSITIES, "extra_importance": [0.5, 2.0],
                     "seed": [0, 1]})
    hidden = sweep(tm.ToyModelConfig(n_features=6, d_hidden=3, kind="hidden_relu"),
                   {"feature_probability": DENSITIES})
    return {"relu": relu, "linear": linear, "wide": wide, "phase21": phase21, "hidden": hidden}


def no_snapshots(ds):
    return ds.drop_vars([v for v in ds.data_vars if v.endswith("_snapshot")])


def with_model(ds, **changes):
    """`ds` claiming a different model config (for routing tests that need no training)."""
    model = json.loads(ds.attrs["model"]) | changes
    return ds.assign_attrs(model=json.dumps(model))


def as_abs(hidden):
    """A hidden_relu result relabelled as an abs model (W → W_in, plus a W_out)."""
    ds = hidden.rename(W="W_in")
    ds["W_out"] = ds["W_in"].transpose(..., "hidden", "feature")
    return with_model(ds, kind="abs")


def check_png(path, min_width=800):
    assert path.exists()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert min_width <= width <= 2000 and 300 <= height <= 2000, (path.name, image.size)
    assert path.stat().st_size > 10_000


def test_write_figures_draws_every_figure_its_datasets_feed(data, tmp_path):
    paths = plots.write_figures(data, tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted([
        "tms_intro.png",  # relu (8 ≤ 30 features over density); not phase21 (extra_importance)
        "represented_vs_sparsity.png",  # relu with linear
        "feature_geometry.png",  # wide (50 features)
        "phase_2_1.png",  # phase21
        "training_dynamics.png",  # relu (snapshots)
        "neuron_polysemanticity.png",  # hidden
    ])
    assert all(p.parent == tmp_path / "figs" for p in paths)
    for p in paths:
        check_png(p)


@pytest.mark.parametrize("names, expected", [
    (["linear"], []),  # linear alone: no partner for represented_vs_sparsity
    (["wide"], ["feature_geometry.png"]),  # too many features for the intro bars
    (["relu_at_one_density"], []),  # no feature_probability dim, no snapshots
    (["phase21"], ["phase_2_1.png"]),  # extra_importance is a dim the intro does not plot
    (["relu_no_snapshots", "relu_no_snapshots_2"],
     ["tms_intro_relu_no_snapshots.png", "tms_intro_relu_no_snapshots_2.png"]),
    (["relu", "relu_no_snapshots", "linear"],
     ["tms_intro_relu.png", "tms_intro_relu_no_snapshots.png",
      "represented_vs_sparsity_relu_vs_linear.png",
      "represented_vs_sparsity_relu_no_snapshots_vs_linear.png", "training_dynamics.png"]),
])
def test_figure_plan_picks_the_qualifying_datasets(data, names, expected):
    relu = no_snapshots(data["relu"])
    extra = {"relu_no_snapshots": relu, "relu_no_snapshots_2": relu,
             "relu_at_one_density": relu.isel(feature_probability=0)}
    datasets = {n: (data | extra)[n] for n in names}
    assert [file for file, _, _ in plots.figure_plan(datasets)] == expected


def test_write_figures_writes_nothing_for_datasets_that_feed_nothing(data, tmp_path):
    assert plots.write_figures({"linear": data["linear"]}, tmp_path / "out") == []
    assert list((tmp_path / "out").iterdir()) == []


def test_a_grid_dim_the_figure_does_not_plot_must_be_single_valued(data):
    relu = data["relu"].expand_dims(lr=[1e-3, 3e-3]).transpose("lr", ...)
    assert plots.intro.problems(relu.isel(lr=[0])) == []
    with pytest.raises(ValueError, match="grid dim 'lr' has 2 values"):
        plots.tms_intro(relu)


@pytest.mark.parametrize("figure, name, match", [
    (plots.tms_intro, "linear", "model kind is 'linear'; needs 'relu_output'"),
    (plots.tms_intro, "wide", "n_features = 50; needs at most 30"),
    (plots.feature_geometry, "relu", "n_features = 8; needs at least 50"),
    (plots.phase_diagram, "relu", "needs a 'extra_importance' grid dim"),
    (plots.training_dynamics, "linear", "needs a 'W_snapshot' or 'W_in_snapshot' variable"),
    (plots.neuron_polysemanticity, "relu", "model kind is 'relu_output'"),
])
def test_figures_refuse_datasets_they_cannot_draw(data, figure, name, match):
    with pytest.raises(ValueError, match=match):
        figure(data[name])


def test_represented_vs_sparsity_needs_a_matching_pair(data):
    with pytest.raises(ValueError, match="relu: model kind is 'linear'"):
        plots.represented_vs_sparsity(data["linear"], data["relu"])
    with pytest.raises(ValueError, match=r"\(n_features, d_hidden\) differ"):
        plots.represented_vs_sparsity(data["relu"], with_model(data["linear"], n_features=9))


def test_figures_refuse_what_is_not_a_sweep():
    with pytest.raises(ValueError, match="no 'loss' variable"):
        plots.tms_intro(xr.Dataset({"W": (("feature", "hidden"), np.ones((3, 2)))}))
    with pytest.raises(ValueError, match="mapping of name to xarray.Dataset"):
        plots.write_figures([xr.Dataset()], "unused")
    with pytest.raises(ValueError, match=r"datasets\['x'\] must be an xarray.Dataset"):
        plots.write_figures({"x": 3}, "unused")


def test_phase_figure_uses_the_theory_on_the_dataset_grid(data):
    ds = data["phase21"]
    theory = phase_change.theory_for(ds)
    np.testing.assert_allclose(theory["relative_importance"], ds["extra_importance"])
    np.testing.assert_allclose(theory["feature_probability"], ds["feature_probability"])
    empirical = phase_change.empirical_phase(ds)
    assert empirical.dims == ("feature_probability", "relative_importance")
    assert set(np.unique(empirical)) <= set(range(len(PHASES)))
    fig = plots.phase_diagram(ds, theory=theory)
    assert isinstance(fig, Figure)
    assert "agree at" in fig.get_suptitle()


def test_a_3_2_phase_sweep_feeds_phase_3_2(data):
    # The 2→1 sweep relabelled as a 3→2 one; the theory for n = 3 takes minutes to compute, so a
    # stand-in with the right grid replaces it.
    ds = with_model(data["phase21"].isel(feature=[0, 1, 1], hidden=[0, 0]), n_features=3,
                    d_hidden=2)
    assert [file for file, _, _ in plots.figure_plan({"p": ds})] == ["phase_3_2.png"]
    p, r = ds["feature_probability"].values, ds["extra_importance"].values
    theory = xr.Dataset({"phase": (("feature_probability", "relative_importance"),
                                   np.zeros((len(p), len(r)), int))},
                        coords={"feature_probability": p, "relative_importance": r})
    fig = plots.phase_diagram(ds, theory=theory)
    assert fig.get_suptitle().startswith("Phase diagram, 3 features in 2 dims")


def test_a_sweep_with_many_seeds_gets_the_basin_figure_instead(data, tmp_path):
    few = data["phase21"]
    many = few.isel(seed=[0, 1] * 4).assign_coords(seed=np.arange(8))
    assert [f for f, _, _ in plots.figure_plan({"many": many})] == ["phase_basins_2_1.png"]
    assert [f for f, _, _ in plots.figure_plan({"few": few, "many": many})] == [
        "phase_2_1.png", "phase_basins_2_1.png"]
    with pytest.raises(ValueError, match="a basin map needs a 'seed' grid dim of at least 8"):
        plots.phase_basins(few)
    theory = phase_change.theory_for(many)
    assert phase_change.theory_for(few) is theory  # one theory per grid
    fraction = basins.basin_map(many, theory)
    codes = tm.phase.classify_phase(many["W"], many["b"]).transpose(
        "feature_probability", "extra_importance", "seed").values
    expected = (codes == theory["phase"].values[..., None]).mean(-1)
    np.testing.assert_allclose(fraction.transpose("feature_probability", "relative_importance"),
                               expected)
    # The best seed is picked by its exact expected loss, not the recorded training loss.
    exact = phase_change.exact_losses(many)
    point = dict(feature_probability=1, extra_importance=1, seed=3)
    one = many.isel(point)
    np.testing.assert_allclose(exact.isel(point), tm.phase.exact_loss(
        one["W"].values.astype(float), one["b"].values.astype(float),
        float(one["feature_probability"]), [1.0, float(one["extra_importance"])]), rtol=1e-12)
    best = phase_change.empirical_phase(many, exact=True)
    np.testing.assert_array_equal(best, tm.phase.classify_phase(
        many["W"].isel(seed=exact.argmin("seed")), many["b"].isel(seed=exact.argmin("seed"))
    ).transpose("feature_probability", "extra_importance"))
    fig = plots.phase_basins(many, theory=theory)
    assert "best of 8 agrees with theory" in fig.get_suptitle()
    fig.savefig(tmp_path / "basins.png", dpi=style.DPI)
    check_png(tmp_path / "basins.png")


def test_phase_figure_needs_equal_base_importances(data):
    ds = with_model(data["phase21"].isel(extra_importance=[0]), n_features=3, d_hidden=2,
                    importance_decay=0.5)
    assert any("unequal importances" in p for p in phase_change.problems(ds))


def test_neuron_figure_draws_one_line_per_model_and_reads_abs_responses_signed(data):
    hidden, fake_abs = data["hidden"], as_abs(data["hidden"])
    np.testing.assert_allclose(neurons.responses(fake_abs), np.abs(fake_abs["W_in"]))
    np.testing.assert_allclose(neurons.responses(hidden), np.maximum(hidden["W"], 0))
    fig = plots.neuron_polysemanticity({"hidden": hidden, "abs": fake_abs})
    lines = [line.get_label() for line in fig.subfigs[0].axes[0].get_lines()]
    assert lines == ["hidden ReLU, 6→3", "abs (computation), 6→3"]
    assert all(line.get_color() == style.KIND_COLORS[k]
               for line, k in zip(fig.subfigs[0].axes[0].get_lines(), ["hidden_relu", "abs"]))
    # The loss panel divides hidden_relu's loss by the aligned solution's exact loss; abs has none.
    assert neurons.aligned_loss(fake_abs) is None
    optimum = neurons.aligned_loss(hidden)
    np.testing.assert_allclose(optimum, [tm.analysis.aligned_loss(np.ones(6), p, 3)
                                         for p in hidden["feature_probability"].values])
    ratio = fig.subfigs[0].axes[2].get_lines()[0].get_ydata()
    best = plots._data.sorted_by(plots._data.lowest_loss(hidden), "feature_probability")
    np.testing.assert_allclose(ratio, best["loss"] / optimum.sel(
        feature_probability=best["feature_probability"]), rtol=1e-6)


def test_lowest_loss_seed_is_what_the_figures_show(data):
    ds = data["relu"]
    best = plots._data.lowest_loss(ds)
    for i, p in enumerate(ds["feature_probability"].values):
        seed = int(ds["loss"].sel(feature_probability=p).argmin("seed"))
        np.testing.assert_array_equal(best["W"].sel(feature_probability=p),
                                      ds["W"].sel(feature_probability=p).isel(seed=seed))


def test_lowest_loss_skips_diverged_seeds(data):
    ds = data["relu"].copy(deep=True)
    ds["loss"][:] = np.array([[np.nan, 1.0], [np.nan, np.nan]])
    best = plots._data.lowest_loss(ds)
    assert best["seed"].values.tolist() == [1, 0]


def test_phase_colours_are_one_per_phase_in_code_order():
    assert tuple(style.PHASE_COLORS) == PHASES
    codes = np.arange(len(PHASES))
    colors = style.PHASE_CMAP(style.PHASE_NORM(codes))
    expected = [style.mpl.colors.to_rgba(style.PHASE_COLORS[p]) for p in PHASES]
    np.testing.assert_allclose(colors, expected)


def test_phase_diagram_picks_each_point_by_exact_loss_not_the_recorded_one(data):
    ds = data["phase21"].isel(seed=[0, 0]).assign_coords(seed=[0, 1])
    # Seed 1: a dead model (W = 0, b = 0: nothing represented, a high exact loss) whose recorded
    # training loss claims to be the lowest everywhere.
    dead = ds["seed"] == 1
    ds = ds.assign(W=ds["W"].where(~dead, 0.0), b=ds["b"].where(~dead, 0.0),
                   loss=ds["loss"].where(~dead, -1.0))
    theory = phase_change.theory_for(ds)
    honest = float(phase_change.agreement_of(
        phase_change.seed_phases(ds).sel(seed=0, drop=True), theory["phase"]))
    fooled = float(phase_change.agreement_of(phase_change.empirical_phase(ds), theory["phase"]))
    assert fooled < honest
    assert f"agree at {honest:.1%}" in plots.phase_diagram(ds, theory=theory).get_suptitle()
