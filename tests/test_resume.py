"""A killed sweep loses only the chunk in flight, and re-running it resumes."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import toymodels as tm

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
    out = tmp_path / "run"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(steps=steps))
    proc = subprocess.Popen([sys.executable, str(script), str(out)])
    try:
        deadline = time.time() + 300
        while time.time() < deadline and len(list((out / "chunks").glob("*.npz"))) < 2:
            assert proc.poll() is None, "the sweep finished before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    finished = {f.name: f.stat().st_mtime_ns for f in (out / "chunks").glob("*.npz")}
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
