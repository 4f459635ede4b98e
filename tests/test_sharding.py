"""Chunks sharded over 4 host devices give the single-device numbers."""

import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import sys
    import jax
    import numpy as np
    import toymodels as tm
    assert len(jax.devices()) == 4, jax.devices()
    model = tm.ToyModelConfig(n_features=6, d_hidden=2, importance_decay=0.9)
    train = tm.TrainConfig(steps=100, batch_size=64, log_every=50)
    grid = {"feature_probability": [1.0, 0.3, 0.1, 0.03, 0.01], "seed": [0, 1, 2]}
    many = tm.sweep(model, grid, train, chunk_size=8, progress=False)
    one = tm.sweep(model, grid, train, devices=jax.devices()[:1], chunk_size=8, progress=False)
    np.savez(sys.argv[1], many=many.W.values, one=one.W.values,
             many_loss=many.loss.values, one_loss=one.loss.values)
""")


def test_four_host_devices_match_one(tmp_path):
    script = tmp_path / "shard.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    subprocess.run([sys.executable, str(script), str(tmp_path / "out.npz")], env=env, check=True)
    z = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(z["many"], z["one"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(z["many_loss"], z["one_loss"], rtol=1e-4, atol=1e-7)
