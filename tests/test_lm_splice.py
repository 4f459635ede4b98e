"""Splicing SAEs into models and editing sites: edits land where the site is, nothing else changes,
and the downstream metrics match their definitions and independent computations."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from toymodels.lm.sites import KINDS  # noqa: E402
from lm_models import tiny_config, tiny_model, tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = lm.corpus()[:10] + ["Short.", "A somewhat longer sentence, so that the batch is padded."]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def gpt2(tokenizer):
    """A randomly initialised 3-block GPT-2 with its LM head."""
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(tiny_config("gpt2", len(tokenizer))).eval()


@pytest.fixture(scope="module")
def minilm():
    return lm.load_model("all-MiniLM-L6-v2")


def exact_sae(d: int, site: str) -> tm.SAE:
    """x̂ = ReLU(x) − ReLU(−x) = x: latents ±e_j."""
    eye = np.eye(d, dtype=np.float32)
    return tm.SAE(tm.SAEConfig(d_in=d, d_sae=2 * d),
                  {"W_enc": np.hstack([eye, -eye]), "b_enc": np.zeros(2 * d, np.float32),
                   "W_dec": np.vstack([eye, -eye]), "b_dec": np.zeros(d, np.float32)},
                  {"hook_name": site})


def zero_sae(d: int, site: str) -> tm.SAE:
    """x̂ = 0."""
    sae = exact_sae(d, site)
    return tm.SAE(sae.config, sae.params | {"W_dec": np.zeros((2 * d, d), np.float32)},
                  sae.metadata)


def random_sae(d: int, d_sae: int, seed: int = 0, bias: float = -0.5) -> tm.SAE:
    """Random directions; the last latent never fires."""
    rng = np.random.default_rng(seed)
    b_enc = np.full(d_sae, bias, np.float32)
    b_enc[-1] = -1e4
    return tm.SAE(tm.SAEConfig(d_in=d, d_sae=d_sae),
                  {"W_enc": rng.normal(size=(d, d_sae)).astype(np.float32) / np.sqrt(d),
                   "b_enc": b_enc,
                   "W_dec": rng.normal(size=(d_sae, d)).astype(np.float32) / np.sqrt(d),
                   "b_dec": rng.normal(size=d).astype(np.float32) * 0.1})


def batch(tokenizer, texts=TEXTS):
    enc = lm.encode(tokenizer, texts, max_length=64)
    return enc.input_ids, enc.attention_mask


def hooks(model) -> set:
    """Every forward (pre-)hook on the model (transformers installs some of its own, for good)."""
    return {(name, kind, key) for name, m in model.named_modules()
            for kind, table in (("post", m._forward_hooks), ("pre", m._forward_pre_hooks))
            for key in table}


def models(tokenizer):
    return {"gpt2": lambda: tiny_model("gpt2", len(tokenizer)),
            "bert": lambda: tiny_model("bert", len(tokenizer)),
            "llama": lambda: tiny_model("llama", len(tokenizer))}


@pytest.mark.parametrize("kind", ["gpt2", "bert", "llama"])
def test_edits_land_at_the_site_and_identity_changes_nothing(kind, tokenizer):
    model = models(tokenizer)[kind]()
    ids, mask = batch(tokenizer)
    clean = lm.model_outputs(model, ids, mask)
    own = hooks(model)
    v = np.linspace(-1, 1, 32).astype(np.float32)
    for k in KINDS:
        site = f"blocks.1.{k}"
        with lm.intervention(model, site, lambda x_in, x: x):
            torch.testing.assert_close(lm.model_outputs(model, ids, mask), clean, rtol=0, atol=1e-6)
        before = lm.capture(model, [site], ids, mask)[site]
        with lm.intervention(model, site, lm.steering(v, 2.0)):
            after = lm.capture(model, [site], ids, mask)
            edited = lm.model_outputs(model, ids, mask)
        torch.testing.assert_close(after[site], before + 2.0 * torch.from_numpy(v),
                                   rtol=1e-5, atol=1e-5)
        assert not torch.allclose(edited, clean, atol=1e-4), site   # the edit reaches the output
        assert hooks(model) == own


def test_pre_norm_resid_mid_edits_the_residual_stream_too(tokenizer):
    # GPT-2's ln_2 only reads resid_mid: the splice must change the residual stream as well, so
    # the block's output is the edited resid_mid plus the MLP's output on it.
    model = tiny_model("gpt2", len(tokenizer))
    ids, mask = batch(tokenizer)
    v = torch.ones(32)
    with lm.intervention(model, "blocks.0.hook_resid_mid", lm.steering(v.numpy(), 3.0)):
        got = lm.capture(model, ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out",
                                 "blocks.0.hook_resid_post"], ids, mask)
    torch.testing.assert_close(got["blocks.0.hook_resid_post"],
                               got["blocks.0.hook_resid_mid"] + got["blocks.0.hook_mlp_out"])


def test_hooks_are_removed_on_error(tokenizer):
    model = tiny_model("gpt2", len(tokenizer))
    ids, mask = batch(tokenizer)
    lm.model_outputs(model, ids, mask)
    own = hooks(model)

    def broken(x_in, x):
        raise RuntimeError("edit failed")

    with pytest.raises(RuntimeError, match="edit failed"):
        with lm.intervention(model, "blocks.2.hook_resid_mid", broken):
            lm.model_outputs(model, ids, mask)
    assert hooks(model) == own
    with pytest.raises(ValueError, match="returned rows of shape"):
        with lm.intervention(model, "blocks.0.hook_mlp_out", lambda x_in, x: x[:, :3]):
            lm.model_outputs(model, ids, mask)
    assert hooks(model) == own


def test_transcoder_reads_one_site_and_writes_another(tokenizer):
    model = tiny_model("gpt2", len(tokenizer))
    ids, mask = batch(tokenizer)
    clean = lm.capture(model, ["blocks.1.mlp.hook_in", "blocks.1.hook_mlp_out"], ids, mask)
    seen = {}

    def record(x_in, x):
        seen.update(x_in=x_in, x=x)
        return 2 * x

    with lm.intervention(model, "blocks.1.mlp.hook_in", record,
                         target_site="blocks.1.hook_mlp_out"):
        after = lm.capture(model, ["blocks.1.hook_mlp_out"], ids, mask)["blocks.1.hook_mlp_out"]
    np.testing.assert_allclose(seen["x_in"], clean["blocks.1.mlp.hook_in"].reshape(-1, 32).numpy())
    np.testing.assert_allclose(seen["x"], clean["blocks.1.hook_mlp_out"].reshape(-1, 32).numpy())
    torch.testing.assert_close(after, 2 * clean["blocks.1.hook_mlp_out"])
    with pytest.raises(ValueError, match="comes before"):
        with lm.intervention(model, "blocks.1.hook_mlp_out", record,
                             target_site="blocks.1.mlp.hook_in"):
            pass


def test_latent_ablation_keeps_the_error_term(tokenizer):
    model = tiny_model("bert", len(tokenizer))
    ids, mask = batch(tokenizer)
    site = "blocks.1.hook_resid_post"
    sae = random_sae(32, 64)
    x = lm.capture(model, [site], ids, mask)[site].reshape(-1, 32).numpy()
    f = np.asarray(sae.encode(x))
    latents = [int(i) for i in np.argsort(-(f > 0).sum(0))[:3]]       # three that fire
    assert (f[:, latents] > 0).any()
    with lm.intervention(model, site, lm.latent_ablation(sae, latents)):
        got = lm.capture(model, [site], ids, mask)[site].reshape(-1, 32).numpy()
    np.testing.assert_allclose(got, x - f[:, latents] @ sae.W_dec[latents], rtol=1e-4, atol=1e-5)
    assert not (f[:, -1] > 0).any()
    with lm.intervention(model, site, lm.latent_ablation(sae, 63)):        # never fires: no change
        np.testing.assert_allclose(lm.capture(model, [site], ids, mask)[site].reshape(-1, 32), x,
                                   atol=1e-6)
    for bad in (64, -1, [], [0.5]):
        with pytest.raises(ValueError, match="latent"):
            lm.latent_ablation(sae, bad)


def test_lm_splice_metrics(gpt2, tokenizer):
    site = "blocks.1.hook_resid_post"
    exact = lm.splice_effects(gpt2, tokenizer, exact_sae(32, site), TEXTS, batch_size=5)
    assert exact["tokens"] == int(batch(tokenizer)[1].sum())
    assert exact["ce_spliced"] == pytest.approx(exact["ce_clean"], abs=1e-5)
    assert exact["kl"] == pytest.approx(0.0, abs=1e-6)
    assert exact["ce_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert exact["fvu"] == pytest.approx(0.0, abs=1e-10) and exact["l2_ratio"] == pytest.approx(1)
    assert abs(exact["ce_zero"] - exact["ce_clean"]) > 1e-3     # (a random model: either way)

    # Cross-entropy as transformers computes it (labels shifted inside, padding ignored).
    ids, mask = batch(tokenizer)
    with torch.no_grad():
        loss = gpt2(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
    assert exact["ce_clean"] == pytest.approx(float(loss), rel=1e-5)

    zero = lm.splice_effects(gpt2, tokenizer, zero_sae(32, site), TEXTS, batch_size=5)
    assert zero["ce_spliced"] == pytest.approx(zero["ce_zero"], rel=1e-6)
    assert zero["ce_recovered"] == pytest.approx(0.0, abs=1e-5)
    assert zero["ce_increase"] == pytest.approx(zero["ce_zero"] - zero["ce_clean"], rel=1e-6)
    assert zero["kl"] > 0

    sae = random_sae(32, 64, bias=0.0)
    noisy = lm.splice_effects(gpt2, tokenizer, sae, TEXTS, site=site)
    x = lm.capture(gpt2, [site], ids, mask)[site][mask.bool()].numpy()
    f = np.asarray(sae.encode(x))
    x_hat = np.asarray(sae.decode(f))
    assert noisy["l0"] == pytest.approx(np.mean(np.sum(f > 0, 1)))
    assert noisy["fvu"] == pytest.approx(np.sum((x - x_hat) ** 2) / np.sum((x - x.mean(0)) ** 2),
                                         rel=1e-5)
    assert noisy["kl"] > 0 and 0 < noisy["l0"] < 63


def test_minilm_embedding_and_splice(minilm):
    model, tokenizer = minilm
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(lm.minilm_path()), device="cpu")
    ids, mask = batch(tokenizer, TEXTS[:6])
    ours = lm.model_outputs(model, ids, mask).numpy()
    np.testing.assert_allclose(ours, reference.encode(TEXTS[:6]), atol=1e-5)
    assert lm.output_kind(model) == "embedding"

    site = "blocks.3.hook_resid_post"
    exact = lm.splice_effects(model, tokenizer, exact_sae(384, site), TEXTS[:6])
    assert exact["embedding_cosine"] == pytest.approx(1.0, abs=1e-5)
    assert exact["cosine_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert exact["embedding_cosine_zero"] < 0.9
    zero = lm.splice_effects(model, tokenizer, zero_sae(384, site), TEXTS[:6])
    assert zero["cosine_recovered"] == pytest.approx(0.0, abs=1e-5)

    effects = lm.intervention_effects(model, tokenizer, TEXTS[:3], site,
                                      lm.steering(np.ones(384, np.float32), 5.0))
    assert effects.kind == "embedding" and effects.cosine().shape == (3,)
    assert (effects.cosine() < 0.999).all()
    with pytest.raises(ValueError, match="no LM head"):
        effects.logit_diff()


def test_steering_effects_on_logits(gpt2, tokenizer):
    effects = lm.intervention_effects(gpt2, tokenizer, TEXTS[:3], "blocks.2.hook_resid_post",
                                      lm.steering(np.zeros(32, np.float32), 1.0))
    assert effects.kind == "logits" and effects.clean.shape == (3, len(tokenizer))
    np.testing.assert_allclose(effects.kl(), 0, atol=1e-7)
    u = gpt2.get_output_embeddings().weight[7].detach().numpy()
    effects = lm.intervention_effects(gpt2, tokenizer, TEXTS[:3], "blocks.2.hook_resid_post",
                                      lm.steering(u / np.linalg.norm(u), 50.0))
    tops = effects.top_tokens(tokenizer, k=3)
    assert all(t["after"][0][0] == tokenizer.decode([7]) for t in tops)
    assert (effects.kl() > 0).all()
    with pytest.raises(ValueError, match="direction has 16 dims"):
        lm.intervention_effects(gpt2, tokenizer, TEXTS[:1], "blocks.2.hook_resid_post",
                                lm.steering(np.ones(16), 1.0))
