"""The PyTorch baseline of benchmarks/finite_speed.py trains what toymodels trains: the same
schedule, the same data distribution, and from the same start the same losses and weights."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toymodels as tm
from extras import require
from toymodels.optim import schedule
from toymodels.train import make_trainer

torch = require("torch", "lm")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from finite_speed import agreement, model_config  # noqa: E402
from torch_finite_baseline import (ReluOutput, draw_samples, henighan_lr_lambda,  # noqa: E402
                                   train_finite)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("steps,warmup", [(100, 40), (50, None), (3000, None)])
def test_lr_schedule_is_toymodels_warmup_cosine(steps, warmup):
    """LambdaLR's multiplier at every step is toymodels' warmup_cosine rate over lr."""
    overrides = {} if warmup is None else {"warmup_steps": warmup}
    train = tm.TrainConfig.henighan2023(steps, **overrides)
    rate = schedule(train, 1.0)
    t = np.arange(steps + 1)
    lam = henighan_lr_lambda(steps, warmup)
    np.testing.assert_allclose([lam(int(s)) for s in t], np.asarray(jax.vmap(rate)(t)),
                               atol=1e-6)


def test_samples_are_distributed_as_toymodels_draws():
    """Unit-norm samples with ≈ p·n active features each, zero samples left at 0, as
    `tm.training_set` draws them (the two draw with different generators, so compare laws)."""
    n, p, size = 200, 0.02, 4000
    ours = draw_samples(size, n, p, torch.Generator().manual_seed(0)).numpy()
    theirs = tm.training_set(tm.ToyModelConfig(n_features=n, d_hidden=2, feature_probability=p,
                                               unit_norm_inputs=True, dataset_size=size))
    for x in (ours, theirs):
        norms = np.linalg.norm(x, axis=1)
        np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)
        # ~4 active per sample: the mean count within 5 standard errors of n·p
        active = (x > 0).sum(1)
        assert abs(active.mean() - n * p) < 5 * np.sqrt(n * p * (1 - p) / size)
    # the largest coordinate of a one-feature sample is 1 in both; compare the value laws through
    # the mean of the nonzero coordinates (a two-sample difference well within its noise)
    assert abs(ours[ours > 0].mean() - theirs[theirs > 0].mean()) < 0.02


def test_torch_loop_reproduces_toymodels_from_the_same_start():
    """Same training set and step-0 weights: the per-step loss over both phases of the schedule
    (warm-up, then cosine) agrees to 1e-4 relative, and the final weights to 1e-5 (float32 noise
    is ≈ 5e-7 here; dropping the weight decay alone moves W by ≈ 1.4e-4)."""
    check = agreement(n_features=200, dataset_size=12, seed=1, steps=100, warmup_steps=40)
    assert check["loss"] < 1e-4, check
    assert check["W"] < 1e-5, check
    # the run moved: a loop that did not train would not match toymodels' final loss
    assert check["loss_jax"] < 0.95 * check["loss_start"], check


def test_torch_test_loss_is_toymodels_test_loss():
    """On toymodels' own test set, the torch loop's test loss every log_every steps is
    toymodels' test_loss_history."""
    model = model_config(n_features=100, test_size=300, dataset_size=8)
    steps, log_every, seed = 60, 20, 2
    train = tm.TrainConfig.henighan2023(steps, warmup_steps=20, log_every=log_every,
                                        snapshot_steps=(0,))
    ds = tm.sweep(model, {"seed": [seed]}, train, progress=False)
    trainer = make_trainer(model, train)
    test_key = jax.random.split(jax.random.key(np.uint32(seed)))[1]
    _, test_draws = trainer.source.draws(test_key)
    swept = jax.tree.map(jnp.asarray, tm.Swept.from_configs(model, train))
    x_test = torch.tensor(np.asarray(trainer.source.batch(test_draws, swept)).T)
    torch_model = ReluOutput(100, 2)
    with torch.no_grad():
        torch_model.W.copy_(torch.tensor(ds.W_snapshot.values[0, 0]))
        torch_model.b.copy_(torch.tensor(ds.b_snapshot.values[0, 0]))
    run = train_finite(torch.tensor(tm.training_set(model, seed)), x_test, torch_model, steps,
                       warmup_steps=20, log_every=log_every)
    assert run.test_loss.shape == (steps // log_every,)
    np.testing.assert_allclose(run.test_loss.numpy(), ds.test_loss_history.values[0], rtol=1e-4)
