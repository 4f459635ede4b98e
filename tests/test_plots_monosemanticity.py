"""The monosemanticity figures: routing from a sweep's content, sensible PNGs, clear refusals."""

import json

import numpy as np
import pytest
import xarray as xr

import toymodels as tm
from toymodels import plots
from toymodels.plots import monosemanticity

TRAIN = tm.TrainConfig(steps=20, batch_size=64, log_every=10, schedule="cosine_annealing",
                       annealing_steps=8)
MODEL = tm.ToyModelConfig(kind="jermyn_autoencoder", n_features=10, d_embed=4, d_hidden=12,
                          feature_probability=0.2)


@pytest.fixture(scope="module")
def data():
    bias = tm.sweep(MODEL, {"init_bias": [-1.0, 0.0], "bias_decay": [0.0, 0.5], "seed": [0, 1]},
                    TRAIN, progress=False)
    width = tm.sweep(MODEL, {"d_hidden": [6, 12], "seed": [0]}, TRAIN, progress=False)
    # A TMS result: routed to the TMS figures, refused by these (relabelled: no training needed).
    model = json.loads(bias.attrs["model"]) | {"kind": "relu_output"}
    tms = bias.isel(bias_decay=0).assign_attrs(model=json.dumps(model))
    return {"bias": bias, "width": width, "tms": tms}


def test_count_is_jermyns_max_over_sum(data):
    ds = data["bias"]
    count = monosemanticity.monosemantic_count(ds)
    assert count.dims == ("init_bias", "bias_decay", "seed")
    # Their single_feature_activations and frac_mono, in NumPy, for one model.
    point = ds.isel(init_bias=0, bias_decay=1, seed=1)
    U = MODEL.embeddings()[0]
    sfa = np.maximum(U @ point.W_in.values + point.b_in.values, 0).T  # (neuron, feature)
    frac = sfa.max(1) / (1e-10 + sfa.sum(1))
    assert int(count.isel(init_bias=0, bias_decay=1, seed=1)) == int((frac > 0.999).sum())


def test_figures_are_routed_by_content(data, tmp_path):
    plan = plots.figure_plan(data)
    names = sorted(file for file, _, _ in plan)
    assert names == ["monosemanticity_bias.png", "monosemanticity_vs_loss.png",
                     "monosemanticity_width.png"]
    paths = plots.write_figures({k: data[k] for k in ("bias", "width")}, tmp_path)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_refusals_say_why(data):
    with pytest.raises(ValueError, match="kind"):
        monosemanticity.monosemanticity_sweep(data["tms"])
    single = data["bias"].isel(init_bias=[0], bias_decay=[0])
    with pytest.raises(ValueError, match="more than one value"):
        monosemanticity.monosemanticity_sweep(single)
    with pytest.raises(ValueError, match="no datasets"):
        monosemanticity.monosemanticity_vs_loss({})
    assert isinstance(monosemanticity.monosemanticity_vs_loss(data["bias"]), object)
    assert isinstance(data["bias"], xr.Dataset)
