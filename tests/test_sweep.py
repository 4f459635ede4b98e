"""The sweep engine: labels, independence of points, chunking, devices, divergence."""

import json

import jax
import numpy as np
import pytest

import toymodels as tm
from toymodels.train import make_trainer

MODEL = tm.ToyModelConfig(n_features=6, d_hidden=2, importance_decay=0.8)
TRAIN = tm.TrainConfig(steps=60, batch_size=64, log_every=20)
GRID = {"feature_probability": [1.0, 0.3, 0.05], "seed": [0, 1]}


@pytest.fixture(scope="module")
def base():
    return tm.sweep(MODEL, GRID, TRAIN, progress=False)


def test_dataset_layout(base):
    assert list(base.W.dims) == ["feature_probability", "seed", "feature", "hidden"]
    assert base.W.shape == (3, 2, 6, 2)
    assert list(base.b.dims) == ["feature_probability", "seed", "feature"]
    assert list(base.loss.dims) == ["feature_probability", "seed"]
    np.testing.assert_array_equal(base.feature_probability, [1.0, 0.3, 0.05])
    np.testing.assert_array_equal(base.seed, [0, 1])
    np.testing.assert_array_equal(base.step, [20, 40, 60])
    assert not base.diverged.any()
    assert json.loads(base.attrs["model"])["n_features"] == 6


def test_sweep_equals_python_loop_over_points(base):
    trainer = make_trainer(MODEL, TRAIN)
    for p in GRID["feature_probability"]:
        for seed in GRID["seed"]:
            m = tm.ToyModelConfig(n_features=6, d_hidden=2, importance_decay=0.8, feature_probability=p)
            t = tm.TrainConfig(steps=60, batch_size=64, log_every=20, seed=seed)
            params, history, _ = trainer.train(tm.Swept.from_configs(m, t))
            point = base.sel(feature_probability=p, seed=seed)
            np.testing.assert_allclose(point.W, params["W"], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(point.loss_history, history, rtol=1e-4, atol=1e-6)


def test_point_independent_of_grid_and_chunking(base):
    alone = tm.sweep(MODEL, {"feature_probability": [0.3], "seed": [1]}, TRAIN, progress=False)
    np.testing.assert_allclose(alone.W[0, 0], base.W.sel(feature_probability=0.3, seed=1),
                               rtol=1e-4, atol=1e-5)
    chunked = tm.sweep(MODEL, GRID, TRAIN, chunk_size=2, progress=False)
    np.testing.assert_allclose(chunked.W, base.W, rtol=1e-4, atol=1e-5)
    one_device = tm.sweep(MODEL, GRID, TRAIN, devices=jax.devices()[:1],
                          progress=False)
    np.testing.assert_allclose(one_device.W, base.W, rtol=1e-4, atol=1e-5)


def test_grid_order_sets_dims():
    ds = tm.sweep(MODEL, {"seed": [3], "lr": [1e-3, 3e-3]}, TRAIN, progress=False)
    assert list(ds.loss.dims) == ["seed", "lr"]


def test_same_seed_shares_the_data_stream():
    # Common random numbers: two learning rates, same seed, step 0 sees the same batch, so
    # the initial weights are identical.
    t = tm.TrainConfig(steps=20, batch_size=64, log_every=20, snapshot_steps=(0,))
    ds = tm.sweep(MODEL, {"lr": [1e-3, 1e-2]}, t, progress=False)
    np.testing.assert_array_equal(ds.W_snapshot[0], ds.W_snapshot[1])


def test_vector_axis_gets_integer_coordinate_and_vectors():
    imps = [[1.0] * 6, list(0.5 ** np.arange(6))]
    ds = tm.sweep(MODEL, {"importance": imps}, TRAIN, progress=False)
    assert ds.W.dims[0] == "importance" and ds.sizes["importance"] == 2
    np.testing.assert_allclose(ds["importance"].values, imps)
    assert ds["importance"].dims == ("importance", "feature")


def test_snapshots_and_history():
    t = tm.TrainConfig(steps=60, batch_size=64, log_every=20, snapshot_steps=(0, 20, 60))
    ds = tm.sweep(MODEL, {"seed": [0]}, t, progress=False)
    assert ds.W_snapshot.dims == ("seed", "snapshot_step", "feature", "hidden")
    np.testing.assert_allclose(ds.W_snapshot.sel(snapshot_step=60), ds.W)
    assert not np.allclose(ds.W_snapshot.sel(snapshot_step=0), ds.W)


def test_divergence_is_flagged_and_contained():
    ds = tm.sweep(MODEL, {"lr": [1e-3, 1e30]}, tm.TrainConfig(steps=40, batch_size=64, log_every=20,
                                                              optimizer="sgd"), progress=False)
    assert ds.diverged.values.tolist() == [False, True]
    assert np.isfinite(ds.W.sel(lr=1e-3)).all()


@pytest.mark.parametrize("kind", ["relu_output", "linear", "hidden_relu", "abs"])
def test_every_model_kind_trains(kind):
    model = tm.ToyModelConfig(n_features=6, d_hidden=3, kind=kind, feature_probability=0.2)
    ds = tm.sweep(model, {"seed": [0, 1]}, tm.TrainConfig(steps=200, batch_size=256, log_every=100,
                                                           lr=1e-2), progress=False)
    history = ds.loss_history.values
    assert np.isfinite(history).all() and (history[:, -1] < history[:, 0]).all()
    params = {"abs": ["W_in", "W_out", "b"]}.get(kind, ["W", "b"])
    assert set(params) <= set(ds.data_vars)


def test_progress_bar_only_when_asked(capsys):
    t = tm.TrainConfig(steps=20, batch_size=32, log_every=10)
    tm.sweep(MODEL, {"seed": [0]}, t, progress=False)
    assert capsys.readouterr().err == ""
    tm.sweep(MODEL, {"seed": [0]}, t)  # stderr is not a terminal under pytest: silent
    assert capsys.readouterr().err == ""


def test_a_block_of_one_model_runs_unbatched():
    """`loop.over_models`: a block of one keeps a lax.cond a branch (vmap makes it a select of
    both) and gives what vmap gives; larger blocks are vmapped."""
    import jax.numpy as jnp

    from toymodels.loop import over_models

    def f(x, scale):
        return jax.lax.cond(jnp.sum(x) > 0, lambda v: v * scale, lambda v: -v, x)

    mapped = over_models(f, (0, None))
    for x in (jnp.array([[1.0, 2.0]]), jnp.array([[1.0, 2.0], [-3.0, 1.0]])):
        np.testing.assert_allclose(mapped(x, 3.0), jax.vmap(f, in_axes=(0, None))(x, 3.0))
    one = str(jax.make_jaxpr(mapped)(jnp.ones((1, 2)), 3.0))
    two = str(jax.make_jaxpr(mapped)(jnp.ones((2, 2)), 3.0))
    assert "cond" in one and "select_n" not in one
    assert "select_n" in two
    in_turn = over_models(f, (0, None), in_turn=True)
    x = jnp.array([[1.0, 2.0], [-3.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(in_turn(x, 3.0), jax.vmap(f, in_axes=(0, None))(x, 3.0))
    turns = str(jax.make_jaxpr(in_turn)(x, 3.0))
    assert "cond" in turns and "select_n" not in turns


def test_models_in_turn_train_as_vmapped(monkeypatch):
    """A block whose models each overflow the cache, and together overflow it more, trains them
    one after another (`runner.models_in_turn`); the results are the vmapped block's to float
    tolerance."""
    import toymodels.runner as runner

    t = tm.TrainConfig(steps=40, batch_size=64, log_every=20)
    grid = {"seed": [0, 1, 2], "feature_probability": [0.1, 0.3]}
    vmapped = tm.sweep(MODEL, grid, t, chunk_size=6, progress=False)
    trainer = make_trainer(MODEL, t)
    assert not runner.models_in_turn(jax.devices(), trainer, 3)
    monkeypatch.setattr(runner, "CPU_BLOCK_BYTES", 1)
    assert not runner.models_in_turn(jax.devices(), trainer, 3)  # the block fits the cache
    monkeypatch.setattr(runner, "CPU_TURN_BYTES", 1)
    assert runner.models_in_turn(jax.devices(), trainer, 3)
    in_turn = tm.sweep(MODEL, grid, t, chunk_size=6, progress=False)
    for name in ("W", "b", "loss_history"):
        np.testing.assert_allclose(in_turn[name], vmapped[name], rtol=1e-5, atol=1e-6)
