"""Every SAE architecture's forward pass, loss terms and gradients against independent references.

The references (`sae_reference`) are written from the papers and SAELens 6's equations in NumPy
and PyTorch, never by calling `toymodels.sae`; here they meet, on identical weights, the
training forward pass (`SAETrainer.loss`, on the trainable parameters: jumprelu's log θ) and
inference (`tm.SAE.encode` / `decode`, on the published ones).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from toymodels import trainers
import toymodels as tm
from sae_reference import (
    BATCHTOPK,
    CASES,
    COEFFICIENTS,
    ground_truth,
    margin,
    np_decode,
    np_encode,
    np_forward,
    np_loss_terms,
    np_topk,
    published_form,
    random_batch,
    random_params,
    relu,
    subtracts_b_dec,
    torch_reference,
    with_coefficients,
)
from toymodels.sae.architectures import Context

# One example costs a few milliseconds once its case has compiled (each case compiles once): 25
# per case and property keep this file near 30 s of CPU.
EXAMPLES = settings(max_examples=25, deadline=None)
BATCH = 16
#: batch entries this close to a decision of the forward pass (a top-k cut, a jump, a kernel's
#: edge) may go either way between float32 and float64; such draws are discarded.
MARGIN = 1e-3
SEEDS = st.integers(0, 2**32 - 1)


@functools.cache
def loss_and_grad(cfg: tm.SAEConfig):
    """The jitted value and gradient of `SAETrainer.loss` of a configuration (compiled once)."""
    train = tm.TrainConfig(steps=4, batch_size=BATCH, log_every=2)
    trainer = trainers.make_trainer(with_coefficients(cfg), train, ground_truth(cfg))
    return jax.jit(jax.value_and_grad(trainer.loss, has_aux=True))


@functools.cache
def torch_ref():
    pytest.importorskip("torch")
    return torch_reference()


def context(dead: np.ndarray, c: dict = COEFFICIENTS) -> Context:
    return Context(
        l1_coefficient=jnp.float32(c["l1_coefficient"]),
        l0_coefficient=jnp.float32(c["l0_coefficient"]),
        aux_loss_coefficient=jnp.float32(c["aux_loss_coefficient"]),
        pre_act_loss_coefficient=jnp.float32(c["pre_act_loss_coefficient"]),
        jumprelu_bandwidth=jnp.float32(c["jumprelu_bandwidth"]),
        jumprelu_tanh_scale=jnp.float32(c["jumprelu_tanh_scale"]),
        dead=jnp.asarray(dead),
        threshold=jnp.float32(0.0),
    )


def _coefficient(low, high):
    return st.floats(low, high, width=32).map(float)


#: the coefficients a training step hands the loss (swept values: arrays, so no recompilation).
COEFFICIENT_DRAWS = st.fixed_dictionaries({
    "l1_coefficient": _coefficient(0, 4), "l0_coefficient": _coefficient(0, 4),
    "aux_loss_coefficient": _coefficient(0, 4), "pre_act_loss_coefficient": _coefficient(0, 4),
    "jumprelu_bandwidth": _coefficient(0.0625, 1), "jumprelu_tanh_scale": _coefficient(0.5, 8),
})


def draw(case: str, seed: int, dead_fraction: float, c: dict = COEFFICIENTS):
    """Random trainable weights, a batch and a dead mask of a case, away from every decision."""
    cfg = CASES[case]
    rng = np.random.default_rng(seed)
    p = random_params(cfg, rng)
    X, T = random_batch(cfg, rng, BATCH)
    dead = rng.random(cfg.d_sae) < dead_fraction
    assume(margin(cfg, p, X, dead, c["jumprelu_bandwidth"]) > MARGIN)
    return cfg, p, X, T, dead


def run(case, p, X, T, dead, c: dict = COEFFICIENTS):
    cfg = CASES[case] if isinstance(case, str) else case
    (total, (F, X_hat, terms)), grads = loss_and_grad(cfg)(
        {k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(X), jnp.asarray(T),
        context(dead, c))
    return total, F, X_hat, terms, grads


@pytest.mark.parametrize("case", CASES)
@EXAMPLES
@given(seed=SEEDS, dead_fraction=st.sampled_from([0.0, 0.3, 1.0]), c=COEFFICIENT_DRAWS)
def test_training_forward_and_loss_terms_equal_numpy(case, seed, dead_fraction, c):
    cfg, p, X, T, dead = draw(case, seed, dead_fraction, c)
    total, F, X_hat, terms, _ = run(case, p, X, T, dead, c)
    want, fwd = np_loss_terms(cfg, p, X, T, dead, c)
    np.testing.assert_allclose(F, fwd["F"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(X_hat, fwd["X_hat"], rtol=1e-5, atol=1e-5)
    assert sorted(terms) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(terms[name], value, rtol=1e-4, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(total, sum(want.values()), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
@EXAMPLES
@given(seed=SEEDS, dead_fraction=st.sampled_from([0.0, 0.3, 1.0]), c=COEFFICIENT_DRAWS)
def test_loss_gradients_equal_torch_autograd(case, seed, dead_fraction, c):
    ref = torch_ref()
    cfg, p, X, T, dead = draw(case, seed, dead_fraction, c)
    *_, grads = run(case, p, X, T, dead, c)
    want = ref.gradients(cfg, p, X, T, dead, c)
    assert sorted(grads) == sorted(want)
    for name, g in want.items():
        scale = max(1.0, float(np.max(np.abs(g))))
        np.testing.assert_allclose(grads[name], g, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("case", CASES)
@EXAMPLES
@given(seed=SEEDS, lead=st.sampled_from([(), (3,), (2, 5)]))
def test_encode_decode_of_published_weights_equal_numpy(case, seed, lead):
    cfg = CASES[case]
    rng = np.random.default_rng(seed)
    threshold = rng.uniform(0.0, 0.5, cfg.d_sae)
    published = published_form(cfg, random_params(cfg, rng), threshold)
    sae = tm.SAE(cfg, published)
    x = rng.normal(0, 1, lead + (cfg.d_in,)).astype(np.float32)
    f_ref = np_encode(cfg, published, x)
    # away from every decision: a near-tie at the k-th largest π, π at θ, a gate at 0
    xin = x.reshape(-1, cfg.d_in) - (published["b_dec"] if subtracts_b_dec(cfg) else 0)
    if cfg.architecture == "gated":
        assume(np.min(np.abs(xin @ published["W_enc"] + published["b_gate"])) > MARGIN)
    else:
        pre = xin @ published["W_enc"] + published["b_enc"]
        assume(np.min(np.abs(pre - published.get("threshold", 0.0))) > MARGIN)
        if cfg.architecture == "topk":
            pre = np.sort(pre, axis=-1)[:, ::-1]
            assume(np.min(pre[:, cfg.k - 1] - pre[:, cfg.k]) > MARGIN)
    f = sae.encode(x)
    assert f.shape == lead + (cfg.d_sae,)
    np.testing.assert_allclose(f, f_ref, rtol=1e-5, atol=1e-5)
    x_hat = sae.decode(f_ref.astype(np.float32))
    assert x_hat.shape == lead + (cfg.output_width,)
    np.testing.assert_allclose(x_hat, np_decode(published, f_ref), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae(x), np_decode(published, f_ref), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c].architecture not in BATCHTOPK])
def test_inference_equals_the_training_forward(case):
    """Outside (matryoshka_)batchtopk (batch-level in training), a published SAE encodes as it trained."""
    cfg = CASES[case]
    rng = np.random.default_rng(1)
    p = random_params(cfg, rng)
    X, T = random_batch(cfg, rng, BATCH)
    _, F, X_hat, _, _ = run(case, p, X, T, np.zeros(cfg.d_sae, bool))
    sae = tm.SAE(cfg, published_form(cfg, p))
    np.testing.assert_allclose(sae.encode(X), F, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sae(X), X_hat, rtol=1e-5, atol=1e-5)


# --- the JumpReLU straight-through estimators: the hand-computed example (REFERENCES.md) ----------


@pytest.mark.parametrize("function, value, dtheta, dz", [
    (tm.sae.jumprelu, [0, 0, 1.6, 2], [0, -3, -3, 0], [0, 0, 1, 1]),  # no estimator on z
    (tm.sae.step, [0, 0, 1, 1], [0, -2, -2, 0], [0, 0, 0, 0]),
])
def test_straight_through_estimators_match_the_hand_computed_example(function, value, dtheta, dz):
    """z = [1, 1.4, 1.6, 2], θ = 1.5, ε = 0.5 (REFERENCES.md): rectangle-kernel gradients."""
    z = jnp.array([1.0, 1.4, 1.6, 2.0])
    theta, eps = jnp.full(4, 1.5), jnp.float32(0.5)
    np.testing.assert_allclose(function(z, theta, eps), value)
    grad_z, grad_theta = jax.grad(lambda z, t: jnp.sum(function(z, t, eps)), (0, 1))(z, theta)
    np.testing.assert_allclose(grad_theta, dtheta)
    np.testing.assert_array_equal(grad_z, dz)
    # One θ per latent, broadcast over a batch, sums the per-example gradients.
    scalar = jax.grad(lambda t: jnp.sum(function(z, t, eps)))(jnp.float32(1.5))
    np.testing.assert_allclose(scalar, sum(dtheta))


def test_log_threshold_gradient_is_theta_times_the_estimator():
    """jumprelu trains log θ: ∂L/∂log θ = θ · ∂L/∂θ, with the rectangle kernel's ∂L/∂θ."""
    cfg = CASES["jumprelu_step"]
    rng = np.random.default_rng(4)
    p = random_params(cfg, rng)
    X, T = random_batch(cfg, rng, BATCH)
    dead = np.zeros(cfg.d_sae, bool)
    assert margin(cfg, p, X, dead) > MARGIN
    c = COEFFICIENTS
    *_, grads = run("jumprelu_step", p, X, T, dead)
    terms, fwd = np_loss_terms(cfg, p, X, T, dead)
    pre, theta, eps = fwd["pre"], fwd["threshold"], c["jumprelu_bandwidth"]
    kernel = (np.abs((pre - theta) / eps) < 0.5).astype(np.float64)
    # L = mse(x̂(f)) + l0 · mean Σ H: ∂f/∂θ = −(θ/ε) K, ∂H/∂θ = −(1/ε) K.
    dmse_df = 2 * (fwd["X_hat"] - T) @ p["W_dec"].T.astype(np.float64) / BATCH
    dtheta = np.sum(dmse_df * -(theta / eps) * kernel, axis=0)
    dtheta += c["l0_coefficient"] * np.sum(-(1 / eps) * kernel, axis=0) / BATCH
    np.testing.assert_allclose(grads["log_threshold"], theta * dtheta, rtol=1e-4, atol=1e-5)


# --- properties that hold for every input -------------------------------------------------------

# A few fixed shapes: every new shape or k costs a compilation.
ELEMENTS = st.floats(-10, 10, width=32, allow_subnormal=False)
ROWS = hnp.arrays(np.float32, (4, 9), elements=ELEMENTS)


@functools.cache
def topk_relu(k: int):
    return jax.jit(functools.partial(tm.sae.topk_relu, k=k))


@settings(max_examples=100, deadline=None)
@given(pre=ROWS, k=st.sampled_from([1, 3, 9]))
def test_topk_keeps_the_k_largest(pre, k):
    f = np.asarray(topk_relu(k)(jnp.asarray(pre)))
    assert (np.count_nonzero(f, axis=-1) <= k).all()
    assert (f >= 0).all()
    # the kept values are the k largest (ties may pick either index; the values agree)
    np.testing.assert_array_equal(np.sort(f, axis=-1), np.sort(np_topk(pre, k), axis=-1))
    kept = f > 0
    np.testing.assert_array_equal(f[kept], pre[kept])


@settings(max_examples=30, deadline=None)
@given(seed=SEEDS, k=st.sampled_from([1, 12]), scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_batchtopk_keeps_at_most_k_times_batch(seed, k, scale):
    """At most k·B activations of the batch survive (some examples may keep more than k), and
    they are the largest; with k = d_sae all of ReLU(π) is kept."""
    cfg = tm.SAEConfig(d_in=6, d_sae=12, architecture="batchtopk", k=k)
    rng = np.random.default_rng(seed)
    p = random_params(cfg, rng)
    p["b_enc"] = (scale * p["b_enc"]).astype(np.float32)
    X, T = random_batch(cfg, rng, BATCH)
    _, F, _, _, _ = run(cfg, p, X, T, np.zeros(cfg.d_sae, bool))
    F = np.asarray(F)
    assert np.count_nonzero(F) <= k * BATCH
    assert (F >= 0).all()
    ref = np_forward(cfg, p, X)
    kept = F > 0
    np.testing.assert_allclose(F[kept], ref["pre"][kept], rtol=1e-5, atol=1e-5)
    if kept.any() and (~kept).any():  # nothing dropped beats anything kept
        assert relu(ref["pre"][~kept]).max() <= F[kept].min() + 1e-5


JUMP = jax.jit(lambda x, theta: (tm.sae.jumprelu(x, theta, 0.1), tm.sae.step(x, theta, 0.1)))


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(np.float32, (4, 9), elements=ELEMENTS),
       theta=hnp.arrays(np.float32, (9,), elements=st.floats(0.0625, 5, width=32)))
def test_jumprelu_is_zero_up_to_the_threshold_and_identity_above(x, theta):
    f, h = (np.asarray(a) for a in JUMP(jnp.asarray(x), jnp.asarray(theta)))
    below = x <= theta
    np.testing.assert_array_equal(f[below], 0)
    np.testing.assert_array_equal(f[~below], x[~below])
    np.testing.assert_array_equal(h, (~below).astype(np.float32))


def test_auxk_is_zero_without_dead_latents_and_scaled_by_their_count():
    cfg = CASES["topk"]  # d_in 6: k_aux = 3
    rng = np.random.default_rng(5)
    p = random_params(cfg, rng)
    X, T = random_batch(cfg, rng, BATCH)
    terms = {}
    for n_dead in (0, 1, 3, 12):
        dead = np.arange(cfg.d_sae) < n_dead
        terms[n_dead] = float(run("topk", p, X, T, dead)[3]["auxk"])
        want, _ = np_loss_terms(cfg, p, X, T, dead)
        np.testing.assert_allclose(terms[n_dead], want["auxk"], rtol=1e-4, atol=1e-6)
    assert terms[0] == 0.0 and terms[1] > 0
