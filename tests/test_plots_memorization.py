"""The finite-data figures (Henighan et al. 2023): which sweeps feed them, that they draw, and the
regime numbers they are drawn from."""

import numpy as np
import pytest
from matplotlib.figure import Figure

import toymodels as tm
from toymodels import plots
from toymodels.plots import memorization

MODEL = tm.ToyModelConfig(n_features=30, d_hidden=2, feature_probability=0.1, unit_norm_inputs=True,
                          test_size=256)
TRAIN = tm.TrainConfig.henighan2023(300)


@pytest.fixture(scope="module")
def data():
    grid = {"dataset_size": [3, 10, 100], "seed": [0, 1]}
    finite = tm.sweep(MODEL, grid, TRAIN, progress=False)
    decayed = tm.sweep(MODEL, grid, tm.TrainConfig.henighan2023(300, weight_decay=1.0),
                       progress=False)
    width = tm.sweep(MODEL, {"dataset_size": [3, 30], "d_hidden": [1, 3], "seed": [0]}, TRAIN,
                     progress=False)
    stream = tm.sweep(tm.ToyModelConfig(n_features=30, d_hidden=2),
                      {"feature_probability": [0.1, 0.01]}, tm.TrainConfig(steps=100),
                      progress=False)
    return {"finite": finite, "decayed": decayed, "width": width, "stream": stream}


def test_the_plan_picks_the_finite_sweeps(data):
    plan = {file: (fn, args) for file, fn, args in plots.figure_plan(data)}
    fn, (datasets,) = plan["double_descent.png"]
    assert fn is plots.double_descent and sorted(datasets) == ["decayed", "finite"]
    assert {"memorization_geometry_finite.png", "memorization_geometry_decayed.png",
            "memorization_width.png"} <= set(plan)
    assert not any("memorization" in f or "double" in f for f, (_, a) in plan.items()
                   if a and a[0] is data["stream"])


def test_figures_draw(data, tmp_path):
    for fig in (plots.double_descent({"a": data["finite"], "b": data["decayed"]}),
                plots.memorization_geometry(data["finite"]),
                plots.memorization_width(data["width"])):
        assert isinstance(fig, Figure)
        fig.savefig(tmp_path / "f.png")
    with pytest.raises(ValueError, match="dataset_size"):
        plots.double_descent({"s": data["stream"]})
    with pytest.raises(ValueError, match="d_hidden"):
        plots.memorization_width(data["finite"])


def test_regime_table_is_computed_from_the_training_points(data):
    ds = data["finite"]
    rows = memorization.regime_table(ds)
    assert [r["dataset_size"] for r in rows] == [3, 10, 100]
    h = memorization.hidden_vectors(ds, 10, 1)
    x = tm.training_set(tm.ToyModelConfig(**{**MODEL.__dict__, "dataset_size": 10}), seed=1)
    np.testing.assert_allclose(h, x @ ds.W.sel(dataset_size=10, seed=1).values, rtol=1e-6)
    means = [float(tm.analysis.represented_dimensionality(memorization.hidden_vectors(ds, 10, s),
                                                            0.5)) for s in (0, 1)]
    np.testing.assert_allclose(rows[1]["datapoint_D"], np.nanmean(means), rtol=1e-6)
    np.testing.assert_allclose(rows[2]["test_loss"], float(ds.test_loss.sel(dataset_size=100)
                                                          .mean()), rtol=1e-6)
    # the zero model's loss on unit-norm samples: P(any feature on) / n
    assert memorization.zero_loss(ds) == pytest.approx((1 - 0.9**30) / 30)
