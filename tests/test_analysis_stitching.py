"""Stitching: novel latents of a wider SAE, added one at a time to a narrower one."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toymodels as tm
from toymodels.analysis import novel_features, novel_latents, stitch, stitch_curve
from toymodels.sae import architectures as arch

TRUTH = tm.GroundTruth(d_in=16, n_features=8, mean_active=2.0, frequency_decay=1.0,
                       orthogonal=True, seed=3)
X = np.asarray(TRUTH.coefficients(jax.random.key(0), 4000)) @ TRUTH.dictionary


def tied(features, order=None):
    """A standard SAE whose latents are the true directions `features` (tied, zero biases): on
    orthonormal features it reads each coefficient exactly."""
    D = TRUTH.dictionary[list(features)]
    if order is not None:
        D = D[order]
    cfg = tm.SAEConfig(d_in=TRUTH.d_in, d_sae=len(D))
    return tm.SAE(cfg, {"W_enc": D.T, "b_enc": np.zeros(len(D)), "W_dec": D,
                        "b_dec": np.zeros(TRUTH.d_in)})


def random_sae(architecture, d_sae, seed, d_in=TRUTH.d_in, d_out=None):
    rng = np.random.default_rng(seed)
    k = 2 if architecture in ("topk", "batchtopk", "matryoshka_batchtopk") else None
    widths = (1, d_sae) if architecture == "matryoshka_batchtopk" else None
    cfg = tm.SAEConfig(d_in=d_in, d_sae=d_sae, architecture=architecture, k=k,
                       matryoshka_widths=widths, d_out=d_out)
    sizes = {"d_in": d_in, "latent": d_sae, "d_out": d_out}
    params = {name: rng.normal(scale=0.3, size=[sizes[d] for d in dims])
              for name, dims in arch.param_dims(cfg).items()}
    if "threshold" in params:
        params["threshold"] = np.abs(params["threshold"])
    return tm.SAE(cfg, params)


def test_an_sae_stitched_with_itself_has_no_novel_latents():
    sae = random_sae("standard", 6, seed=0)
    curve = stitch_curve(sae, sae, X)
    assert curve.sizes["novel_latent"] == 0 and curve.sizes["n_added"] == 1
    np.testing.assert_allclose(curve.max_cos, 1.0, atol=1e-5)
    np.testing.assert_allclose(curve.mse, curve.wide_mse, rtol=1e-5)
    np.testing.assert_allclose(curve.l0, curve.wide_l0, rtol=1e-6)


def test_two_new_latents_on_new_features_are_exactly_the_novel_ones():
    narrow = tied(range(6))
    order = np.array([6, 2, 0, 7, 5, 1, 3, 4])  # the new features 6 and 7 sit at latents 0 and 3
    wide = tied(range(8), order)
    curve = stitch_curve(narrow, wide, X)
    np.testing.assert_array_equal(curve.novel, [0, 3])
    np.testing.assert_array_equal(curve.added_latent, [-1, 0, 3])
    mse = curve.mse.values
    assert (np.diff(mse) < 0).all() and mse[0] > 0.05  # each added feature takes its error away
    np.testing.assert_allclose(mse[-1], curve.wide_mse, atol=1e-6)
    np.testing.assert_allclose(curve.l0[-1], curve.wide_l0, rtol=1e-6)
    assert (np.diff(curve.l0.values) > 0).all()
    found = novel_features(wide, curve.novel, TRUTH.dictionary)
    np.testing.assert_array_equal(found.true_feature, [6, 7])
    np.testing.assert_allclose(found.abs_cos, 1.0, atol=1e-6)


def test_the_curve_is_the_stitched_saes_own_l0_and_mse():
    narrow, wide = random_sae("jumprelu", 4, seed=1), random_sae("jumprelu", 9, seed=2)
    curve = stitch_curve(narrow, wide, X, threshold=0.5)
    assert curve.sizes["novel_latent"] >= 2
    for n in range(curve.sizes["n_added"]):
        member = stitch(narrow, wide, curve.novel.values[:n])
        f = member.encode(X)
        assert member.d_sae == 4 + n
        np.testing.assert_allclose(curve.l0[n], tm.analysis.l0(f), rtol=1e-5)
        np.testing.assert_allclose(curve.mse[n], tm.analysis.mse(X, member.decode(f)), rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["standard", "jumprelu", "gated", "batchtopk", "matryoshka_batchtopk"]),
       st.integers(0, 2**31 - 1))
def test_an_added_latent_fires_as_in_the_wide_sae_though_b_dec_differs(architecture, seed):
    narrow, wide = random_sae(architecture, 3, seed), random_sae(architecture, 7, seed + 1)
    latents = np.random.default_rng(seed).permutation(7)[:4]
    member = stitch(narrow, wide, latents)
    f = np.asarray(member.encode(X[:500]))
    np.testing.assert_allclose(f[:, :3], narrow.encode(X[:500]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f[:, 3:], np.asarray(wide.encode(X[:500]))[:, latents],
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(member.W_dec[3:], wide.W_dec[latents])
    np.testing.assert_array_equal(member.b_dec, narrow.b_dec)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(-1.0, 1.0))
def test_novelty_is_the_max_cosine_below_the_threshold(seed, threshold):
    rng = np.random.default_rng(seed)
    narrow, wide = rng.normal(size=(5, 7)), rng.normal(size=(11, 7))
    novel, m = novel_latents(narrow, wide, threshold)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    expected = (unit(wide) @ unit(narrow).T).max(axis=1)
    np.testing.assert_allclose(m, expected, atol=1e-5)
    np.testing.assert_array_equal(novel, m < threshold)
    # rescaling and reordering the narrow latents changes nothing
    moved, _ = novel_latents(3.0 * narrow[::-1], wide, threshold)
    np.testing.assert_array_equal(moved, novel)


def test_stitching_refuses_topk_and_mismatched_pairs():
    with pytest.raises(ValueError, match="compete for k"):
        stitch_curve(random_sae("topk", 3, 0), random_sae("topk", 6, 1), X)
    with pytest.raises(ValueError, match="encode alike"):
        stitch(random_sae("standard", 3, 0), random_sae("gated", 6, 1), [0])
    with pytest.raises(ValueError, match="d_in"):
        stitch(random_sae("standard", 3, 0), random_sae("standard", 6, 1, d_in=8), [0])
    with pytest.raises(ValueError, match="latents must index"):
        stitch(random_sae("standard", 3, 0), random_sae("standard", 6, 1), [6])
    with pytest.raises(ValueError, match="threshold"):
        novel_latents(np.ones((2, 3)), np.ones((3, 3)), threshold=1.5)
    sae = random_sae("standard", 3, 0)
    with pytest.raises(ValueError, match="x must"):
        stitch_curve(sae, sae, X[:, :5])


def test_a_batchtopk_pair_stitches_to_the_jumprelu_it_infers_as():
    narrow, wide = random_sae("batchtopk", 3, 0), random_sae("batchtopk", 5, 1)
    member = stitch(narrow, wide, [1, 4])
    assert member.architecture == "jumprelu" and member.config.k is None
    np.testing.assert_allclose(np.asarray(member.encode(X[:200]))[:, :3], narrow.encode(X[:200]),
                               rtol=1e-5, atol=1e-5)


def test_a_transcoders_curve_is_measured_against_its_target():
    narrow, wide = random_sae("standard", 3, 4, d_out=5), random_sae("standard", 6, 5, d_out=5)
    y = np.random.default_rng(0).normal(size=(len(X), 5))
    curve = stitch_curve(narrow, wide, X, threshold=0.9, target=y)
    last = stitch(narrow, wide, curve.novel.values)
    np.testing.assert_allclose(curve.mse[-1], tm.analysis.mse(y, last(X)), rtol=1e-4)
    np.testing.assert_allclose(curve.mse[0], tm.analysis.mse(y, narrow(X)), rtol=1e-4)
    with pytest.raises(ValueError, match="target"):
        stitch_curve(narrow, wide, X, target=y[:, :4])
