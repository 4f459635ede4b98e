"""Harvesting real models: sites read the right tensors, padding never reaches the store, the
forward pass stops early, killed harvests resume to the same bytes, split harvests join."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from toymodels import lm  # noqa: E402
from toymodels.cli import main  # noqa: E402
from toymodels.lm.store import ActivationStore  # noqa: E402
from lm_models import tiny_model, tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parent.parent
TEXTS = lm.corpus()[:36] + [
    "A much longer sentence, written so that this batch has real padding in it: the quick brown "
    "fox jumps over the lazy dog while the band plays on and on.",
    "Short.",
    "",
    "Numbers like 3.14159 and 2026 tokenise into several pieces.",
]


# ------------------------------------------------------------------------------------- the models

@pytest.fixture(scope="module")
def minilm():
    return lm.load_model("all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory, tokenizer):
    """A randomly initialised 3-block GPT-2 (d_model 32) and its tokenizer, saved as a folder."""
    folder = tmp_path_factory.mktemp("tiny-gpt2")
    tiny_model("gpt2", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def rows_of(store, doc):
    sel = np.flatnonzero(store.doc_index == doc)
    return sel[np.argsort(store.position[sel])]


# --------------------------------------------------------------------------------- MiniLM (BERT)

def test_minilm_resid_post_is_hidden_states(minilm, tmp_path):
    model, tok = minilm
    sites = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_post", "blocks.4.hook_resid_post"]
    store = lm.harvest(minilm, sites, TEXTS, tmp_path / "acts", batch_size=8, progress=False)
    lengths = [len(tok(t)["input_ids"]) for t in TEXTS]
    assert len(store) == sum(lengths)                       # = the padded batches' mask sums
    for doc, text in enumerate(TEXTS):
        enc = tok(text, return_tensors="pt")                # alone: no padding at all
        with torch.no_grad():
            hidden = model(**enc, output_hidden_states=True).hidden_states
        rows = rows_of(store, doc)
        np.testing.assert_array_equal(store.token_ids[rows], enc["input_ids"][0].numpy())
        np.testing.assert_array_equal(store.position[rows], np.arange(lengths[doc]))
        for site, h in [(sites[0], hidden[0]), (sites[1], hidden[2]), (sites[2], hidden[5])]:
            np.testing.assert_allclose(store.select(site=site).read(rows), h[0].numpy(),
                                       atol=2e-5, rtol=1e-4, err_msg=f"{site}, text {doc}")


def test_minilm_special_tokens_dropped_on_request(minilm, tmp_path):
    _, tok = minilm
    store = lm.harvest(minilm, ["blocks.2.hook_resid_post"], TEXTS, tmp_path / "acts",
                       batch_size=8, drop_special_tokens=True, progress=False)
    assert len(store) == sum(len(tok(t)["input_ids"]) - 2 for t in TEXTS)
    assert not np.isin(store.token_ids, tok.all_special_ids).any()
    assert store.position.min() == 1                        # [CLS] was position 0


def test_early_stop_skips_later_blocks(minilm):
    model, tok = minilm
    calls = {"layer 2": 0, "layer 5": 0, "pooler": 0}
    handles = [m.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
               for k, m in [("layer 2", model.encoder.layer[2]), ("layer 5", model.encoder.layer[5]),
                            ("pooler", model.pooler)]]
    enc = tok(TEXTS[:4], padding=True, return_tensors="pt")
    try:
        lm.capture(model, ["blocks.1.hook_resid_post"], enc["input_ids"], enc["attention_mask"])
        assert calls == {"layer 2": 0, "layer 5": 0, "pooler": 0}
        lm.capture(model, ["blocks.1.hook_resid_post"], enc["input_ids"], enc["attention_mask"],
                   stop=False)
        assert calls == {"layer 2": 1, "layer 5": 1, "pooler": 1}
    finally:
        for h in handles:
            h.remove()


def count_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_hooks_are_removed_even_when_the_forward_fails(minilm):
    model, tok = minilm
    before = count_hooks(model)
    enc = tok(TEXTS[:2], padding=True, return_tensors="pt")
    lm.capture(model, ["blocks.0.hook_resid_pre", "blocks.3.mlp.hook_in"], enc["input_ids"])
    assert count_hooks(model) == before
    bad = enc["input_ids"].clone()
    bad[0, 1] = 10**6                                      # outside the vocabulary
    with pytest.raises(IndexError):
        lm.capture(model, ["blocks.3.hook_resid_post"], bad)
    assert count_hooks(model) == before


# ------------------------------------------------------------------- every architecture's table

def block_of(model, kind, layer):
    return model.encoder.layer[layer] if kind in ("bert", "roberta") else (
        model.h[layer] if kind == "gpt2" else model.layers[layer])


@pytest.mark.parametrize("kind", ["bert", "roberta", "gpt2", "llama", "qwen2", "mistral"])
def test_sites_read_the_tensors_the_block_computes(kind, tokenizer):
    model = tiny_model(kind, len(tokenizer))
    assert lm.architecture_of(model).name == {"roberta": "bert", "qwen2": "llama",
                                               "mistral": "llama"}.get(kind, kind)
    enc = lm.encode(tokenizer, TEXTS[30:38], max_length=64)
    names = [f"blocks.1.{k}" for k in lm.KINDS]
    got = {n.split(".", 2)[2]: v for n, v in
           lm.capture(model, names, enc.input_ids, enc.attention_mask).items()}
    with torch.no_grad():
        hidden = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                       output_hidden_states=True).hidden_states
    real = enc.attention_mask.bool()

    def close(a, b):
        torch.testing.assert_close(a[real], b[real], atol=2e-5, rtol=1e-4)

    block = block_of(model, kind, 1)
    pre, attn, mid, mlp_in, mlp_out, post = (got[k] for k in lm.KINDS)
    close(pre, hidden[1])
    close(post, hidden[2])
    with torch.no_grad():
        if kind in ("bert", "roberta"):                     # post-LN
            close(mid, block.attention.output.LayerNorm(attn + pre))
            close(mlp_in, mid)
            close(mlp_out, block.output.dense(block.intermediate(mlp_in)))
            close(post, block.output.LayerNorm(mlp_out + mlp_in))
        else:                                               # pre-LN
            ln2 = block.ln_2 if kind == "gpt2" else block.post_attention_layernorm
            close(mid, pre + attn)
            close(mlp_in, ln2(mid))
            close(mlp_out, block.mlp(mlp_in))
            close(post, mid + mlp_out)


# ------------------------------------------------------------------------------- GPT-2, by hand

def gpt2_by_hand(model, ids):
    """Every site of every block for one unpadded sequence, computed from the weights."""
    T = len(ids)
    x = model.wte(ids) + model.wpe(torch.arange(T))
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    out = {}
    for layer, block in enumerate(model.h):
        d, heads = x.shape[-1], block.attn.num_heads
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(d, dim=-1)
        q, k, v = (t.view(T, heads, d // heads).transpose(0, 1) for t in (q, k, v))
        scores = (q @ k.transpose(-1, -2) / (d // heads) ** 0.5).masked_fill(causal, -torch.inf)
        attn_out = block.attn.c_proj((scores.softmax(-1) @ v).transpose(0, 1).reshape(T, d))
        mid = x + attn_out
        mlp_in = block.ln_2(mid)
        mlp_out = block.mlp(mlp_in)
        post = mid + mlp_out
        for kind, t in zip(lm.KINDS, (x, attn_out, mid, mlp_in, mlp_out, post)):
            out[f"blocks.{layer}.{kind}"] = t
        x = post
    return out


def test_gpt2_harvest_matches_a_computation_by_hand(gpt2_folder, tokenizer, tmp_path):
    sites = [f"blocks.{l}.{k}" for l in (0, 2) for k in lm.KINDS]
    store = lm.harvest(gpt2_folder, sites, TEXTS, tmp_path / "acts", batch_size=8,
                       progress=False)
    model, _ = lm.load_model(gpt2_folder)
    lengths = [len(tokenizer(t)["input_ids"]) for t in TEXTS]
    assert len(store) == sum(lengths) and lengths[TEXTS.index("")] == 0
    for doc, text in enumerate(TEXTS):
        ids = torch.tensor(tokenizer(text)["input_ids"], dtype=torch.long)
        if not len(ids):
            assert len(rows_of(store, doc)) == 0
            continue
        with torch.no_grad():
            want = gpt2_by_hand(model, ids)
            hidden = model(input_ids=ids[None], output_hidden_states=True).hidden_states
        rows = rows_of(store, doc)
        np.testing.assert_array_equal(store.token_ids[rows], ids.numpy())
        for site in sites:
            np.testing.assert_allclose(store.select(site=site).read(rows), want[site].numpy(),
                                       atol=2e-5, rtol=1e-4, err_msg=f"{site}, text {doc}")
        np.testing.assert_allclose(want["blocks.0.hook_resid_post"], hidden[1][0], atol=2e-5)
        # the model's last hidden state has ln_f applied: it is not the last block's resid_post
        last = want["blocks.2.hook_resid_post"]
        assert not np.allclose(last, hidden[3][0], atol=1e-2)
        with torch.no_grad():
            np.testing.assert_allclose(model.ln_f(last), hidden[3][0], atol=2e-5)


def test_prepend_bos(gpt2_folder, tokenizer, tmp_path):
    store = lm.harvest(gpt2_folder, ["blocks.0.hook_resid_post"], TEXTS[:5], tmp_path / "a",
                       prepend_bos=True, progress=False)
    assert len(store) == sum(len(tokenizer(t)["input_ids"]) + 1 for t in TEXTS[:5])
    assert (store.token_ids[store.position == 0] == tokenizer.bos_token_id).all()
    dropped = lm.harvest(gpt2_folder, ["blocks.0.hook_resid_post"], TEXTS[:5], tmp_path / "b",
                         prepend_bos=True, drop_special_tokens=True, progress=False)
    assert len(dropped) == len(store) - 5


def test_model_forms_and_text_files(gpt2_folder, tokenizer, tmp_path):
    """A folder, a (model, tokenizer) pair, a model with tokenizer=, a weights-only folder with a
    tokenizer folder, and texts from a file or a list: the same rows."""
    weights_only = tmp_path / "weights"
    model = lm.load_model(gpt2_folder)[0]
    model.save_pretrained(weights_only)
    texts = TEXTS[:6] + ["a line with a\rcarriage return inside"]
    file = tmp_path / "texts.txt"
    file.write_bytes(("\n".join(texts)).encode())          # no final newline
    site = ["blocks.1.hook_resid_post"]
    stores = [lm.harvest(m, site, t, tmp_path / f"s{k}", progress=False, **kw) for k, (m, t, kw) in
              enumerate([(gpt2_folder, file, {}), ((model, tokenizer), texts, {}),
                         (model, texts, {"tokenizer": tokenizer}),
                         (weights_only, texts, {"tokenizer": str(gpt2_folder)})])]
    assert stores[0].doc_index.max() == len(texts) - 1
    for store in stores[1:]:
        np.testing.assert_array_equal(store.token_ids, stores[0].token_ids)
        np.testing.assert_array_equal(store.read(np.arange(len(store))),
                                      stores[0].read(np.arange(len(store))))
    assert stores[0].manifest["texts"]["sha256"] == stores[1].manifest["texts"]["sha256"]


# ----------------------------------------------------------------------------- splitting, resume

def test_split_harvest_parts_join_to_the_whole(gpt2_folder, tmp_path):
    site = ["blocks.1.hook_resid_post"]
    whole = lm.harvest(gpt2_folder, site, TEXTS, tmp_path / "whole", batch_size=4,
                       tokens_per_shard=50, progress=False)
    for i in (2, 0):
        part = lm.harvest(gpt2_folder, site, TEXTS, tmp_path / "split", batch_size=4,
                          shard=f"{i}/3", tokens_per_shard=50, progress=False)
        assert set(np.unique(part.doc_index // 4) % 3) == {i}  # every 3rd batch from batch i
    with pytest.raises(ValueError, match=r"lacks part\(s\) \[1\] of 3"):
        ActivationStore(tmp_path / "split")
    lm.harvest(gpt2_folder, site, TEXTS, tmp_path / "split", batch_size=4, shard=(1, 3),
               tokens_per_shard=50, progress=False)
    split = ActivationStore(tmp_path / "split")
    assert len(split) == len(whole)

    def by_token(store):
        order = np.lexsort((store.position, store.doc_index))
        return (store.doc_index[order], store.position[order], store.token_ids[order],
                store.read(order))
    for a, b in zip(by_token(whole), by_token(split)):
        np.testing.assert_array_equal(a, b)


KILLED = textwrap.dedent("""
    import sys, time
    import torch
    from toymodels import lm
    torch.set_num_threads(1)
    texts = open(sys.argv[2], encoding="utf-8").read().splitlines()

    def slowly():
        for t in texts:
            time.sleep(0.004)
            yield t
    lm.harvest(sys.argv[1], ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_in"], slowly(),
               sys.argv[3], batch_size=8, tokens_per_shard=200, progress=False)
""")


def test_killed_harvest_resumes_to_the_same_bytes(gpt2_folder, tmp_path):
    texts = lm.corpus()[:480]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (tmp_path / "run.py").write_text(KILLED)
    out = tmp_path / "killed"
    manifest = out / "manifest.json"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(gpt2_folder),
                             str(tmp_path / "texts.txt"), str(out)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (
                manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 3):
            assert proc.poll() is None, "the harvest ended before it could be killed"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    killed = json.loads(manifest.read_text())
    assert not killed["complete"] and 3 <= len(killed["shards"])
    assert killed["texts"]["count"] < len(texts)
    with pytest.raises(ValueError, match="unfinished"):
        ActivationStore(out)
    assert len(ActivationStore(out, partial=True, site="blocks.0.hook_resid_post")) == killed["tokens"]
    mtimes = {s["file"]: (out / s["file"]).stat().st_mtime_ns for s in killed["shards"]}

    sites = ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_in"]
    kw = dict(batch_size=8, tokens_per_shard=200, progress=False)
    resumed = lm.harvest(gpt2_folder, sites, tmp_path / "texts.txt", out, **kw)
    fresh = lm.harvest(gpt2_folder, sites, texts, tmp_path / "fresh", **kw)
    for name, mtime in mtimes.items():                      # finished shards were kept, not redone
        assert (out / name).stat().st_mtime_ns == mtime
    assert resumed.manifest["shards"] == fresh.manifest["shards"]   # names, sizes, SHA-256s
    for key in ("count", "sha256"):
        assert resumed.manifest["texts"][key] == fresh.manifest["texts"][key]
    for s in sites:
        np.testing.assert_array_equal(np.concatenate(list(resumed.select(site=s).chunks())),
                                      np.concatenate(list(fresh.select(site=s).chunks())))

    shard = out / "shard-00002.safetensors"                 # then truncate one by hand
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(ValueError, match="shard-00002.safetensors"):
        ActivationStore(out)


def test_resume_refuses_other_texts_or_settings(gpt2_folder, tmp_path):
    site = ["blocks.0.hook_resid_post"]
    out = tmp_path / "acts"
    first = lm.harvest(gpt2_folder, site, TEXTS[:20], out, batch_size=4, progress=False)
    mtime = (out / "manifest.json").stat().st_mtime_ns
    again = lm.harvest(gpt2_folder, site, TEXTS[:20], out, batch_size=4, progress=False)
    assert len(again) == len(first) and (out / "manifest.json").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="differ from the first 20 texts"):
        lm.harvest(gpt2_folder, site, TEXTS[1:21], out, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="more than the 20"):
        lm.harvest(gpt2_folder, site, TEXTS[:21], out, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="different harvest.*settings"):
        lm.harvest(gpt2_folder, site, TEXTS[:20], out, batch_size=5, progress=False)
    with pytest.raises(ValueError, match="different harvest.*sites"):
        lm.harvest(gpt2_folder, ["blocks.1.hook_resid_post"], TEXTS[:20], out, batch_size=4,
                   progress=False)


# ----------------------------------------------------------------------------- bad input, the CLI

@pytest.mark.parametrize("site, message", [
    ("blocks.3.resid_post", "blocks.3.resid_post.*not one of the forms"),
    ("blocks.x.hook_resid_pre", "blocks.x.hook_resid_pre"),
    ("hook_resid_pre", "hook_resid_pre.*blocks.{layer}.hook_resid_pre"),
    ("blocks.3.hook_resid_post", r"layer 3 is outside 0 … 2"),
])
def test_bad_sites_are_named(gpt2_folder, tmp_path, site, message):
    with pytest.raises(ValueError, match=message):
        lm.harvest(gpt2_folder, [site], TEXTS[:2], tmp_path, progress=False)


@pytest.mark.parametrize("kwargs, field", [
    ({"batch_size": 0}, "batch_size"), ({"max_length": 0}, "max_length"),
    ({"max_length": 161}, "max_length=161 is more than the model's 160 positions"),
    ({"tokens_per_shard": -1}, "tokens_per_shard"), ({"dtype": "int8"}, "dtype"),
    ({"shard": "3/2"}, "shard"), ({"shard": "a/b"}, "shard"),
    ({"sites": []}, "sites"), ({"sites": ["blocks.0.mlp.hook_in"] * 2}, "given more than once"),
    ({"texts": "no/such/file.txt"}, "no such file"), ({"texts": [1, 2]}, r"texts\[0\] is 'int'"),
])
def test_bad_arguments_are_named(gpt2_folder, tmp_path, kwargs, field):
    args = {"sites": ["blocks.0.hook_resid_post"], "texts": TEXTS[:2], **kwargs}
    with pytest.raises(ValueError, match=field):
        lm.harvest(gpt2_folder, args.pop("sites"), args.pop("texts"), tmp_path / "o",
                   progress=False, **args)


def test_float16_store(gpt2_folder, tmp_path):
    site = ["blocks.2.hook_resid_post"]
    full = lm.harvest(gpt2_folder, site, TEXTS[:8], tmp_path / "a", progress=False)
    half = lm.harvest(gpt2_folder, site, TEXTS[:8], tmp_path / "b", dtype="float16", progress=False)
    x, y = full.read(np.arange(len(full))), half.read(np.arange(len(half)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x, rtol=2e-3, atol=2e-3)


def test_cli_harvest_and_info(gpt2_folder, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS[:10]) + "\n", encoding="utf-8")
    out = tmp_path / "acts"
    main(["lm", "harvest", "--model", str(gpt2_folder), "--site", "blocks.0.hook_resid_post",
          "--site", "blocks.1.hook_mlp_out,blocks.1.hook_attn_out", "--texts", str(texts),
          "--out", str(out), "--batch-size", "3", "--quiet"])
    store = ActivationStore(out)
    assert store.sites == ("blocks.0.hook_resid_post", "blocks.1.hook_mlp_out",
                           "blocks.1.hook_attn_out")
    assert f"{len(store)} tokens" in capsys.readouterr().out
    main(["lm", "info", str(out)])
    printed = capsys.readouterr().out
    assert "blocks.1.hook_mlp_out  d=32" in printed and "gpt2" in printed
    with pytest.raises(SystemExit) as exit_:
        main(["lm", "harvest", "--model", str(gpt2_folder), "--site", "blocks.9.hook_resid_pre",
              "--texts", str(texts), "--out", str(tmp_path / "x"), "--quiet"])
    assert exit_.value.code == 2
    assert "blocks.9.hook_resid_pre" in capsys.readouterr().err
