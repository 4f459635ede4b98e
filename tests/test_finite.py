"""Training on a fixed dataset (Henighan et al. 2023): the T samples, full batch and minibatches,
the test loss on fresh samples, resume after a kill, and bad input."""

import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from killed_sweep import kill_after_chunks
from toymodels.finite import FiniteDataset
from toymodels.train import ToyFeatures, make_trainer
from toymodels.data import FeatureLayout

MODEL = tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05, dataset_size=16,
                          test_size=512)


def tms_loss(x, W, b, importance=None):
    """The TMS loss of ReLU(x W Wᵀ + b) on sample-major x, as an independent NumPy formula."""
    out = np.maximum(x @ W @ W.T + b, 0.0)
    weight = 1.0 if importance is None else importance
    return float(np.mean(weight * (x - out) ** 2))


def test_full_batch_trains_on_the_training_set():
    """Step 0's loss is the loss of the initial weights on exactly `training_set`'s T samples,
    and every step sees the same T (full batch: the loss falls to memorization)."""
    train = tm.TrainConfig(steps=400, log_every=1, snapshot_steps=(0, 400))
    ds = tm.sweep(MODEL, {"seed": [3]}, train, progress=False)
    x = tm.training_set(MODEL, seed=3)
    assert x.shape == (16, 40)
    W0, b0 = ds.W_snapshot.values[0, 0], ds.b_snapshot.values[0, 0]
    np.testing.assert_allclose(ds.loss_history.values[0, 0], tms_loss(x, W0, b0), rtol=1e-5)
    W, b = ds.W_snapshot.values[0, 1], ds.b_snapshot.values[0, 1]
    np.testing.assert_allclose(ds.loss_history.values[0, -1], tms_loss(x, W, b), rtol=2e-2)
    # memorized: the training loss is far below the loss on fresh samples
    assert ds.loss.values[0] < 0.5 * ds.test_loss.values[0]


def test_same_seed_same_points_across_the_grid():
    """Models of one seed share the T samples whatever the rest of the grid; seeds differ."""
    a = tm.training_set(MODEL, seed=0)
    np.testing.assert_array_equal(a, tm.training_set(MODEL, seed=0))
    assert not np.array_equal(a, tm.training_set(MODEL, seed=1))
    train = tm.TrainConfig(steps=50)
    both = tm.sweep(MODEL, {"lr": [1e-3, 3e-3], "seed": [0, 1]}, train, progress=False)
    alone = tm.sweep(MODEL, {"seed": [1]}, train, progress=False)
    np.testing.assert_allclose(both.W.values[0, 1], alone.W.values[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(both.test_loss.values[0, 1], alone.test_loss.values[0], rtol=1e-6)


def test_test_loss_is_the_loss_on_fresh_samples():
    """test_loss is the model's loss on test_size samples drawn apart from the training set."""
    model = tm.ToyModelConfig(n_features=30, d_hidden=3, feature_probability=0.1, dataset_size=8,
                              test_size=2048)
    train = tm.TrainConfig(steps=100, log_every=50)
    ds = tm.sweep(model, {"seed": [0]}, train, progress=False)
    trainer = make_trainer(model, train)
    source = trainer.source
    _, test_draws = source.draws(jax.random.split(jax.random.key(np.uint32(0)))[1])
    swept = jax.tree.map(jnp.asarray, tm.Swept.from_configs(model, train))
    x_test = np.asarray(source.batch(test_draws, swept)).T
    assert x_test.shape == (2048, 30)
    expected = tms_loss(x_test, ds.W.values[0], ds.b.values[0])
    np.testing.assert_allclose(ds.test_loss.values[0], expected, rtol=1e-4)
    assert ds.test_loss_history.dims == ("seed", "step")
    # no test sample is a training sample (continuous draws: a repeat would be a bug); the
    # all-zero samples (no feature on) are the same everywhere and are left out
    x_train = tm.training_set(model, seed=0)
    x_test, x_train = x_test[x_test.any(1)], x_train[x_train.any(1)]
    assert len(x_train) and not (x_test[:, None, :] == x_train[None, :, :]).all(-1).any()


@pytest.mark.parametrize("size,batch", [(10, 3), (12, 4), (7, 7)])
def test_minibatches_visit_every_sample_once_per_epoch(size, batch):
    """Minibatches run through one fresh permutation of the T samples per epoch."""
    finite = FiniteDataset(ToyFeatures(FeatureLayout.make(1), False), size, 4)
    draws = jnp.arange(size, dtype=jnp.float32)[None]  # sample s has value s
    key = jax.random.key(5)
    epochs = 4
    seen = np.concatenate([
        np.asarray(finite.minibatch(draws, key, jnp.int32(t), batch))[0]
        for t in range(epochs * size // batch)])
    for e in range(len(seen) // size):
        np.testing.assert_array_equal(np.sort(seen[e * size:(e + 1) * size]), np.arange(size))
    if batch < size:
        orders = [tuple(seen[e * size:(e + 1) * size]) for e in range(len(seen) // size)]
        assert len(set(orders)) > 1  # each epoch is reshuffled


def test_minibatch_training_matches_its_batches():
    """With batch_size < dataset_size, step 0 trains on the first minibatch of the permutation."""
    model = MODEL
    train = tm.TrainConfig(steps=4, batch_size=4, log_every=1, snapshot_steps=(0,))
    ds = tm.sweep(model, {"seed": [2]}, train, progress=False)
    x = tm.training_set(model, seed=2)
    shuffle = jax.random.split(jax.random.split(jax.random.key(np.uint32(2)))[1], 3)[2]
    order = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle, 0), 16))
    W0, b0 = ds.W_snapshot.values[0, 0], ds.b_snapshot.values[0, 0]
    np.testing.assert_allclose(ds.loss_history.values[0, 0], tms_loss(x[order[:4]], W0, b0),
                               rtol=1e-5)


def test_unit_norm_inputs():
    model = tm.ToyModelConfig(n_features=20, d_hidden=2, feature_probability=0.2, dataset_size=50,
                              unit_norm_inputs=True)
    x = tm.training_set(model, seed=0)
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
    assert (norms == 0).sum() == (tm.training_set(model.__class__(
        **{**model.__dict__, "unit_norm_inputs": False}), seed=0).sum(1) == 0).sum()


def test_dataset_size_grid_is_one_sub_sweep_per_value_and_resumes(tmp_path):
    model = tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05, test_size=256)
    grid = {"dataset_size": [3, 10, 30], "seed": [0, 1]}
    train = tm.TrainConfig(steps=60, log_every=20)
    ds = tm.sweep(model, grid, train, out=str(tmp_path / "run"), progress=False)
    assert ds.test_loss.dims == ("dataset_size", "seed")
    assert ds.dataset_size.values.tolist() == [3, 10, 30]
    alone = tm.sweep(tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05,
                                       test_size=256, dataset_size=10), {"seed": [0, 1]}, train,
                     progress=False)
    np.testing.assert_allclose(ds.W.sel(dataset_size=10).values, alone.W.values, rtol=1e-6,
                               atol=1e-7)
    again = tm.sweep(model, grid, train, out=str(tmp_path / "run"), progress=False)
    np.testing.assert_array_equal(again.W.values, ds.W.values)


SCRIPT = textwrap.dedent("""
    import sys
    import toymodels as tm
    model = tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05, dataset_size=64,
                              test_size=256)
    tm.sweep(model, {"lr": [1e-3, 2e-3, 3e-3], "seed": [0, 1]}, tm.TrainConfig(steps=4000),
             out=sys.argv[1], chunk_size=1, progress=False)
""")


def test_killed_finite_sweep_resumes_without_retraining(tmp_path):
    out, finished = kill_after_chunks(SCRIPT, tmp_path, 2)
    assert 2 <= len(finished) < 6, finished
    model = tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05,
                              dataset_size=64, test_size=256)
    grid = {"lr": [1e-3, 2e-3, 3e-3], "seed": [0, 1]}
    train = tm.TrainConfig(steps=4000)
    resumed = tm.sweep(model, grid, train, out=str(out), chunk_size=1, progress=False)
    for name, mtime in finished.items():
        assert (out / "chunks" / name).stat().st_mtime_ns == mtime
    fresh = tm.sweep(model, grid, train, chunk_size=1, progress=False)
    for name in ("W", "loss", "test_loss", "test_loss_history"):
        np.testing.assert_array_equal(resumed[name].values, fresh[name].values)


def test_henighan_schedule():
    train = tm.TrainConfig.henighan2023()
    assert (train.steps, train.lr, train.weight_decay, train.optimizer) == (50_000, 1e-3, 1e-2,
                                                                           "adamw")
    assert (train.schedule, train.warmup_steps, train.final_lr_fraction) == ("warmup_cosine",
                                                                            2_500, 0.0)
    assert tm.TrainConfig.henighan2023(1000).warmup_steps == 1000
    assert tm.TrainConfig.henighan2023(1000, weight_decay=1.0).weight_decay == 1.0


@pytest.mark.parametrize("kwargs,field", [
    ({"dataset_size": 0}, "dataset_size"),
    ({"dataset_size": 2.5}, "dataset_size"),
    ({"dataset_size": 10, "test_size": 0}, "test_size"),
    ({"unit_norm_inputs": 1}, "unit_norm_inputs"),
    ({"kind": "jermyn_autoencoder", "d_embed": 5, "unit_norm_inputs": True}, "unit_norm_inputs"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tm.ToyModelConfig(n_features=10, **kwargs)


def test_bad_sweeps_fail_before_compiling(monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before the input was checked")

    monkeypatch.setattr(jax, "jit", no_compile)
    model = tm.ToyModelConfig(n_features=40, d_hidden=2, feature_probability=0.05)
    with pytest.raises(ValueError, match="dataset_size"):
        tm.sweep(model, {"dataset_size": [10, 0]})
    with pytest.raises(ValueError, match="None"):
        tm.sweep(model, {"dataset_size": [10, None]})
    with pytest.raises(ValueError, match="batch_size must be at most dataset_size=10"):
        tm.sweep(model, {"dataset_size": [100, 10]}, tm.TrainConfig(batch_size=32))
    huge = tm.ToyModelConfig(n_features=10_000, d_hidden=2, dataset_size=10**9)
    with pytest.raises(ValueError, match=r"dataset_size=1000000000 needs about \d+\.\d GiB"):
        tm.sweep(huge)
