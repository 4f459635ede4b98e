"""toymodels.lm.saebench: SAEBench's absorption score and its probes on arrays whose answer is
known, then the whole evaluation (and `toymodels lm evaluate --saebench`) on a random tiny BERT
with MiniLM's WordPiece tokenizer."""

import json

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("sklearn")

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from toymodels.cli import main  # noqa: E402
from toymodels.lm import saebench  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SITE = "blocks.1.hook_resid_post"


def score(P, f, cos, main):
    fraction, full = saebench.token_absorption(P, np.asarray(f, np.float32),
                                               np.asarray(cos, np.float32), np.asarray(main))
    return float(fraction), bool(full)


# ------------------------------------------------------------------ the absorption score

def test_a_main_latent_on_the_probe_direction_absorbs_nothing():
    # latent 0 is the letter latent, its decoder exactly the probe: it carries all of P = 2
    assert score(2.0, [2.0, 0.0, 0.3], [1.0, 0.9, 0.0], [True, False, False]) == (0.0, False)


def test_a_second_latent_carrying_the_probe_while_the_main_is_off_is_full_absorption():
    assert score(2.0, [0.0, 2.0, 0.0], [1.0, 1.0, 0.0], [True, False, False]) == (1.0, True)


def test_partial_absorption_is_the_absorbers_share():
    # M = 1, A = 1 from latent 1: a = min(A, P − M) = 1, fraction 1/(1 + 1); main fires: not full
    assert score(2.0, [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [True, False, False]) == (0.5, False)
    # A = 3 exceeds what is missing (P − M = 1): a = 1
    assert score(2.0, [1.0, 3.0, 0.0], [1.0, 1.0, 0.0], [True, False, False]) == (0.5, False)


def test_the_thresholds():
    # the absorber's cosine 0.05 is below 0.1 (fraction) but above 0.025 (full absorption)
    assert score(2.0, [0.0, 40.0, 0.0], [1.0, 0.05, 0.0], [True, False, False]) == (0.0, True)
    # absorbers supplying under 0.4 of P: no absorption; main off, top latent too weak: not full
    assert score(2.0, [0.0, 0.7, 0.0], [1.0, 1.0, 0.0], [True, False, False]) == (0.0, False)
    # at most 3 absorbers count: four of 0.25 each give A = 0.75 < 0.4 · P = 0.8
    f, cos = [0, .25, .25, .25, .25], [1, 1, 1, 1, 1]
    assert score(2.0, f, cos, [True, False, False, False, False])[0] == 0.0
    assert score(1.5, f, cos, [True, False, False, False, False])[0] == 1.0
    # the main latent's projection counts with its cosine: M = 1 · (−1) ≤ 0 means fraction 1
    assert score(2.0, [1.0, 2.0], [-1.0, 1.0], [True, False])[0] == 1.0
    # P = 0 (or below): nothing to absorb
    assert score(0.0, [0.0, 2.0], [1.0, 1.0], [True, False]) == (0.0, False)


tokens = st.integers(2, 8).flatmap(lambda d: st.tuples(
    st.floats(0.05, 10),
    st.lists(st.floats(0, 5), min_size=d, max_size=d),
    st.lists(st.floats(-1, 1), min_size=d, max_size=d),
    st.lists(st.booleans(), min_size=d, max_size=d).filter(any),
    st.permutations(range(d)), st.floats(0.1, 10)))


@settings(max_examples=60, deadline=None)
@given(tokens)
def test_absorption_is_a_fraction_invariant_to_latent_order_and_scale(case):
    P, f, cos, main, perm, c = case
    f, cos, main = np.array(f, np.float32), np.array(cos, np.float32), np.array(main)
    fraction, full = score(P, f, cos, main)
    assert 0.0 <= fraction <= 1.0
    p = np.array(perm)
    assert score(P, f[p], cos[p], main[p]) == pytest.approx((fraction, full), abs=1e-6)
    # scaling the activation scales P and every latent's projection alike (f ↦ c f)
    scaled = score(c * P, c * f, cos, main)
    assert scaled[0] == pytest.approx(fraction, abs=1e-4)


def test_summary_averages_per_letter_then_over_passing_letters():
    letter = np.array([0, 0, 1, 1, 1, 2])
    fraction = np.array([1.0, 0.0, 0.0, 0.0, 0.6, 1.0])
    full = np.array([True, False, False, False, False, True])
    f1 = np.zeros(26)
    f1[[0, 1]] = 0.9                 # letter c (id 2) fails the gate, d … z have no tokens
    out = saebench.absorption_summary(fraction, full, letter, f1, min_letters=2)
    assert out["letters_passing"] == 2 and out["gate_passed"]
    assert out["absorption_fraction"] == pytest.approx((0.5 + 0.2) / 2)
    assert out["full_absorption_rate"] == pytest.approx((0.5 + 0.0) / 2)
    assert out["per_letter"]["c"]["absorption_fraction"] == 1.0
    assert out["absorption_fraction_ungated"] == pytest.approx((0.5 + 0.2 + 1.0) / 3)
    assert out["full_absorption_rate_ungated"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert not saebench.absorption_summary(fraction, full, letter, f1)["gate_passed"]


# ------------------------------------------------------------------ probes and main latents

def letters_and_latents(n=600, d_sae=12, seed=0):
    """Three classes; latent c fires exactly on class c, except class 2 which is split in two
    latents (2 on its even rows, 3 on its odd rows); the rest is noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    f = np.abs(rng.normal(0, 0.05, (n, d_sae))).astype(np.float32)
    for c in (0, 1):
        f[y == c, c] += 2.0
    rows = np.flatnonzero(y == 2)
    f[rows[::2], 2] += 2.0
    f[rows[1::2], 3] += 2.0
    return f, y


def test_probes_separate_separable_classes_and_l1_ranks_the_right_latents():
    f, y = letters_and_latents()
    W, b = saebench.train_probes(f[:400], np.eye(3, dtype=np.float32)[y[:400]], epochs=30)
    logits = f[400:] @ W.T + b
    for c in range(3):
        assert saebench.f1_at_zero(y[400:] == c, logits[:, c]) > 0.95
    ranking, _ = saebench.train_probes(f[:400], np.eye(3, dtype=np.float32)[y[:400]], l1=0.01,
                                       weight_decay=1e-6, batch_size=64)
    assert ranking[0].argmax() == 0 and ranking[1].argmax() == 1
    assert set(np.argsort(-ranking[2])[:2]) == {2, 3}


def test_main_latents_grow_while_f1_gains():
    f, y = letters_and_latents()
    ranking = np.zeros((3, f.shape[1]))
    ranking[0, [0, 5]] = [2, 1]
    ranking[1, [1, 6]] = [2, 1]
    ranking[2, [2, 3, 7]] = [3, 2, 1]
    mains, f1 = saebench.main_latents(f[:400], y[:400], f[400:], y[400:], ranking, max_k=4)
    assert [list(m) for m in mains] == [[0], [1], [2, 3]]
    assert f1[0, 0] == 1.0 and f1[2, 1] == 1.0 and f1[2, 0] < 0.9
    assert f1.shape == (3, 4)


def test_f1_at_zero():
    assert saebench.f1_at_zero([True, True, False], [1.0, -1.0, 1.0]) == pytest.approx(0.5)
    assert saebench.f1_at_zero([False, False], [-1.0, -1.0]) == 0.0


# ------------------------------------------------------------------ sparse probing

def test_topic_probing_finds_the_topic_column():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.array(["a", "b", "c", "d"]), 60)
    x = rng.normal(size=(len(labels), 20)).astype(np.float32)
    for i, name in enumerate("abcd"):
        x[labels == name, 10 + i] += 3.0        # one column per topic, far apart
    out = saebench.topic_probing({"sae": x, "raw": rng.normal(size=(len(labels), 5))}, labels)
    assert out["sae_top_1"] > 0.95 and out["sae_dense"] > 0.95
    assert out["raw_dense"] < 0.75                # noise: chance is 0.5
    assert set(out["per_class"]) == set("abcd")
    assert set(out) >= {"sae_top_1", "sae_top_2", "sae_top_5", "raw_top_1", "raw_dense"}


def test_balanced_task_and_mean_pool():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 10 + [1] * 30 + [2] * 30)
    rows = saebench.balanced_task(labels, 0, rng)
    assert np.sum(labels[rows] == 0) == 10 and len(rows) == 20 and len(set(rows)) == 20
    assert np.sum(labels[rows] == 1) == 5 and np.sum(labels[rows] == 2) == 5
    pooled = saebench.mean_pool(np.array([[1.0], [3.0], [5.0]]), np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(pooled[:, 0], [2.0, 0.0, 5.0])


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="n_words"):
        saebench.AbsorptionConfig(n_words=10)
    with pytest.raises(ValueError, match="train_fraction"):
        saebench.AbsorptionConfig(train_fraction=1.0)
    with pytest.raises(ValueError, match="min_letters"):
        saebench.AbsorptionConfig(min_letters=27)


# ------------------------------------------------------------------ on a model

@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(lm.minilm_path()))


@pytest.fixture(scope="module")
def bert(tokenizer):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=160)
    return transformers.BertModel(config).eval()


def test_words_are_whole_alphabetic_tokens(tokenizer):
    words = saebench.alphabetic_words(tokenizer)
    assert 20000 < len(words) < len(tokenizer)
    assert all(w.isalpha() and w.islower() and "#" not in w for w in words)
    assert "cat" in words and "[CLS]" not in words and "ing" in words and "##ing" not in words
    assert {w[0] for w in words} == set(saebench.LETTERS)


def test_prompts_read_the_word_token(tokenizer, bert):
    rng = np.random.default_rng(0)
    examples = ["apple", "banana", "cat", "dog", "egg"]
    prompt = saebench.first_letter_prompt("cat", examples, rng, n_examples=3)
    lines = prompt.split("\n")
    assert lines[0] == "" and lines[-1] == "cat has the first letter:" and len(lines) == 5
    assert all(line.endswith(": " + line[0].upper()) for line in lines[1:-1])
    assert "cat has the first letter: C" not in prompt
    words = ["zebra", "cat"]
    prompts = [saebench.first_letter_prompt(w, examples, rng, 3) for w in words]
    pos = saebench.word_positions(tokenizer, prompts, words)
    for p, w, i in zip(prompts, words, pos):
        ids = tokenizer(p)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids)[i] == w
        assert len(ids) - i == 7              # word, has, the, first, letter, :, [SEP]
    x = saebench.prompt_activations(bert, tokenizer, SITE, prompts, words, batch_size=1)
    enc = tokenizer(prompts[1], return_tensors="pt")
    want = lm.capture(bert, [SITE], enc["input_ids"], enc["attention_mask"])[SITE][0, pos[1]]
    np.testing.assert_allclose(x[1], want.numpy(), rtol=1e-5, atol=1e-6)


def exact_sae(d: int) -> tm.SAE:
    eye = np.eye(d, dtype=np.float32)
    return tm.SAE(tm.SAEConfig(d_in=d, d_sae=2 * d),
                  {"W_enc": np.hstack([eye, -eye]), "b_enc": np.zeros(2 * d, np.float32),
                   "W_dec": np.vstack([eye, -eye]), "b_dec": np.zeros(d, np.float32)},
                  {"hook_name": SITE})


def test_the_evaluation_runs_end_to_end(tokenizer, bert):
    config = saebench.AbsorptionConfig(n_words=300, batch_size=64)
    data = saebench.letter_data(bert, tokenizer, SITE, config)
    assert data.words_sampled == 300 and data.words_total > 20000
    assert data.x_train.shape == (240, 32) and data.x_test.shape == (60, 32)
    assert data.probe_W.shape == (26, 32) and data.probe_f1.shape == (26,)
    assert len(data.x_absorb) == len(data.y_absorb) <= 60
    out = saebench.first_letter_absorption(exact_sae(32), data, config)
    assert 0 <= out["letters_passing"] <= 26 and out["k_sparse_f1"].shape == (26, 10)
    assert all(1 <= len(m) <= 10 for m in out["main_latents"])
    for v in out["per_letter"].values():
        assert np.isnan(v["absorption_fraction"]) or 0 <= v["absorption_fraction"] <= 1
    rows, owner = saebench.pooled_activations(bert, tokenizer, SITE, lm.corpus()[:240])
    assert rows.shape[1] == 32 and owner.max() == 239
    assert len(rows) == sum(len(tokenizer(t, add_special_tokens=False)["input_ids"])
                            for t in lm.corpus()[:240])     # [CLS] and [SEP] are left out
    probing = saebench.sparse_probing(exact_sae(32), rows, owner, lm.corpus_topics()[:240])
    assert set(probing["per_class"]) == set(lm.corpus_topics()[:240])
    # the exact SAE's latents are ±x: its dense probe sees what the raw one sees
    assert probing["sae_dense"] == pytest.approx(probing["raw_dense"], abs=0.1)


def test_evaluate_saebench_flag(tokenizer, bert, tmp_path, capsys):
    bert.save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")
    main(["lm", "harvest", "--model", str(tmp_path / "bert"), "--site", SITE, "--limit", "200",
          "--out", str(tmp_path / "acts"), "--quiet"])
    main(["lm", "train-sae", str(tmp_path / "acts"), "--out", str(tmp_path / "sae"),
          "--expansion", "2", "--steps", "20", "--batch-size", "128", "--quiet"])
    capsys.readouterr()
    main(["lm", "evaluate", str(tmp_path / "sae"), "--skip", "200", "--limit", "10",
          "--saebench", "--saebench-words", "200", "--batch-size", "64", "--quiet", "--json"])
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])
    for key in ("absorption_fraction", "full_absorption_rate", "letters_passing",
                "probe_sae_top_1", "probe_sae_top_5", "probe_raw_dense", "fvu"):
        assert key in report
    assert report["saebench"]["words"] == [200, len(saebench.alphabetic_words(tokenizer))]
    assert len(report["saebench"]["per_topic"]) == 12
    main(["lm", "evaluate", str(tmp_path / "sae"), "--skip", "200", "--limit", "10",
          "--saebench", "--saebench-words", "200", "--batch-size", "64", "--quiet"])
    out = capsys.readouterr().out
    assert "letters have F1 > 0.6" in out and "a=" in out and "of 20" in out


def test_jit_and_vmap_of_the_score_agree_with_one_token():
    rng = np.random.default_rng(1)
    P = rng.uniform(0.1, 3, 16).astype(np.float32)
    f = np.abs(rng.normal(size=(16, 6))).astype(np.float32)
    cos = rng.uniform(-1, 1, (16, 6)).astype(np.float32)
    main = rng.random((16, 6)) < 0.3
    main[:, 0] = True
    fr, full = jax.jit(jax.vmap(saebench.token_absorption))(P, f, cos, main)
    for i in range(16):
        assert score(P[i], f[i], cos[i], main[i]) == pytest.approx((float(fr[i]), bool(full[i])))
