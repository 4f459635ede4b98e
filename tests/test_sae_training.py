"""The SAE training step's machinery against SAELens's recipe, written independently in PyTorch.

Each step of `SAETrainer.step` (jitted, called in a Python loop) is held against a float64 PyTorch
loop (`sae_reference.torch_reference().train`): Adam with no weight decay and gradients clipped
to global norm 1, the sparsity coefficient warmed up as final · min(1, t / warmup), unit-norm
decoders (radial gradient removed, rows renormalised), activation normalisation and b_dec's
initialisation on the first batch, dead-latent bookkeeping and BatchTopK's running threshold.
Then: the normalisation folded into the published weights. Resampling: test_sae_resample.py.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from toymodels import trainers
import toymodels as tm
from sae_reference import (
    BATCHTOPK,
    CASES,
    COEFFICIENTS,
    ground_truth,
    make_trainer,
    np_decode,
    np_encode,
    offset_batches,
    published_form,
    torch_reference,
    trainer_batch,
    unit_norm,
)
from toymodels.sae.train import count_positive, geometric_median

BATCH, STEPS, WINDOW = 16, 8, 2

#: (case, static SAEConfig overrides, TrainConfig overrides): together every option of the step.
RECIPES = {
    "standard": ("standard", dict(normalize_activations="expected_average_only_in",
                                  b_dec_init_method="mean", sparsity_warmup_steps=3), {}),
    "standard_unit_norm_sgd_clipped": ("standard_unit_norm", dict(sparsity_warmup_steps=8),
                                       dict(optimizer="sgd", lr=0.5)),
    "topk": ("topk", dict(b_dec_init_method="geometric_median"), {}),
    "batchtopk": ("batchtopk", dict(dead_feature_window=20,
                                    normalize_activations="expected_average_only_in"), {}),
    "matryoshka_batchtopk_aux": ("matryoshka_batchtopk_aux", dict(
        dead_feature_window=3, normalize_activations="expected_average_only_in"), {}),
    "matryoshka_standard": ("matryoshka_standard", dict(sparsity_warmup_steps=3), {}),
    "jumprelu_step": ("jumprelu_step", dict(sparsity_warmup_steps=4), {}),
    "jumprelu_tanh_crosscoder": ("jumprelu_tanh_crosscoder",
                                 dict(normalize_activations="expected_average_only_in"), {}),
    "gated": ("gated", dict(b_dec_init_method="geometric_median",
                            normalize_activations="expected_average_only_in"), {}),
    "transcoder": ("transcoder", dict(normalize_activations="expected_average_only_in",
                                      b_dec_init_method="mean", sparsity_warmup_steps=2), {}),
}


@functools.cache
def torch_ref():
    pytest.importorskip("torch")
    return torch_reference()


def setup(case: str, overrides: dict, train_overrides: dict):
    """(config, train config, trainer, swept values) of a case, with the reference coefficients."""
    train = tm.TrainConfig(steps=STEPS, batch_size=BATCH, log_every=STEPS,
                           **({"lr": 1e-2} | train_overrides))
    cfg, trainer, swept = make_trainer(CASES[case], train, **({"dead_feature_window": WINDOW} | overrides))
    return cfg, train, trainer, swept


def batches(cfg: tm.SAEConfig, seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return offset_batches(cfg, seed, n, BATCH)


def since_start(d_sae: int, window: int) -> np.ndarray:
    """steps_since_fired at the start: live, exactly at the window (alive), and past it (dead)."""
    return np.resize([0, window, window + 1, window + 5], d_sae).astype(np.int32)


def reference_geometric_median(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    objective = lambda y: np.sum(np.linalg.norm(points - y, axis=1))  # noqa: E731
    return minimize(objective, points.mean(axis=0), method="Nelder-Mead",
                    options=dict(xatol=1e-10, fatol=1e-12, maxiter=40_000, maxfev=40_000)).x


@pytest.mark.parametrize("recipe", RECIPES)
def test_training_steps_equal_the_torch_recipe(recipe):
    ref = torch_ref()
    case, overrides, train_overrides = RECIPES[recipe]
    cfg, train, trainer, swept = setup(case, overrides, train_overrides)
    (X0, T0), *data = batches(cfg, 0, STEPS + 1)

    state = jax.jit(trainer.init)(swept, trainer_batch(cfg, X0, T0))
    # The first batch sets the normalisation (E‖x‖ = √d) and b_dec.
    normalise = cfg.normalize_activations != "none"
    s_in = math.sqrt(cfg.d_in) / np.mean(np.linalg.norm(X0, axis=1)) if normalise else 1.0
    s_out = s_in if cfg.d_out is None or not normalise else (
        math.sqrt(cfg.d_out) / np.mean(np.linalg.norm(T0, axis=1)))
    np.testing.assert_allclose(state.aux.scale_in, s_in, rtol=1e-5)
    np.testing.assert_allclose(state.aux.scale_out, s_out, rtol=1e-5)
    b_dec = {"zeros": np.zeros(cfg.output_width), "mean": np.mean(T0 * s_out, axis=0),
             "geometric_median": reference_geometric_median(T0 * s_out)}[cfg.b_dec_init_method]
    np.testing.assert_allclose(state.params["b_dec"], b_dec, rtol=1e-4, atol=1e-4)

    since0 = since_start(cfg.d_sae, cfg.dead_feature_window)
    state = state._replace(aux=state.aux._replace(steps_since_fired=jnp.asarray(since0)))
    p0 = {k: np.asarray(v) for k, v in state.params.items()}
    step = jax.jit(trainer.step)
    history = []
    for t, (X, T) in enumerate(data):
        state, metrics = step(state, swept, trainer_batch(cfg, X, T), jnp.int32(t))
        history.append(metrics)
    assert step._cache_size() == 1  # one compilation serves every step
    history = {name: np.array([m[name] for m in history]) for name in history[0]}

    want = ref.train(cfg, p0, data, lr=train.lr, since0=since0, scale=(s_in, s_out),
                     optimizer=train_overrides.get("optimizer", "adam"),
                     max_grad_norm=train_overrides.get("max_grad_norm", 1.0))
    if recipe == "standard_unit_norm_sgd_clipped":
        assert (want["grad_norm"] > 1.5).all()  # so clipping to norm 1 shows in every step
    for name in ("loss", "mse", "fvu", "l0"):
        np.testing.assert_allclose(history[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    for name, value in want["params"].items():
        np.testing.assert_allclose(state.params[name], value, rtol=1e-3, atol=2e-5, err_msg=name)
    if unit_norm(cfg):
        np.testing.assert_allclose(np.linalg.norm(state.params["W_dec"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(state.aux.steps_since_fired, want["since"])
    outputs = trainer.outputs(state)
    window = min(cfg.dead_feature_window, STEPS)
    np.testing.assert_allclose(outputs["training_latent_density"], want["fire_count"] / (window * BATCH))
    np.testing.assert_allclose(outputs["activation_scale"], s_in, rtol=1e-6)
    if cfg.architecture in BATCHTOPK:
        assert want["threshold"] > 0
        np.testing.assert_allclose(state.aux.threshold, want["threshold"], rtol=1e-4)
        np.testing.assert_allclose(outputs["threshold"], np.full(cfg.d_sae, want["threshold"]),
                                   rtol=1e-4)

    # The published weights (normalisation folded in) do on raw inputs what the trained SAE did
    # on scaled ones: the same feature_acts, and the reconstruction in the data's own units.
    trained = published_form(cfg, {k: np.asarray(v) for k, v in state.params.items()},
                             np.full(cfg.d_sae, float(state.aux.threshold)))
    X, _ = batches(cfg, 1, 1)[0]
    sae = tm.SAE(cfg, {k: np.asarray(v) for k, v in outputs.items()
                       if k in tm.sae.param_names(cfg.architecture)})
    f = np_encode(cfg, trained, X * s_in)
    np.testing.assert_allclose(sae.encode(X), f, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sae.decode(f.astype(np.float32)), np_decode(trained, f) / s_out,
                               rtol=1e-4, atol=1e-5)


def test_recipe_defaults_are_saelens():
    """Adam, no weight decay, clip 1.0: what an SAE trains with when TrainConfig leaves it open."""
    cfg = CASES["standard"]
    train = tm.TrainConfig(steps=STEPS, batch_size=BATCH, log_every=STEPS)
    trainer = trainers.make_trainer(cfg, train, ground_truth(cfg))
    t = trainer.train_config
    assert (t.optimizer, t.max_grad_norm) == ("adam", 1.0)
    assert trainer.swept(cfg, train, 0).weight_decay == 0.0


@pytest.mark.parametrize("batch", [1, 100, 128, 384, 1000, 255 * 128, 256 * 128])
@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_count_positive_counts_each_latents_firings(batch, share):
    # multiples of 128 take the uint8 slices (a full slice of 128 firings included), the rest
    # and more than 255 slices the plain count
    rng = np.random.default_rng(batch)
    F = np.where(rng.random((3, batch)) < share, rng.random((3, batch)) + 1e-3, 0.0)
    F[0] = -np.abs(F[0])  # never fires: negative values do not count
    got = np.asarray(jax.jit(count_positive)(jnp.asarray(F, jnp.float32)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.sum(F > 0, axis=1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_median_minimises_the_sum_of_distances(seed):
    points = np.random.default_rng(seed).standard_t(2, (64, 5)).astype(np.float32)
    got = np.asarray(geometric_median(jnp.asarray(points)), np.float64)
    want = reference_geometric_median(points)
    np.testing.assert_allclose(got, want, atol=1e-3)
    # optimality: the unit vectors from the median to the points sum to (about) zero
    d = points - got
    assert np.linalg.norm(np.sum(d / np.linalg.norm(d, axis=1, keepdims=True), axis=0)) < 1e-2


@pytest.mark.parametrize("case", ["standard", "standard_unit_norm", "topk", "jumprelu_step",
                                  "gated", "transcoder"])
def test_init_follows_saelens(case):
    """W_dec rows at decoder_init_norm (1 for unit-norm decoders), W_enc = W_decᵀ (a transcoder's
    own directions at the same norm), zero biases, θ at jumprelu_init_threshold."""
    cfg, _, trainer, swept = setup(case, {}, {})
    X, T = batches(cfg, 0, 1)[0]
    p = trainer.init(swept, trainer_batch(cfg, X, T)).params
    row_norm = 1.0 if unit_norm(cfg) else COEFFICIENTS["decoder_init_norm"]
    np.testing.assert_allclose(np.linalg.norm(p["W_dec"], axis=1), row_norm, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(p["W_enc"], axis=0), row_norm, rtol=1e-5)
    if cfg.d_out is None:
        np.testing.assert_array_equal(p["W_enc"], p["W_dec"].T)
    for name in ("b_enc", "b_dec", "b_gate", "r_mag", "b_mag"):
        if name in p:
            np.testing.assert_array_equal(p[name], 0.0)
    if "log_threshold" in p:
        np.testing.assert_allclose(np.exp(p["log_threshold"]),
                                   COEFFICIENTS["jumprelu_init_threshold"], rtol=1e-6)
    again = trainer.init(swept._replace(seed=jnp.int32(1)), trainer_batch(cfg, X, T)).params
    assert not np.allclose(again["W_dec"], p["W_dec"])  # the seed sets the initialisation
