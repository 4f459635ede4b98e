"""Sparse decoding (`SAEConfig.decoding`, `toymodels.sae.sparse`) trains the same SAEs as the dense
path: 200 steps of each TopK-family architecture on one stream, losses, weights and firing
counts compared; `SparseActs` against its dense form; the auto rule; bad values refused."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
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
    dense, sparse = _train("dense", CASES[case]), _train("sparse", CASES[case])
    for name in ("loss", "mse", "l0"):
        np.testing.assert_allclose(sparse[name].values, dense[name].values, rtol=2e-3, atol=1e-5,
                                   err_msg=name)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec", "training_latent_density"):
        np.testing.assert_allclose(sparse[name].values, dense[name].values, rtol=2e-3, atol=2e-4,
                                   err_msg=name)
    if "threshold" in dense:
        np.testing.assert_allclose(sparse.threshold.values, dense.threshold.values, rtol=1e-4)


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
    from toymodels import trainers
    from toymodels.sae.architectures import Context

    grads = {}
    for decoding in ("dense", "sparse"):
        cfg = tm.SAEConfig(d_in=16, d_sae=40, decoding=decoding, **CASES[case])
        trainer = trainers.make_trainer(cfg, tm.TrainConfig(steps=2, batch_size=32), TRUTH)
        state = trainer.init(trainer.swept(cfg, tm.TrainConfig(steps=2, batch_size=32), 0),
                             TRUTH.sample(jax.random.key(0), 32))
        X = TRUTH.sample(jax.random.key(1), 32)
        one = jnp.float32(1.0)
        ctx = Context(one, one, one, one, jnp.float32(0.05), jnp.float32(4.0),
                      dead=jnp.arange(40) % 3 == 0, threshold=jnp.float32(0.0))
        grads[decoding] = jax.grad(lambda p: trainer.loss(p, X, X, ctx)[0])(state.params)
    assert float(jnp.abs(grads["dense"]["W_dec"]).max()) > 0
    for name, g in grads["dense"].items():
        np.testing.assert_allclose(grads["sparse"][name], g, rtol=1e-4, atol=1e-6, err_msg=name)


def test_bad_decoding_is_refused():
    with pytest.raises(ValueError, match="decoding"):
        tm.SAEConfig(d_in=4, d_sae=8, decoding="fast")
    with pytest.raises(ValueError, match="decoding.*only topk"):
        tm.SAEConfig(d_in=4, d_sae=8, decoding="sparse")
    cfg = tm.SAEConfig(d_in=4, d_sae=8, architecture="topk", k=2, decoding="sparse")
    assert dataclasses.replace(cfg, decoding="dense").decoding == "dense"
