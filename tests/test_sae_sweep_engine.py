"""What the sweep engine promises toy models holds for SAE sweeps: host data (here transcoder
pairs) trains as a Python loop over its batches does, chunk-size independence, `diverged` flagged
and contained in its vmapped block, and resume after SIGKILL without retraining finished chunks.
"""

import dataclasses
import math
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from toymodels import trainers
import toymodels as tm
from killed_sweep import kill_after_chunks
from sae_reference import CASES, ground_truth, with_coefficients

TRAIN = tm.TrainConfig(steps=6, batch_size=16, log_every=3, lr=3e-3)


def test_host_pairs_train_as_a_python_loop_over_their_batches():
    """A transcoder fed (input, target) pairs from the host: every SAE sees the same batches,
    initialises on the first (which it also trains on) and differs only by its own values."""
    cfg = with_coefficients(CASES["transcoder"])
    rng = np.random.default_rng(0)
    pairs = [(rng.normal(size=(TRAIN.batch_size, cfg.d_in)).astype(np.float32),
              rng.normal(size=(TRAIN.batch_size, cfg.d_out)).astype(np.float32))
             for _ in range(TRAIN.steps)]
    grid = {"l1_coefficient": [0.05, 0.5], "seed": [0, 1]}
    ds = tm.sweep(cfg, grid, TRAIN, data=pairs, progress=False)
    trainer = trainers.make_trainer(cfg, TRAIN, pairs)
    init, step = jax.jit(trainer.init), jax.jit(trainer.step)
    for l1 in grid["l1_coefficient"]:
        for seed in grid["seed"]:
            swept = trainer.swept(with_coefficients(cfg, l1_coefficient=l1),
                                  dataclasses.replace(TRAIN, seed=seed), 0)
            state = init(swept, pairs[0])
            for t, pair in enumerate(pairs):
                state, _ = step(state, swept, pair, jnp.int32(t))
            point = ds.sel(l1_coefficient=l1, seed=seed)
            for name, array in trainer.outputs(state).items():
                np.testing.assert_allclose(point[name], array, rtol=1e-4, atol=1e-5, err_msg=name)
    assert ds.W_dec.dims == ("l1_coefficient", "seed", "latent", "d_out")
    assert not ds.diverged.any()


def test_chunk_size_does_not_change_results_with_host_data():
    """Host data is read again from its start for every chunk: a point's numbers depend only on
    its own values and seed (in-graph data: test_sae_sweep.py), here with BatchTopK's state."""
    cfg = with_coefficients(CASES["batchtopk"], dead_feature_window=2)
    grid = {"aux_loss_coefficient": [0.1, 1.0], "seed": [0, 1]}
    rows = np.random.default_rng(0).normal(size=(150, cfg.d_in)).astype(np.float32)
    pieces = [rows[i:i + 50] for i in range(0, 150, 50)]  # regrouped into batches of 16, cycled
    whole = tm.sweep(cfg, grid, TRAIN, data=pieces, progress=False)
    ones = tm.sweep(cfg, grid, TRAIN, data=pieces, chunk_size=1, progress=False)
    for name in ("W_enc", "W_dec", "b_dec", "threshold", "training_latent_density", "loss_history"):
        np.testing.assert_allclose(ones[name], whole[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(whole.W_dec.isel(seed=0), whole.W_dec.isel(seed=1))


def test_divergence_is_flagged_and_contained():
    """lr 1e30 with sgd blows one SAE up; its neighbour in the same vmapped block is untouched."""
    cfg = with_coefficients(CASES["jumprelu_step"])
    train = tm.TrainConfig(steps=6, batch_size=16, log_every=3, optimizer="sgd")
    one_block = jax.devices()[:1]
    ds = tm.sweep(cfg, {"lr": [1e-3, 1e30]}, train, data=ground_truth(cfg), devices=one_block,
                  progress=False)
    assert ds.diverged.values.tolist() == [False, True]
    alone = tm.sweep(cfg, {"lr": [1e-3]}, train, data=ground_truth(cfg), devices=one_block,
                     progress=False)
    for name in ("W_enc", "W_dec", "threshold", "loss_history"):
        assert np.isfinite(ds[name].sel(lr=1e-3)).all(), name
        np.testing.assert_allclose(ds[name].sel(lr=1e-3), alone[name].sel(lr=1e-3), rtol=1e-5,
                                   atol=1e-6, err_msg=name)


SCRIPT = textwrap.dedent("""
    import sys
    import toymodels as tm
    sae = tm.SAEConfig(d_in=6, d_sae=12, architecture="topk", k=2, dead_feature_window=50)
    data = tm.GroundTruth(d_in=6, n_features=10, mean_active=2.0)
    train = tm.TrainConfig(steps={steps}, batch_size=64, log_every=100)
    tm.sweep(sae, {{"aux_loss_coefficient": [0.0, 0.01, 0.1, 1.0], "seed": [0, 1]}}, train,
             data=data, out=sys.argv[1], chunk_size=1, progress=False)
""")


def test_killed_sae_sweep_resumes_without_retraining(tmp_path):
    steps = 1000
    out, finished = kill_after_chunks(SCRIPT.format(steps=steps), tmp_path, 2)
    n_chunks = math.ceil(8 / len(jax.devices()))  # chunk_size=1: one point per device
    assert 2 <= len(finished) < n_chunks, finished
    assert not (out / "results.nc").exists()

    sae = tm.SAEConfig(d_in=6, d_sae=12, architecture="topk", k=2, dead_feature_window=50)
    data = tm.GroundTruth(d_in=6, n_features=10, mean_active=2.0)
    train = tm.TrainConfig(steps=steps, batch_size=64, log_every=100)
    grid = {"aux_loss_coefficient": [0.0, 0.01, 0.1, 1.0], "seed": [0, 1]}
    resumed = tm.sweep(sae, grid, train, data=data, out=str(out), chunk_size=1, progress=False)
    for name, mtime in finished.items():  # finished chunks were loaded, not retrained
        assert (out / "chunks" / name).stat().st_mtime_ns == mtime
    assert len(list((out / "chunks").glob("*.npz"))) == n_chunks
    fresh = tm.sweep(sae, grid, train, data=data, chunk_size=1, progress=False)
    for name in ("W_enc", "W_dec", "b_enc", "b_dec", "training_latent_density", "loss_history"):
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values, err_msg=name)
    stored = tm.load_results(out)
    np.testing.assert_array_equal(stored.W_dec.values, fresh.W_dec.values)
