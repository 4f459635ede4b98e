"""Optimizers and schedules against reference formulas: LAMB as torch_optimizer, torch's cosine."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.optim import lamb, make_optimizer, schedule


def torch_optimizer_lamb(params, grads_per_step, lr, b1=0.9, b2=0.999, eps=1e-6, wd=0.0,
                         clamp=10.0):
    """torch_optimizer.Lamb.step (0.3.0, debias=False), in NumPy float64, per parameter array."""
    params = {k: np.asarray(v, np.float64).copy() for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, grads in enumerate(grads_per_step):
        for k, p in params.items():
            g = np.asarray(grads[k], np.float64)
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            weight_norm = min(np.linalg.norm(p), clamp)
            step = m[k] / (np.sqrt(v[k]) + eps) + wd * p
            step_norm = np.linalg.norm(step)
            ratio = 1.0 if weight_norm == 0 or step_norm == 0 else weight_norm / step_norm
            params[k] = p - lr(t) * ratio * step
    return params


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([0.0, 0.01]), st.sampled_from([1e-3, 0.05]),
       st.sampled_from([1.0, 30.0]))
def test_lamb_matches_torch_optimizer(seed, wd, lr, scale):
    rng = np.random.default_rng(seed)
    # Scaled weights: with ‖θ‖ > 10 the clamp of the weight norm matters.
    params = {"W": scale * rng.standard_normal((5, 3)), "b": np.zeros(3), "c": rng.standard_normal(4)}
    grads = [{k: rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(6)]
    grads[2]["b"] = np.zeros(3)  # a zero step: trust ratio 1
    expected = torch_optimizer_lamb(params, grads, lambda t: lr, wd=wd)
    opt = lamb(lr, weight_decay=wd)
    p = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    state = opt.init(p)
    for g in grads:
        updates, state = opt.update({k: jnp.asarray(v, jnp.float32) for k, v in g.items()}, state, p)
        p = optax.apply_updates(p, updates)
    for k in params:
        np.testing.assert_allclose(p[k], expected[k], rtol=2e-4, atol=2e-5 * max(1.0, scale))


def test_lamb_is_what_train_config_asks_for():
    train = tm.TrainConfig(optimizer="lamb", schedule="cosine_annealing", annealing_steps=3,
                           lr=0.1, max_grad_norm=float("inf")).resolved({"weight_decay": 0.0})
    assert train.eps == 1e-6
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((4, 2))}
    grads = [{"W": rng.standard_normal((4, 2))} for _ in range(8)]
    cos = lambda t: 0.1 * (1 + np.cos(np.pi * t / 3)) / 2  # noqa: E731
    expected = torch_optimizer_lamb(params, grads, cos)
    opt = make_optimizer(train, jnp.float32(0.1), jnp.float32(0.0))
    p = {"W": jnp.asarray(params["W"], jnp.float32)}
    state = opt.init(p)
    for g in grads:
        updates, state = opt.update({"W": jnp.asarray(g["W"], jnp.float32)}, state, p)
        p = optax.apply_updates(p, updates)
    np.testing.assert_allclose(p["W"], expected["W"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("t_max, final", [(8, 0.0), (5, 0.1), (512, 0.0)])
def test_cosine_annealing_cycles_as_torch(t_max, final):
    train = tm.TrainConfig(steps=4 * t_max, log_every=t_max, schedule="cosine_annealing",
                           annealing_steps=t_max, final_lr_fraction=final)
    lr = 0.01
    sched = jax.jit(jax.vmap(schedule(train, lr)))
    t = np.arange(4 * t_max)
    got = np.asarray(sched(jnp.asarray(t)))
    low = lr * final
    closed = low + (lr - low) * (1 + np.cos(np.pi * t / t_max)) / 2
    np.testing.assert_allclose(got, closed, rtol=1e-5, atol=1e-9)
    # It cycles: back to lr at 2·T_max, down to the minimum at odd multiples of T_max.
    np.testing.assert_allclose(got[[0, 2 * t_max]], lr, rtol=1e-6)
    np.testing.assert_allclose(got[[t_max, 3 * t_max]], low, atol=1e-9)

    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=low)
    torch_lrs = []
    for _ in t:  # their loop: optimizer.step() with the current lr, then scheduler.step()
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    np.testing.assert_allclose(got, torch_lrs, rtol=1e-5, atol=1e-9)


def test_existing_schedules_are_unchanged_by_the_new_one():
    base = tm.TrainConfig(steps=100, log_every=10, warmup_steps=10, final_lr_fraction=0.1)
    for name in ("warmup_cosine", "warmup_decay"):
        train = dataclasses.replace(base, schedule=name, decay_steps=20)
        f = schedule(train, 1.0)
        assert float(f(0)) < 1.0 and float(f(50)) > 0.1
    assert schedule(base, 0.5) == 0.5


def test_warmup_cosine_takes_a_swept_learning_rate():
    # optax's warmup_cosine_decay_schedule tests `peak_value == 0` in Python and so fails on the
    # traced lr every sweep passes; ours must not, and must scale with lr.
    model = tm.ToyModelConfig(n_features=5, d_hidden=2)
    train = tm.TrainConfig(steps=20, log_every=10, batch_size=16, schedule="warmup_cosine",
                           warmup_steps=5)
    ds = tm.sweep(model, {"lr": [1e-3, 1e-2]}, train, progress=False)
    assert ds["loss"].sizes["lr"] == 2 and bool(np.isfinite(ds["loss"]).all())
    f = jax.jit(lambda lr, t: schedule(train, lr)(t))
    assert float(f(2.0, 10)) == pytest.approx(2 * float(f(1.0, 10)))
