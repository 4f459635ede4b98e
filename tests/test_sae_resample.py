"""Dead-latent resampling inside the training step (ARENA 1.3.1, as `toymodels.sae.resample` says).

Every test holds one compiled step of a resampling trainer against the same step of a trainer that
differs only in `resample="none"`, from the same state: live latents must come out identical, dead
ones re-initialised as documented, with their Adam moments zeroed.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from toymodels import trainers
import toymodels as tm
from sae_reference import CASES, ground_truth, make_trainer, offset_batches, trainer_batch
from toymodels.sae.resample import resample

BATCH, STEPS, EVERY, WINDOW = 16, 8, 4, 2


@functools.cache
def resample_pair(case: str, method: str):
    """Jitted steps of a resampling trainer and of its twin without, and a state at whose step
    every third latent is dead (past the window, and made unable to fire)."""
    train = tm.TrainConfig(steps=STEPS, batch_size=BATCH, log_every=STEPS, lr=1e-2)
    cfg, trainer, swept = make_trainer(CASES[case], train, dead_feature_window=WINDOW, resample=method,
                                       resample_every=EVERY)
    plain = trainers.make_trainer(dataclasses.replace(cfg, resample="none"), train, ground_truth(cfg))
    X, T = offset_batches(cfg, 2, 1, BATCH)[0]
    batch = trainer_batch(cfg, X, T)
    state = trainer.init(swept, batch)
    dead = np.arange(cfg.d_sae) % 3 == 1
    bias = "b_gate" if cfg.architecture == "gated" else "b_enc"
    params = state.params | {bias: jnp.where(dead, -1e3, state.params[bias])}
    since = np.where(dead, cfg.dead_feature_window + 3, 0).astype(np.int32)
    state = state._replace(params=params,
                           aux=state.aux._replace(steps_since_fired=jnp.asarray(since)))
    return (cfg, jax.jit(trainer.step), jax.jit(plain.step), swept, state, dead, (X, T), batch)


def latent_axis(name: str) -> int | None:
    """The latent axis of a trainable parameter; None for b_dec (no latent axis)."""
    return {"W_enc": 1, "W_dec": 0, "b_dec": None}.get(name, 0)


def take(a, name, mask):
    axis = latent_axis(name)
    a = np.asarray(a)
    return a if axis is None else np.compress(mask, a, axis=axis)


@pytest.mark.parametrize("case, method", [("standard", "simple"), ("gated", "simple"),
                                          ("jumprelu_step", "loss_weighted"),
                                          ("transcoder", "loss_weighted")])
def test_resampling_reinitialises_dead_latents_only(case, method):
    cfg, step, plain_step, swept, state, dead, (X, T), batch = resample_pair(case, method)
    t = jnp.int32(EVERY - 1)
    new, _ = step(state, swept, batch, t)
    base, _ = plain_step(state, swept, batch, t)
    live = ~dead
    for name, value in new.params.items():  # live latents (and b_dec) as without resampling
        np.testing.assert_allclose(take(value, name, live), take(base.params[name], name, live),
                                   rtol=1e-6, atol=1e-7, err_msg=name)
    p = new.params
    W_dec, W_enc = np.asarray(p["W_dec"])[dead], np.asarray(p["W_enc"])[:, dead]
    np.testing.assert_allclose(np.linalg.norm(W_dec, axis=1), 1.0, rtol=1e-5)
    for name in ("b_enc", "b_gate", "r_mag", "b_mag"):
        if name in p:
            np.testing.assert_array_equal(np.asarray(p[name])[dead], 0.0)
    if "log_threshold" in p:  # not a direction: kept
        np.testing.assert_array_equal(p["log_threshold"], base.params["log_threshold"])
    if method == "simple":  # a random unit direction, the encoder at half its length
        np.testing.assert_allclose(W_enc, 0.5 * W_dec.T, rtol=1e-6)
        cosines = W_dec @ W_dec.T  # each dead latent its own direction
        assert (np.abs(cosines[~np.eye(len(W_dec), dtype=bool)]) < 0.999).all()
    else:
        # Each new decoder row is an input of the batch in training units, centred by b_dec (an
        # SAE) and normalised; the encoder column is the same input (a transcoder: its input),
        # at half the mean norm of the live encoder columns.
        T_train = T * float(base.aux.scale_out)
        centred = T_train - (np.asarray(p["b_dec"]) if cfg.d_out is None else 0.0)
        out_dirs = centred / np.linalg.norm(centred, axis=1, keepdims=True)
        chosen = np.argmin(np.linalg.norm(W_dec[:, None] - out_dirs[None], axis=-1), axis=1)
        np.testing.assert_allclose(W_dec, out_dirs[chosen], atol=1e-5)
        in_dirs = out_dirs if cfg.d_out is None else X / np.linalg.norm(X, axis=1, keepdims=True)
        alive_norm = np.mean(np.linalg.norm(np.asarray(base.params["W_enc"])[:, live], axis=0))
        np.testing.assert_allclose(W_enc, 0.5 * alive_norm * in_dirs[chosen].T, rtol=1e-5,
                                   atol=1e-6)
    # Adam's moments of re-initialised weights restart from zero; the others are untouched
    # (log θ keeps its value, and so its moments).
    adam, adam_base = new.opt_state[1][0], base.opt_state[1][0]
    for moments, moments_base in ((adam.mu, adam_base.mu), (adam.nu, adam_base.nu)):
        for name, m in moments.items():
            keep = np.ones_like(live) if name == "log_threshold" else live
            np.testing.assert_array_equal(take(m, name, keep), take(moments_base[name], name, keep))
            if latent_axis(name) is not None and name != "log_threshold":
                np.testing.assert_array_equal(take(m, name, dead), 0.0)
    np.testing.assert_array_equal(new.aux.steps_since_fired,
                                  np.where(dead, 0, base.aux.steps_since_fired))


def test_resampling_happens_only_when_due():
    """Every resample_every steps, and not after the last step (nothing would train them)."""
    assert STEPS % EVERY == 0
    cfg, step, plain_step, swept, state, dead, _, batch = resample_pair("standard", "simple")
    for t in (EVERY - 2, EVERY, STEPS - 1):
        new, _ = step(state, swept, batch, jnp.int32(t))
        base, _ = plain_step(state, swept, batch, jnp.int32(t))
        for name, value in new.params.items():
            np.testing.assert_array_equal(value, base.params[name], err_msg=f"{name} at t={t}")
    new, _ = step(state, swept, batch, jnp.int32(EVERY - 1))
    assert not np.array_equal(new.params["W_dec"], base.params["W_dec"])


def test_loss_weighted_draws_inputs_in_proportion_to_squared_error():
    d_in, d_sae, n_keys = 4, 24, 200
    rng = np.random.default_rng(0)
    T = rng.normal(0, 1, (3, d_in)).astype(np.float32)
    error = np.zeros_like(T)
    error[1, 0], error[2, 1] = 1.0, math.sqrt(3.0)  # squared errors 0, 1, 3
    params = {"W_enc": jnp.asarray(rng.normal(0, 1, (d_in, d_sae)), jnp.float32),
              "W_dec": jnp.asarray(rng.normal(0, 1, (d_sae, d_in)), jnp.float32),
              "b_enc": jnp.zeros(d_sae), "b_dec": jnp.asarray(rng.normal(0, 1, d_in), jnp.float32)}
    optimizer = optax.adam(1e-3)
    dead = jnp.ones(d_sae, bool)

    def one(key):
        new, _ = resample("loss_weighted", params, optimizer.init(params), optimizer, dead, key,
                          jnp.asarray(T), jnp.asarray(T), jnp.asarray(T + error), True)
        return new["W_dec"]

    W_dec = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), n_keys)))
    centred = T - np.asarray(params["b_dec"])
    candidates = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    chosen = np.argmin(np.linalg.norm(W_dec[..., None, :] - candidates, axis=-1), axis=-1)
    frequency = np.bincount(chosen.ravel(), minlength=3) / chosen.size
    sigma = math.sqrt(0.25 * 0.75 / chosen.size)
    assert frequency[0] == 0.0
    np.testing.assert_allclose(frequency[1:], [0.25, 0.75], atol=5 * sigma)
