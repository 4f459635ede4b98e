"""SAELens's activation cache, both ways: a toymodels store exported as SAELens's cached-activation
dataset reads back through SAELens's own ActivationsStore row for row, and SAELens trains an SAE
on it; a cache SAELens's own CacheActivationsRunner writes opens as toymodels training data, equal
to the model's activations, and tm.sweep trains on it.

The model is a random HookedTransformer (no download); SAELens's runners take it as
override_model (the trainer) or through its model loader (the cache runner, which has no override).
"""

import json

import numpy as np
import pytest

from extras import require  # tests/extras.py

torch = require("torch", "lm")
transformers = require("transformers", "lm")
sae_lens = require("sae_lens", "interop")
datasets = require("datasets", "interop")
from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from toymodels.lm import saelens_cache  # noqa: E402
from lm_models import tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SITE, CTX = "blocks.0.hook_resid_post", 8


@pytest.fixture(scope="module")
def hooked(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer().save_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64,
                                  n_ctx=128, d_vocab=len(tokenizer), act_fn="gelu_new",
                                  normalization_type="LN", model_name="tiny")
    return HookedTransformer(cfg, tokenizer=tokenizer).eval()


@pytest.fixture(scope="module")
def store(hooked, tmp_path_factory):
    return lm.harvest(hooked, sites=[SITE], texts=lm.corpus()[:40],
                      out=tmp_path_factory.mktemp("acts"))


def _saelens_store(path, batch_prompts=4):
    from sae_lens.training.activations_store import ActivationsStore

    return ActivationsStore(
        model=None, dataset=None, streaming=False, hook_name=SITE, hook_head_index=None,
        context_size=CTX, d_in=32, n_batches_in_buffer=2, total_training_tokens=10_000,
        store_batch_size_prompts=batch_prompts, train_batch_size_tokens=32, prepend_bos=False,
        normalize_activations="none", device="cpu", dtype="float32",
        cached_activations_path=str(path))


def test_export_reads_back_through_saelens_loader(store, tmp_path):
    out = saelens_cache.export(store, tmp_path / "cache", context_size=CTX, rows_per_file=7)
    n = len(store) // CTX
    assert len(list(out.glob("data-*.arrow"))) == -(-n // 7)  # written a file at a time
    theirs = _saelens_store(out)
    rows = store.read(np.arange(n * CTX))
    got_acts, got_ids = [], []
    while True:
        try:
            acts, ids = theirs.get_raw_llm_batch(raise_on_epoch_end=True)
        except StopIteration:
            break
        got_acts.append(acts.numpy())
        got_ids.append(ids.numpy())
    acts, ids = np.concatenate(got_acts), np.concatenate(got_ids)
    seen = len(acts)  # SAELens reads whole batches of 4 contexts
    assert seen == (n // 4) * 4 * CTX and seen > 0
    np.testing.assert_array_equal(acts, rows[:seen])
    np.testing.assert_array_equal(ids, store.token_ids[:seen])


def test_saelens_trains_on_an_exported_store(hooked, store, tmp_path):
    from sae_lens import (LanguageModelSAERunnerConfig, LanguageModelSAETrainingRunner,
                          LoggingConfig, StandardTrainingSAEConfig)

    out = saelens_cache.export(store, tmp_path / "cache", context_size=CTX)
    cfg = LanguageModelSAERunnerConfig(
        sae=StandardTrainingSAEConfig(d_in=32, d_sae=64), model_name="tiny", hook_name=SITE,
        dataset_path="unused", use_cached_activations=True, cached_activations_path=str(out),
        context_size=CTX, training_tokens=32 * 20, train_batch_size_tokens=32,
        store_batch_size_prompts=8, n_batches_in_buffer=4, device="cpu", n_checkpoints=0,
        logger=LoggingConfig(log_to_wandb=False), output_path=str(tmp_path / "out"),
        n_eval_batches=0, prepend_bos=False, verbose=False)
    # SAELens wants a tokenised dataset even when it reads a cache; it never reads this one.
    unused = datasets.Dataset.from_dict({"input_ids": [[0] * CTX] * 4})
    runner = LanguageModelSAETrainingRunner(cfg, override_model=hooked, override_dataset=unused)
    before = runner.sae.W_enc.detach().clone()
    sae = runner.run()
    assert not torch.allclose(sae.W_enc.detach(), before)  # it trained on the exported rows
    assert (tmp_path / "out").exists()


def test_saelens_cache_trains_toymodels(hooked, tmp_path, monkeypatch):
    import sae_lens.cache_activations_runner as runner_module
    from sae_lens import CacheActivationsRunner, CacheActivationsRunnerConfig

    tokenizer = hooked.tokenizer
    flat = [t for text in lm.corpus()[:60] for t in tokenizer(text)["input_ids"]]
    contexts = [flat[i:i + CTX] for i in range(0, len(flat) - CTX + 1, CTX)][:64]
    monkeypatch.setattr(runner_module, "load_model", lambda **_: hooked)  # no download
    cfg = CacheActivationsRunnerConfig(
        dataset_path="unused", model_name="tiny", model_batch_size=8, hook_name=SITE, d_in=32,
        training_tokens=64 * CTX, context_size=CTX, new_cached_activations_path=str(tmp_path / "c"),
        shuffle=False, device="cpu", prepend_bos=False, streaming=False,
        buffer_size_gb=32 * CTX * 32 * 4 / 1e9)  # two buffers of 32 contexts: two shards
    CacheActivationsRunner(cfg, override_dataset=datasets.Dataset.from_dict(
        {"input_ids": contexts})).run()

    cache = saelens_cache.SAELensCache(tmp_path / "c")
    assert (cache.hook_name, cache.context_size, cache.d_in, len(cache)) == (SITE, CTX, 32, 512)
    _, ref = hooked.run_with_cache(torch.tensor(contexts))
    want = ref[SITE].reshape(-1, 32).numpy()
    np.testing.assert_allclose(np.concatenate(list(cache.chunks(100))), want, rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_array_equal(cache.token_ids, np.array(contexts).reshape(-1))

    # every token once per epoch, shuffled, through a buffer smaller than the cache
    epoch = np.concatenate([b for _, b in zip(range(8), cache.batches(64, seed=1,
                                                                          shuffle_buffer=100))])
    assert not np.array_equal(epoch, want)
    np.testing.assert_array_equal(np.sort(epoch, axis=0), np.sort(want, axis=0))

    ds = tm.sweep(tm.SAEConfig(d_in=32, d_sae=64), {"seed": [0]},
                  tm.TrainConfig(steps=40, batch_size=64, log_every=20), data=cache,
                  progress=False)
    loss = ds["loss_history"].values.reshape(-1)
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    assert json.loads(ds.attrs["data"])["format"] == saelens_cache.FORMAT  # the sweep's record


def test_export_refuses_what_saelens_cannot_hold(store, tmp_path):
    with pytest.raises(ValueError, match="fewer than one context"):
        saelens_cache.export(store, tmp_path / "a", context_size=len(store) + 1)
    with pytest.raises(ValueError, match="dtype must be one of"):
        saelens_cache.export(store, tmp_path / "b", context_size=CTX, dtype="int8")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("")
    with pytest.raises(ValueError, match="is not empty"):
        saelens_cache.export(store, tmp_path / "c", context_size=CTX)
