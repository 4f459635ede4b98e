"""A killed sweep loses only the chunk in flight, and re-running it resumes."""

import textwrap

import numpy as np
import pytest

import toymodels as tm
from killed_sweep import kill_after_chunks

SCRIPT = textwrap.dedent("""
    import sys
    import toymodels as tm
    model = tm.ToyModelConfig(n_features=5, d_hidden=2)
    train = tm.TrainConfig(steps={steps}, batch_size=128, log_every=100)
    tm.sweep(model, {{"feature_probability": [1.0, 0.5, 0.2, 0.1, 0.05, 0.02], "seed": [0, 1]}},
             train, out=sys.argv[1], chunk_size=2, progress=False)
""")
MODEL = tm.ToyModelConfig(n_features=5, d_hidden=2)
GRID = {"feature_probability": [1.0, 0.5, 0.2, 0.1, 0.05, 0.02], "seed": [0, 1]}


def test_killed_sweep_resumes_without_retraining(tmp_path):
    steps = 3000
    out, finished = kill_after_chunks(SCRIPT.format(steps=steps), tmp_path, 2)
    assert 2 <= len(finished) < 6, finished
    assert not (out / "results.nc").exists()

    train = tm.TrainConfig(steps=steps, batch_size=128, log_every=100)
    resumed = tm.sweep(MODEL, GRID, train, out=str(out), chunk_size=2, progress=False)
    # finished chunks were loaded, not retrained
    for name, mtime in finished.items():
        assert (out / "chunks" / name).stat().st_mtime_ns == mtime
    assert len(list((out / "chunks").glob("*.npz"))) == 6

    fresh = tm.sweep(MODEL, GRID, train, chunk_size=2, progress=False)
    for name in ("W", "b", "loss", "loss_history"):
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values)
    stored = tm.load_results(out)
    np.testing.assert_array_equal(stored.W.values, fresh.W.values)
    np.testing.assert_array_equal(stored.feature_probability.values, GRID["feature_probability"])


def test_out_folder_of_another_sweep_is_refused(tmp_path):
    train = tm.TrainConfig(steps=20, batch_size=32, log_every=10)
    tm.sweep(MODEL, {"seed": [0]}, train, out=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="different sweep"):
        tm.sweep(MODEL, {"seed": [1]}, train, out=str(tmp_path), progress=False)
