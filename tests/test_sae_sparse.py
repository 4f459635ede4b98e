"""Sparse decoding (`SAEConfig.decoding`, `toymodels.sae.sparse`) trains the same SAEs as the dense
path: 200 steps of each TopK-family architecture on one stream, losses, weights and firing
counts compared; `SparseActs` against its dense form; the custom gradients of `pre_at` and
`gather_decode` against autodiff of their plain forms, and the blocked transpose, as properties
over shapes; the auto rule; bad values refused."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.sae import sparse
from toymodels.sae.sparse import MIN_RATIO, SparseActs, chooses_sparse

TRUTH = tm.GroundTruth(d_in=16, n_features=48, mean_active=3.0, seed=0)
TRAIN = tm.TrainConfig(steps=200, batch_size=64, lr=3e-3, log_every=50)
CASES = {
    "topk": dict(architecture="topk", k=4),
    "batchtopk": dict(architecture="batchtopk", k=4),
    "matryoshka": dict(architecture="matryoshka_batchtopk", k=4, matryoshka_widths=(6, 20, 40)),
    "matryoshka_group_aux": dict(architecture="matryoshka_batchtopk", k=4,
                                 matryoshka_widths=(6, 20, 40), use_matryoshka_aux_loss=True),
}


def _train(decoding: str, fields: dict):
    # a short dead window, so that AuxK reconstructs from dead latents during the 200 steps
    sae = tm.SAEConfig(d_in=16, d_sae=40, decoding=decoding, dead_feature_window=10,
                       aux_loss_coefficient=1.0, **fields)
    return tm.sweep(sae, {"seed": [0, 1]}, TRAIN, data=TRUTH, progress=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_trains_as_dense(case):
    dense, gathered = _train("dense", CASES[case]), _train("sparse", CASES[case])
    for name in ("loss", "mse", "l0"):
        np.testing.assert_allclose(gathered[name].values, dense[name].values, rtol=2e-3,
                                   atol=1e-5, err_msg=name)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec", "training_latent_density"):
        np.testing.assert_allclose(gathered[name].values, dense[name].values, rtol=2e-3,
                                   atol=2e-4, err_msg=name)
    if "threshold" in dense:
        np.testing.assert_allclose(gathered.threshold.values, dense.threshold.values, rtol=1e-4)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), d_sae=st.integers(2, 40), batch=st.integers(1, 9),
       k=st.integers(1, 40), keep=st.integers(1, 400), cuts=st.lists(st.floats(0.05, 0.95),
                                                                     max_size=3))
def test_sparse_acts_match_their_dense_form(seed, d_sae, batch, k, keep, cuts):
    """For any shapes: the rows form is topk_relu, the pairs form keeps the `keep` largest of the
    whole batch, and decode, group decodes and firing counts equal their dense products."""
    k, keep = min(k, d_sae), min(keep, d_sae * batch)
    pre = jax.random.normal(jax.random.key(seed), (d_sae, batch))
    W_dec = jax.random.normal(jax.random.key(seed + 1), (d_sae, 5))
    rows = SparseActs.top_k_rows(pre.T, k)
    F = np.asarray(rows.dense())
    np.testing.assert_allclose(F, np.asarray(tm.sae.topk_relu(pre.T, k)).T)
    np.testing.assert_allclose(rows.decode(W_dec), W_dec.T @ F, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rows.firing_counts(), np.sum(F > 0, axis=1))

    acts = jax.nn.relu(pre)
    pairs = SparseActs.top_k_pairs(acts.T, keep)
    F = np.asarray(pairs.dense())
    assert np.sum(F > 0) == min(keep, int(np.sum(acts > 0)))
    if np.any(F > 0):
        assert F[F > 0].min() >= np.sort(np.asarray(acts).ravel())[-keep]
    np.testing.assert_allclose(pairs.decode(W_dec), W_dec.T @ F, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(pairs.firing_counts(), np.sum(F > 0, axis=1))
    starts = sorted({0} | {int(c * d_sae) for c in cuts})
    bounds = tuple(zip(starts, starts[1:] + [d_sae]))
    groups = pairs.group_decodes(W_dec, bounds)
    for g, (lo, hi) in enumerate(bounds):
        np.testing.assert_allclose(groups[g], W_dec[lo:hi].T @ F[lo:hi], rtol=1e-5, atol=1e-5)


def test_auto_chooses_by_ratio():
    assert chooses_sparse("auto", MIN_RATIO * 4, 4)
    assert not chooses_sparse("auto", MIN_RATIO * 4 - 1, 4)
    assert chooses_sparse("sparse", 8, 4) and not chooses_sparse("dense", 10**6, 1)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_gradients_equal_dense(case):
    """∂loss/∂params of one batch, sparse against dense, a third of the latents dead (AuxK on)."""
    _assert_gradients_equal({decoding: tm.SAEConfig(d_in=16, d_sae=40, decoding=decoding,
                                                    **CASES[case])
                             for decoding in ("dense", "sparse")})


@pytest.mark.parametrize("architecture", ["topk", "batchtopk"])
def test_sparse_selection_with_dense_auxk_gradients_equal_dense(architecture):
    """What "auto" picks for most wide SAEs: the k selected latents sparse (d_sae ≥ 128 k), AuxK's
    k_aux = d_in / 2 dense (d_sae < 128 k_aux), its gradient reaching the encoder in its branch."""
    configs = {decoding: tm.SAEConfig(d_in=16, d_sae=128, architecture=architecture, k=1,
                                      decoding=decoding) for decoding in ("dense", "auto")}
    assert chooses_sparse("auto", 128, 1) and not chooses_sparse("auto", 128, 16 // 2)  # k_aux 8
    _assert_gradients_equal(configs)


def _assert_gradients_equal(configs: dict):
    """∂loss/∂params of one batch for each config (the same SAE decoded two ways), a third of
    the latents dead so that AuxK contributes, all equal to the first config's."""
    from toymodels import trainers
    from toymodels.sae.architectures import Context

    grads = {}
    for name, cfg in configs.items():
        train = tm.TrainConfig(steps=2, batch_size=32)
        trainer = trainers.make_trainer(cfg, train, TRUTH)
        state = trainer.init(trainer.swept(cfg, train, 0), TRUTH.sample(jax.random.key(0), 32))
        X = TRUTH.sample(jax.random.key(1), 32)
        one = jnp.float32(1.0)
        ctx = Context(one, one, one, one, jnp.float32(0.05), jnp.float32(4.0),
                      dead=jnp.arange(cfg.d_sae) % 3 == 0, threshold=jnp.float32(0.0))
        grads[name] = jax.grad(lambda p: trainer.loss(p, X, X, ctx)[0])(state.params)
    first, *others = grads.values()
    assert float(jnp.abs(first["W_dec"]).max()) > 0
    for other in others:
        for name, g in first.items():
            np.testing.assert_allclose(other[name], g, rtol=1e-4, atol=1e-6, err_msg=name)


def test_bad_decoding_is_refused():
    with pytest.raises(ValueError, match="decoding"):
        tm.SAEConfig(d_in=4, d_sae=8, decoding="fast")
    with pytest.raises(ValueError, match="decoding.*only topk"):
        tm.SAEConfig(d_in=4, d_sae=8, decoding="sparse")
    cfg = tm.SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2, decoding="sparse")
    assert dataclasses.replace(cfg, decoding="dense").decoding == "dense"


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 40), m=st.integers(1, 9),
       block=st.sampled_from([1, 2, 4, 32]), whole=st.booleans())
def test_blocked_transpose_is_the_transpose(seed, n, m, block, whole):
    """In blocks (rows a multiple of `block`) or, for other rows, XLA's own."""
    x = jax.random.normal(jax.random.key(seed), (n * block if whole else n, m))
    np.testing.assert_array_equal(sparse.blocked_transpose(x, block), np.asarray(x).T)


def _pairs(key, batch, d_sae, k, form):
    """Selected (latent, sample) of a batch: each row's k distinct latents, or K random pairs."""
    k1, k2 = jax.random.split(key)
    if form == "rows":
        return jax.random.permutation(k1, jnp.tile(jnp.arange(d_sae), (batch, 1)), axis=1,
                                      independent=True)[:, :k], None
    return (jax.random.randint(k1, (k * batch,), 0, d_sae),
            jax.random.randint(k2, (k * batch,), 0, batch))


@pytest.mark.parametrize("form", ["rows", "pairs"])
@pytest.mark.parametrize("dense_grad", [False, True])
@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), d_in=st.sampled_from([3, 256]),
       d_sae=st.sampled_from([7, 256]), batch=st.integers(1, 5), k=st.integers(1, 7))
def test_pre_at_differentiates_as_the_gathered_pre_activations(seed, d_in, d_sae, batch, k, form,
                                                               dense_grad):
    """pre_at's custom gradient (scatter-adds into W_encᵀ and the bias, or one dense matmul)
    equals autodiff of the plain gather of Xᵀ W_enc + bias, in X, W_enc and the bias."""
    keys = jax.random.split(jax.random.key(seed), 5)
    X = jax.random.normal(keys[0], (d_in, batch))
    W = jax.random.normal(keys[1], (d_in, d_sae))
    b = jax.random.normal(keys[2], (d_sae,))
    latent, sample = _pairs(keys[3], batch, d_sae, min(k, d_sae), form)
    weight = jax.random.normal(keys[4], latent.shape)

    def selected(X, W, b):
        enc = sparse.EncoderMap(X, W, b)
        return jnp.sum(weight * sparse.pre_at(enc.pre(), enc, latent, sample, dense_grad))

    def plain(X, W, b):
        pre = X.T @ W + b
        at = jnp.take_along_axis(pre, latent, 1) if sample is None else pre[sample, latent]
        return jnp.sum(weight * at)

    np.testing.assert_allclose(selected(X, W, b), plain(X, W, b), rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.grad(selected, (0, 1, 2))(X, W, b),
                         jax.grad(plain, (0, 1, 2))(X, W, b)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["rows", "pairs"])
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), d_out=st.sampled_from([5, 256]),
       d_sae=st.sampled_from([7, 256]), batch=st.integers(1, 5), k=st.integers(1, 7),
       groups=st.integers(1, 3))
def test_gather_decode_differentiates_as_the_segment_sum(seed, d_out, d_sae, batch, k, groups,
                                                         form):
    """gather_decode's custom gradient (∂v from the gathered rows, ∂W_dec a scatter-add) equals
    autodiff of the plain segment sum of v_j W_dec[latent_j], feature-major."""
    keys = jax.random.split(jax.random.key(seed), 5)
    W_dec = jax.random.normal(keys[0], (d_sae, d_out))
    latent, sample = _pairs(keys[1], batch, d_sae, min(k, d_sae), form)
    values = jax.random.normal(keys[2], latent.shape)
    if form == "rows":
        segment, n_segments = None, batch
        plain_segment = jnp.repeat(jnp.arange(batch), latent.shape[1])
    else:
        n_segments = groups * batch
        segment = sample + batch * jax.random.randint(keys[3], sample.shape, 0, groups)
        plain_segment = segment
    cotangent = jax.random.normal(keys[4], (d_out, n_segments))

    def gathered(values, W_dec):
        return jnp.sum(cotangent * sparse.gather_decode(values, latent, segment, n_segments, W_dec))

    def plain(values, W_dec):
        rows = values.reshape(-1, 1) * W_dec[latent.reshape(-1)]
        return jnp.sum(cotangent * jax.ops.segment_sum(rows, plain_segment, n_segments).T)

    np.testing.assert_allclose(gathered(values, W_dec), plain(values, W_dec), rtol=1e-4, atol=1e-4)
    for got, want in zip(jax.grad(gathered, (0, 1))(values, W_dec),
                         jax.grad(plain, (0, 1))(values, W_dec)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
