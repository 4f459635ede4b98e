"""Matryoshka SAEs: the prefix loss on a hand-computed example, bad widths refused before anything
compiles, and a sweep of over a hundred compiling once per static shape. (The generic table of
`sae_reference.CASES` holds three Matryoshka cases besides: losses and gradients against NumPy and
torch, the training step against the torch recipe, sweep == loop.)"""

import collections
import dataclasses
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toymodels import trainers
import toymodels as tm
from toymodels.sae.architectures import Context

TRUTH = tm.GroundTruth(d_in=8, n_features=12, mean_active=2.0, seed=0)
MATRYOSHKA = tm.SAEConfig(d_in=8, d_sae=12, architecture="matryoshka_batchtopk", k=2,
                          matryoshka_widths=(3, 7, 12))
TRAIN = tm.TrainConfig(steps=10, batch_size=32, log_every=5)


def _context(d_sae: int, aux: float = 0.0) -> Context:
    zero = jnp.float32(0.0)
    return Context(l1_coefficient=zero, l0_coefficient=zero, aux_loss_coefficient=jnp.float32(aux),
                   pre_act_loss_coefficient=zero, jumprelu_bandwidth=jnp.float32(0.05),
                   jumprelu_tanh_scale=jnp.float32(4.0), dead=jnp.zeros(d_sae, bool),
                   threshold=zero)


def test_two_prefix_loss_by_hand():
    """d_in 2, three latents, widths (1, 3), k 2 over a batch of two (4 activations kept).

    W_dec rows e₁, e₂, (0.6, 0.8); W_enc = W_decᵀ; b_enc 0; b_dec (0.1, −0.2).
    x = (2, 0.5): x̃ = (1.9, 0.7), π = (1.9, 0.7, 1.14 + 0.56 = 1.7)
    x = (0, 3):   x̃ = (−0.1, 3.2), π = (−0.1, 3.2, −0.06 + 2.56 = 2.5)
    the 4 largest ReLU(π) of the batch: 3.2, 2.5, 1.9, 1.7, so f = (1.9, 0, 1.7), (0, 3.2, 2.5).
    Full:   x̂ = (1.9 + 1.02, 1.36) + b_dec = (3.02, 1.16), error (1.02, 0.66): 1.0404 + 0.4356
            x̂ = (1.5, 3.2 + 2.0) + b_dec = (1.6, 5.0),   error (1.6, 2.0):   2.56 + 4
            mse = (1.476 + 6.56) / 2 = 4.018
    Prefix 1: x̂ = (1.9, 0) + b_dec = (2.0, −0.2), error (0, −0.7): 0.49
              x̂ = b_dec = (0.1, −0.2),          error (0.1, −3.2): 0.01 + 10.24
              inner_mse_1 = (0.49 + 10.25) / 2 = 5.37
    Loss (no dead latent, so no AuxK) = 4.018 + 5.37 = 9.388: SAELens's plain sum.
    dictionary_learning's form with group_sizes (1, 2) and uniform group_weights ½ gives
    mean_g(½ · L_g) = (½ · 5.37 + ½ · 4.018) / 2 = 9.388 / 4.
    """
    cfg = tm.SAEConfig(d_in=2, d_sae=3, architecture="matryoshka_batchtopk", k=2,
                       matryoshka_widths=(1, 3))
    truth = tm.GroundTruth(d_in=2, n_features=3, mean_active=1.0)
    trainer = trainers.make_trainer(cfg, tm.TrainConfig(steps=2, batch_size=2), truth)
    W_dec = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    params = {"W_enc": jnp.asarray(W_dec.T), "b_enc": jnp.zeros(3), "W_dec": jnp.asarray(W_dec),
              "b_dec": jnp.array([0.1, -0.2])}
    X = jnp.array([[2.0, 0.5], [0.0, 3.0]])
    total, (F, X_hat, terms) = trainer.loss(params, X, X, _context(3, aux=0.5))
    np.testing.assert_allclose(F, [[1.9, 0.0, 1.7], [0.0, 3.2, 2.5]], rtol=1e-6)
    np.testing.assert_allclose(X_hat, [[3.02, 1.16], [1.6, 5.0]], rtol=1e-6)
    assert sorted(terms) == ["auxk", "inner_mse_1", "mse"]
    np.testing.assert_allclose(terms["mse"], 4.018, rtol=1e-6)
    np.testing.assert_allclose(terms["inner_mse_1"], 5.37, rtol=1e-6)
    assert terms["auxk"] == 0.0
    np.testing.assert_allclose(total, 9.388, rtol=1e-6)
    weights = np.array([0.5, 0.5])
    dictionary_learning = np.mean(weights * np.array([terms["inner_mse_1"], terms["mse"]]))
    np.testing.assert_allclose(dictionary_learning, 9.388 / 4, rtol=1e-6)


def test_matryoshka_aux_loss_by_hand():
    """use_matryoshka_aux_loss: each group's dead latents reconstruct its own prefix's residual.

    d_in 4 (k_aux 2), widths (1, 3), every latent dead; W_dec rows e₁, e₂, e₃; W_enc = W_decᵀ,
    zero biases, k 1 over a batch of one: x = (3, 2, 1, 0.5), π = (3, 2, 1), f = (3, 0, 0).
    Group 1 (latent 0, 1 dead: scale ½): its residual x − x̂₁ = (0, 2, 1, 0.5); its AuxK
    reconstruction 3 e₁, error (3, −2, −1, −0.5): 9 + 4 + 1 + 0.25 = 14.25, × ½ = 7.125.
    Group 2 (latents 1, 2, 2 dead: scale 1): the residual of the full prefix, also (0, 2, 1, 0.5);
    its reconstruction 2 e₂ + 1 e₃, error (0, 0, 0, −0.5): 0.25.
    AuxK = 7.125 + 0.25 = 7.375; × aux_loss_coefficient 2 = 14.75.
    Without it, one AuxK on the full residual: the top 2 dead latents (0, 1) give 3 e₁ + 2 e₂,
    error (3, 0, −1, −0.5): 10.25, × min(3/2, 1) = 1 → 20.5.
    """
    eye = np.eye(3, 4, dtype=np.float32)
    params = {"W_enc": jnp.asarray(eye.T), "b_enc": jnp.zeros(3), "W_dec": jnp.asarray(eye),
              "b_dec": jnp.zeros(4)}
    X = jnp.array([[3.0, 2.0, 1.0, 0.5]])
    ctx = _context(3, aux=2.0)._replace(dead=jnp.ones(3, bool))
    truth = tm.GroundTruth(d_in=4, n_features=3, mean_active=1.0)
    for per_group, want in ((True, 14.75), (False, 20.5)):
        cfg = tm.SAEConfig(d_in=4, d_sae=3, architecture="matryoshka_batchtopk", k=1,
                           matryoshka_widths=(1, 3), use_matryoshka_aux_loss=per_group)
        trainer = trainers.make_trainer(cfg, tm.TrainConfig(steps=2, batch_size=1), truth)
        _, (F, _, terms) = trainer.loss(params, X, X, ctx)
        np.testing.assert_allclose(F, [[3.0, 0.0, 0.0]])
        np.testing.assert_allclose(terms["auxk"], want, rtol=1e-6)


@pytest.mark.parametrize("widths", [
    (3, 3, 12), (7, 3, 12), (3, 7), (3, 7, 13), (), (0, 12), (-1, 12), (3.0, 12), (True, 12),
    ("3", 12), "3, 12", 12, None,
])
def test_bad_widths_are_refused_naming_the_field(widths):
    with pytest.raises(ValueError, match="matryoshka_widths"):
        dataclasses.replace(MATRYOSHKA, matryoshka_widths=widths)


@pytest.mark.parametrize("architecture, k", [
    ("topk", 2), ("batchtopk", 2), ("jumprelu", None), ("gated", None)])
def test_widths_on_an_architecture_that_takes_none(architecture, k):
    with pytest.raises(ValueError, match="matryoshka_widths must be None for architecture"):
        tm.SAEConfig(d_in=8, d_sae=12, architecture=architecture, k=k, matryoshka_widths=(3, 12))
    with pytest.raises(ValueError, match="use_matryoshka_aux_loss"):
        tm.SAEConfig(d_in=8, d_sae=12, architecture=architecture, k=k,
                     use_matryoshka_aux_loss=True)


def test_widths_are_a_tuple_and_survive_json():
    cfg = dataclasses.replace(MATRYOSHKA, matryoshka_widths=[3, np.int64(7), 12])
    assert cfg.matryoshka_widths == (3, 7, 12) and type(cfg.matryoshka_widths[1]) is int
    assert cfg.group_bounds == ((0, 3), (3, 7), (7, 12))
    assert hash(cfg) == hash(MATRYOSHKA)
    assert tm.SAEConfig(d_in=8, d_sae=12).group_bounds == ((0, 12),)


@pytest.mark.parametrize("grid, field", [
    ({"d_sae": [12, 24]}, "matryoshka_widths"),     # the widths end at d_sae: one config per width
    ({"matryoshka_widths": [(3, 12), (6, 12)]}, "matryoshka_widths"),  # static
    ({"k": [2, 13]}, "k"),
    ({"l1_coefficient": [0.1]}, "l1_coefficient"),  # not read by matryoshka_batchtopk
])
def test_bad_sweeps_fail_before_compiling(grid, field, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError, match=field):
        tm.sweep(MATRYOSHKA, grid, TRAIN, data=TRUTH)


#: the sweep engine's compiled programs (toymodels.runner): the training scan and its two ends.
ENGINE_PROGRAMS = ("init", "run", "outputs")


def _compilations(run) -> collections.Counter:
    """{program: XLA compilations} of the engine's programs while `run()` runs (JAX's own
    compile log; one-off scalar conversions JAX compiles on first use are left out)."""
    seen = collections.Counter()

    class Count(logging.Handler):
        def emit(self, record):
            found = re.search(r"Finished XLA compilation of jit\((\w+)\)", record.getMessage())
            if found and found.group(1) in ENGINE_PROGRAMS:
                seen[found.group(1)] += 1

    logger, handler = logging.getLogger("jax._src.dispatch"), Count()
    logger.addHandler(handler)
    try:
        with jax.log_compiles(True):
            run()
    finally:
        logger.removeHandler(handler)
    return seen


def test_a_sweep_of_128_compiles_once_per_static_shape():
    """128 Matryoshka SAEs over k (static: 2 shapes) × seed × lr × aux_loss_coefficient ×
    topk_threshold_lr: each engine program compiles once per k, as for a one-point sweep."""
    cfg = tm.SAEConfig(d_in=8, d_sae=10, architecture="matryoshka_batchtopk", k=2,
                       matryoshka_widths=(2, 5, 10))
    grid = {"k": [1, 2], "seed": list(range(8)), "lr": [1e-3, 3e-3],  # 2·8·2·2·2 = 128 SAEs
            "aux_loss_coefficient": [0.0, 1 / 32], "topk_threshold_lr": [0.01, 0.1]}
    out = {}
    many = _compilations(lambda: out.setdefault(
        "ds", tm.sweep(cfg, grid, TRAIN, data=TRUTH, progress=False)))
    ds = out["ds"]
    assert ds.loss.size == 128 and np.isfinite(ds.loss).all() and not ds.diverged.any()
    assert many == {name: 2 for name in ENGINE_PROGRAMS}
    one = _compilations(lambda: tm.sweep(dataclasses.replace(cfg, k=3), {"seed": [0]}, TRAIN,
                                         data=TRUTH, progress=False))
    assert one == {name: 1 for name in ENGINE_PROGRAMS}  # the count sees a fresh shape compile
    sae = tm.SAE.from_results(ds.sel(k=1).isel(seed=0, lr=0, aux_loss_coefficient=0,
                                               topk_threshold_lr=0))
    assert sae.config.matryoshka_widths == (2, 5, 10) and sae.config.k == 1
