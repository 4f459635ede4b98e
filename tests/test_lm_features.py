"""Feature analysis: top latents per token, a latent's store statistics and contexts, promoted
tokens, and the contrast of prompt sets (a planted latent is found, a null split finds nothing)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from toymodels.lm import features  # noqa: E402
from toymodels.lm.store import FORMAT, VERSION, PartWriter  # noqa: E402
from lm_models import tiny_config, tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SITE = "blocks.3.hook_resid_post"


def sae_of(W_enc, b_enc, W_dec=None, b_dec=None, site=SITE) -> tm.SAE:
    d, n = W_enc.shape
    return tm.SAE(tm.SAEConfig(d_in=d, d_sae=n, apply_b_dec_to_input=False),
                  {"W_enc": W_enc.astype(np.float32), "b_enc": b_enc.astype(np.float32),
                   "W_dec": (W_enc.T if W_dec is None else W_dec).astype(np.float32),
                   "b_dec": np.zeros(d, np.float32) if b_dec is None else b_dec},
                  {"hook_name": site})


def random_sae(d, n, bias=-0.5, seed=0, site=SITE):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, n)) / np.sqrt(d)
    return sae_of(W, np.full(n, bias), site=site)


# ----------------------------------------------------------------------------------- top latents

@settings(max_examples=30, deadline=None)
@given(f=hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 12)),
                    elements=st.floats(0, 10, width=32)), k=st.integers(1, 12))
def test_top_latents_are_the_k_largest(f, k):
    k = min(k, f.shape[1])
    index, values = features.top_latents(f, k)
    assert index.shape == values.shape == (f.shape[0], k)
    np.testing.assert_array_equal(values, np.take_along_axis(f, index, 1))
    assert (np.diff(values, axis=1) <= 0).all()
    np.testing.assert_array_equal(values, -np.sort(-f, axis=1)[:, :k])


def test_top_latents_rejects_bad_k():
    for k in (0, 4, 1.5):
        with pytest.raises(ValueError, match="k must"):
            features.top_latents(np.zeros((2, 3)), k)


# -------------------------------------------------------------------------- store statistics

def random_store(folder, shard_rows=(40, 25, 31), d=6, seed=0):
    """A store of Gaussian rows, texts of 4 tokens (token id = 100 + row)."""
    header = {"format": FORMAT, "version": VERSION, "model": "synthetic", "tokenizer": "synthetic",
              "architecture": "bert", "sites": [SITE], "d": {SITE: d}, "dtype": "float32",
              "settings": {"batch_size": 1, "max_length": 8, "drop_special_tokens": False,
                           "prepend_bos": False}, "part": [0, 1]}
    writer = PartWriter(folder, header, "<synthetic>")
    rng = np.random.default_rng(seed)
    r = 0
    for rows in shard_rows:
        ids = np.arange(r, r + rows)
        writer.write_shard({SITE: rng.normal(size=(rows, d)).astype(np.float32),
                            "token_ids": (100 + ids).astype(np.int32), "doc": ids // 4,
                            "position": (ids % 4).astype(np.int32)},
                           texts_done=0, texts_sha256="x", docs_at_max_length=0)
        r += rows
    writer.finish(texts_done=0, texts_sha256="x", docs_at_max_length=0)
    return lm.ActivationStore(folder)


class Ids:
    """A tokenizer stand-in: token id i reads "t<i>"."""

    def decode(self, ids):
        return "".join(f"t{i}" for i in ids)


def test_latent_stats_match_brute_force(tmp_path):
    store = random_store(tmp_path / "s")
    sae = random_sae(6, 10, bias=-1.0)
    sae = tm.SAE(sae.config, sae.params | {"b_enc": np.r_[np.full(9, -1.0), -1e3].astype(
        np.float32)}, sae.metadata)                                   # latent 9 never fires
    stats = features.latent_stats(store, sae, n_top=5, rows=16)     # chunks cut across shards
    x = next(store.chunks(1000))
    f = np.asarray(sae.encode(x))
    np.testing.assert_allclose(stats.density, (f > 0).mean(0))
    np.testing.assert_allclose(stats.max, f.max(0), rtol=1e-6)
    assert stats.tokens == 96
    for i in range(9):
        order = np.argsort(-f[:, i])[:5]
        np.testing.assert_array_equal(stats.top_rows[i], np.where(f[order, i] > 0, order, -1))
        np.testing.assert_allclose(stats.top_values[i], f[order, i], rtol=1e-6)
    assert (stats.top_rows[9] == -1).all() and stats.max[9] == 0
    everything = features.latent_stats(store, sae, n_top=200)              # more than the store
    assert everything.top_rows.shape == (10, 200)
    np.testing.assert_array_equal(np.sort(everything.top_rows[0][everything.top_rows[0] >= 0]),
                                  np.flatnonzero(f[:, 0] > 0))

    contexts = features.max_activating_contexts(store, sae, stats, 2, tokenizer=Ids(), n=3,
                                                before=2, after=1)
    assert [c.row for c in contexts] == list(stats.top_rows[2, :3])
    for c in contexts:
        assert c.tokens[c.index] == f"t{100 + c.row}"
        assert c.value == pytest.approx(f[c.row, 2], rel=1e-5)
        doc = store.document(c.row)
        assert len(c.tokens) == min(doc.stop, c.row + 2) - max(doc.start, c.row - 2)
        np.testing.assert_allclose(c.feature_acts, f[c.row - c.index:c.row - c.index
                                                     + len(c.tokens), 2], rtol=1e-5, atol=1e-6)
    text = features.format_contexts(contexts)
    assert text.count("«") == 3 and f"«t{100 + contexts[0].row}»" in text
    assert features.max_activating_contexts(store, sae, stats, 9, tokenizer=Ids()) == []
    with pytest.raises(ValueError, match="latent must"):
        features.max_activating_contexts(store, sae, stats, 10, tokenizer=Ids())
    with pytest.raises(ValueError, match="not the SAE's"):
        features.latent_stats(store, random_sae(6, 10, site="blocks.0.hook_resid_post"))


# ------------------------------------------------------------------------------ promoted tokens

def test_promoted_tokens_are_what_steering_the_last_stream_promotes():
    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(tiny_config("gpt2", len(tokenizer))).eval()
    with torch.no_grad():                         # a final norm that is not the identity
        model.transformer.ln_f.weight.uniform_(0.2, 2.0)
    site = "blocks.2.hook_resid_post"
    sae = random_sae(32, 8, site=site, seed=3)
    for latent in range(3):
        top = features.promoted_tokens(model, tokenizer, sae, latent, k=3)
        assert len(top["promoted"]) == len(top["suppressed"]) == 3
        assert top["promoted"][0][1] > top["suppressed"][0][1]
        # Steered far along W_dec,i, the last stream is W_dec,i as far as ln_f can tell.
        effects = lm.intervention_effects(model, tokenizer, ["A short text."], site,
                                          lm.steering(sae.W_dec[latent], 1e4))
        after = effects.top_tokens(tokenizer, k=3)[0]["after"]
        assert after[0][0] == top["promoted"][0][0]
    with pytest.raises(ValueError, match="no unembedding"):
        features.promoted_tokens(transformers.AutoModel.from_config(tiny_config("bert", 400)),
                                 tokenizer, random_sae(32, 8), 0)


# -------------------------------------------------------------------------------------- contrast

def zero_inflated(rng, n, d, rate=0.3, scale=1.0):
    return (rng.random((n, d)) < rate) * rng.gamma(2.0, scale, (n, d))


def test_contrast_finds_a_planted_latent_and_drops_shared_ones():
    rng = np.random.default_rng(0)
    sets = {name: zero_inflated(rng, 40, 50) for name in ("happy", "angry", "neutral")}
    sets["happy"][:, 7] = rng.gamma(4.0, 1.0, 40)          # fires on every happy prompt, strongly
    for a in sets.values():                                 # fires on everything, alike everywhere
        a[:, 8] = rng.gamma(2.0, 1.0, len(a))
    table = features.contrast_latents(sets, fdr=0.05)
    found = table[table.significant]
    assert set(found.latent) == {7}
    best = found.iloc[0]
    assert best["set"] == "happy" and best["effect"] > 0.8
    assert set(table.set) == {"happy", "angry", "neutral"}
    assert 8 in set(table.latent) and not table[table.latent == 8].significant.any()
    assert (table.q >= table.p - 1e-15).all()


def test_contrast_reports_nothing_between_two_draws_of_one_distribution():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        table = features.contrast_latents({"a": zero_inflated(rng, 40, 200),
                                           "b": zero_inflated(rng, 40, 200)}, fdr=0.05)
        assert set(table.set) == {"a"}             # two sets: one comparison
        assert not table.significant.any(), table.head()


def test_contrast_rank_biserial_extremes():
    table = features.contrast_latents({"a": np.array([[3.0], [4.0], [5.0]]),
                                       "b": np.array([[0.0], [1.0], [2.0]])}, min_active=1)
    assert table.effect.iloc[0] == pytest.approx(1.0)
    swapped = features.contrast_latents({"b": np.array([[0.0], [1.0], [2.0]]),
                                         "a": np.array([[3.0], [4.0], [5.0]])}, min_active=1)
    assert swapped.effect.iloc[0] == pytest.approx(-1.0)


@pytest.mark.parametrize("bad, match", [
    ({"a": np.zeros((3, 2))}, "at least two"),
    ({"a": np.zeros((3, 2)), "b": np.zeros((3, 4))}, "one d_sae"),
    ({"a": np.zeros((1, 2)), "b": np.zeros((3, 2))}, "fewer than 2"),
])
def test_contrast_rejects_bad_sets(bad, match):
    with pytest.raises(ValueError, match=match):
        features.contrast_latents(bad)


@pytest.fixture(scope="module")
def minilm():
    return lm.load_model("all-MiniLM-L6-v2")


def test_contrast_on_minilm_finds_the_planted_happy_latent(minilm):
    model, tokenizer = minilm
    prompts = lm.prompts()
    # Plant latent 0: the direction from the other sets' tokens to the happy tokens, with its
    # threshold at the largest projection of any angry or neutral token: it fires on happy only.
    def rows(texts):
        enc = lm.encode(tokenizer, texts, max_length=128)
        x = lm.capture(model, [SITE], enc.input_ids, enc.attention_mask)[SITE]
        return x[enc.attention_mask.bool()].numpy()

    happy = rows(prompts["happy"])
    others = rows(prompts["angry"] + prompts["neutral"])
    u = happy.mean(0) - others.mean(0)
    u /= np.linalg.norm(u)
    rng = np.random.default_rng(0)
    W = np.column_stack([u, rng.normal(size=(384, 31)) / np.sqrt(384)])
    b = np.r_[-(others @ u).max(), np.full(31, -0.2)]
    sae = sae_of(W, b)
    latents = features.text_latents(model, tokenizer, sae, prompts["happy"])
    fires = (features.per_prompt(latents)[:, 0] > 0).sum()
    assert fires >= 10, "the planted latent must fire on some happy prompts"
    table, acts = features.contrast(model, tokenizer, sae, prompts)
    assert acts["happy"].shape == (48, 32)
    row = table[(table.latent == 0) & (table.set == "happy")].iloc[0]
    assert row.significant and row.effect > 0.2
    assert (acts["angry"][:, 0] == 0).all() and (acts["neutral"][:, 0] == 0).all()

    # Two halves of one set (prompts 0, 2, 4 … against 1, 3, 5 …): nothing separates them.
    neutral = prompts["neutral"]
    null, _ = features.contrast(model, tokenizer, sae, {"even": neutral[::2], "odd": neutral[1::2]})
    assert not null.significant.any()

    # The top latents of one prompt, from the same pass.
    one = latents[0]
    assert one.tokens[0] == "[CLS]" and one.feature_acts.shape == (len(one.tokens), 32)
