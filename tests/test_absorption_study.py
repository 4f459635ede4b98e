"""The absorption study (experiments/absorption_study.py): its report, its matched-L0 table and
its figure, on a run small enough for CI (two variants, one preset, one seed, 30 steps)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels.plots.absorption import absorption_study, study_problems

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study():
    spec = importlib.util.spec_from_file_location("absorption_study",
                                                  ROOT / "experiments" / "absorption_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_halving_widths_are_matryoshka_widths(study):
    assert study.halving_widths(4) == (1, 2, 4)
    assert study.halving_widths(20) == (1, 2, 5, 10, 20)
    assert study.halving_widths(64) == (4, 8, 16, 32, 64)
    for preset in study.PRESETS:
        truth = tm.GroundTruth.preset(preset)
        for fields, knob, values in study.variants(preset, truth.n_features).values():
            tm.SAEConfig(d_in=truth.d_in, d_sae=truth.n_features, **(fields | {knob: values[0]}))
        assert study.TREE_WIDTHS[preset][-1] == truth.n_features


def test_a_small_study_reports_every_sae_and_matches_l0(study, tmp_path, monkeypatch):
    full = study.variants

    def two(preset, n_features):
        table = full(preset, n_features)
        return {"standard": table["standard"], "topk": table["topk"]}

    monkeypatch.setattr(study, "variants", two)
    train = tm.TrainConfig(steps=30, batch_size=256, log_every=10)
    report = study.run(["chanin_absorption"], train, range(1), tmp_path, progress=False)
    assert dict(report.sizes) == {"preset": 1, "variant": 2, "setting": 4, "seed": 1}
    # standard: 4 l1 values, topk: k = 1, 2 (the rest NaN); the work counted from the grid
    assert report.attrs["models"] == 4 + 2 and report.attrs["sae_steps"] == 6 * 30
    topk = report.isel(preset=0).sel(variant="topk")
    # TopK keeps k, less where a kept pre-activation is ≤ 0 (ReLU after the selection)
    l0_topk = topk["l0"].values[:2, 0]
    assert (l0_topk <= [1, 2]).all() and np.allclose(l0_topk, [1, 2], rtol=1e-3)
    assert np.isnan(topk["l0"].values[2:]).all()
    np.testing.assert_array_equal(topk["setting_value"].values[:2], [1, 2])
    assert not study_problems(report)

    rows = study.matched(report)
    assert [r["variant"] for r in rows] == ["standard", "topk"]
    by = {r["variant"]: r for r in rows}
    assert by["topk"]["value"] == 1  # k = 1 is nearest the truth's L0 of 0.36
    l0 = report.isel(preset=0).sel(variant="standard")["l0"].values[:, 0]
    target = float(report["true_l0"][0])
    assert by["standard"]["l0"][0] == l0[np.argmin(np.abs(np.log(l0 / target)))]
    assert "| chanin_absorption (0.3" in study.table(rows, report)
    absorption_study(report)  # draws


def test_the_figure_names_what_a_report_lacks():
    with pytest.raises(ValueError, match="'variant'"):
        absorption_study(xr.Dataset({"l0": ("preset", [1.0])}))
