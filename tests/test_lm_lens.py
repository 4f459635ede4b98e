"""TransformerLens models as input: a HookedTransformer's own hook points harvested, spliced and
read by toymodels equal what TransformerLens computes (`run_with_cache`, `run_with_hooks`); and a
Hugging Face GPT-2 read through toymodels' site table, centred, equals the same GPT-2 converted to
TransformerLens with fold_ln and center_writing_weights.

Nothing is downloaded: the models are random (built from their configs), the tokenizer is trained
on the shipped corpus (tests/lm_models.py).
"""

import numpy as np
import pytest

from extras import require  # tests/extras.py

torch = require("torch", "lm")
transformers = require("transformers", "lm")
transformer_lens = require("transformer_lens", "interop")
from transformer_lens import HookedTransformer, HookedTransformerConfig  # noqa: E402
from transformer_lens.pretrained.weight_conversions.gpt2 import convert_gpt2_weights  # noqa: E402

import toymodels as tm  # noqa: E402
from toymodels import lm  # noqa: E402
from lm_models import tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = lm.corpus()[:7] + ["Short.", "A longer sentence, so that its batch has padding in it, "
                           "and then some more words at the end of it."]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    # From a folder: TransformerLens re-loads a tokenizer by its name_or_path.
    folder = tmp_path_factory.mktemp("tokenizer")
    tiny_tokenizer().save_pretrained(folder)
    return transformers.AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def hooked(tokenizer):
    torch.manual_seed(0)
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=64,
                                  n_ctx=128, d_vocab=len(tokenizer), act_fn="gelu_new",
                                  normalization_type="LN", model_name="tiny-hooked")
    model = HookedTransformer(cfg, tokenizer=tokenizer)
    return model.eval()


def _per_token_hooks(model, tokenizer):
    """Every hook point run_with_cache fills, but attention patterns and scores."""
    _, cache = model.run_with_cache(_ids(tokenizer, TEXTS[0]))
    return [n for n in cache.keys() if not n.endswith(("hook_pattern", "hook_attn_scores"))]


def _ids(tokenizer, text):
    return torch.tensor([tokenizer(text)["input_ids"]])


def _doc_rows(store, doc):
    sel = np.flatnonzero(store.doc_index == doc)
    return sel[np.argsort(store.position[sel])]


def test_harvest_equals_run_with_cache_at_every_hook(hooked, tokenizer, tmp_path):
    sites = _per_token_hooks(hooked, tokenizer)
    assert len(sites) > 30 and "blocks.1.attn.hook_z" in sites  # any hook point, not six kinds
    store = lm.harvest(hooked, sites=sites, texts=TEXTS, out=tmp_path / "acts", batch_size=4)
    assert store.manifest["architecture"] == "transformer_lens"
    assert store.manifest["model"] == "tiny-hooked"
    for doc, text in enumerate(TEXTS):
        ids = _ids(hooked.tokenizer, text)  # the model's own tokenizer (TransformerLens's BOS)
        _, cache = hooked.run_with_cache(ids)
        sel = _doc_rows(store, doc)
        np.testing.assert_array_equal(store.token_ids[sel], ids[0].numpy())
        for site in sites:
            want = cache[site][0].reshape(ids.shape[1], -1).numpy()
            got = store.select(site=site).read(sel)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=site)


def test_harvest_stops_after_the_last_site(hooked, tmp_path):
    ran = []
    later = hooked.hook_dict["blocks.1.hook_resid_pre"].register_forward_hook(
        lambda *_: ran.append(1))
    try:
        lm.harvest(hooked, sites=["blocks.0.attn.hook_z", "blocks.0.hook_resid_mid"],
                   texts=TEXTS[:3], out=tmp_path / "acts")
    finally:
        later.remove()
    assert ran == []  # block 1 never ran
    assert not any(hp._forward_hooks for hp in hooked.hook_dict.values())  # nothing left behind


def test_unknown_and_per_pair_sites_are_refused(hooked, tmp_path):
    with pytest.raises(ValueError, match="not a hook point.*closest: blocks.0.hook_resid_post"):
        lm.harvest(hooked, sites=["blocks.0.hook_resid_pots"], texts=TEXTS[:2], out=tmp_path / "a")
    with pytest.raises(ValueError, match="one value per \\(query, key\\) pair"):
        lm.harvest(hooked, sites=["blocks.0.attn.hook_pattern"], texts=TEXTS[:2],
                   out=tmp_path / "b")


def _sae(d_in, seed=0, site="blocks.1.hook_resid_pre"):
    rng = np.random.default_rng(seed)
    cfg = tm.SAEConfig(d_in=d_in, d_sae=3 * d_in)
    params = {"W_enc": rng.normal(size=(d_in, 3 * d_in)) / np.sqrt(d_in),
              "b_enc": np.zeros(3 * d_in), "W_dec": rng.normal(size=(3 * d_in, d_in)) * 0.3,
              "b_dec": np.zeros(d_in)}
    return tm.SAE(cfg, params, {"hook_name": site, "context_size": 128})


def test_splice_and_latents_equal_transformer_lens(hooked, tokenizer):
    site = "blocks.1.hook_resid_pre"
    sae = _sae(32, site=site)
    text = TEXTS[0]
    ids = _ids(tokenizer, text)

    def splice_hook(x, hook):  # TransformerLens's own way of splicing an SAE in
        return torch.from_numpy(np.asarray(sae(x[0].numpy())))[None]

    with torch.no_grad():
        want = hooked.run_with_hooks(ids, fwd_hooks=[(site, splice_hook)])
    with lm.intervention(hooked, site, lm.reconstruction(sae)):
        got = lm.model_outputs(hooked, ids, torch.ones_like(ids))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-4)

    report = lm.splice_effects(hooked, tokenizer, sae, [text])
    with torch.no_grad():
        ce_clean = float(hooked(ids, return_type="loss"))
        ce_spliced = float(hooked.run_with_hooks(ids, return_type="loss",
                                                 fwd_hooks=[(site, splice_hook)]))
    assert report["ce_clean"] == pytest.approx(ce_clean, rel=1e-5)
    assert report["ce_spliced"] == pytest.approx(ce_spliced, rel=1e-4)
    assert report["ce_spliced"] != pytest.approx(ce_clean, rel=1e-3)  # the splice did something

    _, cache = hooked.run_with_cache(ids)
    (latents,) = lm.text_latents(hooked, tokenizer, sae, [text])
    np.testing.assert_allclose(latents.feature_acts, np.asarray(sae.encode(cache[site][0].numpy())),
                               rtol=1e-5, atol=1e-5)
    table, acts = lm.contrast(hooked, tokenizer, sae, {"a": TEXTS[:4], "b": TEXTS[4:8]},
                              min_active=1)
    assert acts["a"].shape == (4, sae.d_sae)


# --- a Hugging Face GPT-2, and the same GPT-2 processed by TransformerLens --------------------

RESIDUAL_KINDS = ("hook_resid_pre", "hook_attn_out", "hook_resid_mid", "hook_mlp_out",
                  "hook_resid_post")


def test_hf_gpt2_centred_equals_transformer_lens_processed(tokenizer, tmp_path):
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
        bos_token_id=0, eos_token_id=0)).eval()
    with torch.no_grad():  # every weight random and O(1), LayerNorms' gains and biases too, so that
        for name, p in hf.named_parameters():  # folding and centring have something to do
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith(("ln_1.weight",
                    "ln_2.weight", "ln_f.weight")) else 0.0))
    cfg = HookedTransformerConfig(n_layers=2, d_model=32, d_head=8, n_heads=4, d_mlp=128,
                                  n_ctx=128, d_vocab=len(tokenizer), act_fn="gelu_new",
                                  normalization_type="LN", eps=hf.config.layer_norm_epsilon,
                                  original_architecture="GPT2LMHeadModel",
                                  default_prepend_bos=True, model_name="tiny-gpt2")
    hooked = HookedTransformer(cfg, tokenizer=tokenizer)
    # what HookedTransformer.from_pretrained("gpt2", fold_ln=True, center_writing_weights=True)
    # does, on local weights
    hooked.load_and_process_state_dict(convert_gpt2_weights(hf, cfg), fold_ln=True,
                                       center_writing_weights=True, center_unembed=True)
    hooked.eval()
    # promoted tokens read the same unembedding through either model (TransformerLens's
    # center_unembed shifts every logit of a direction by one constant: the order is the same)
    sae = _sae(32, seed=3)
    for latent in (0, 5):
        ours, theirs = (lm.promoted_tokens(m, tokenizer, sae, latent, k=8) for m in (hf, hooked))
        for key in ("promoted", "suppressed"):
            assert [t for t, _ in ours[key]] == [t for t, _ in theirs[key]], key
            gaps = [np.diff([v for _, v in side[key]]) for side in (ours, theirs)]
            np.testing.assert_allclose(gaps[0], gaps[1], rtol=1e-4, atol=1e-4)
    sites = [f"blocks.{layer}.{kind}" for layer in range(2) for kind in RESIDUAL_KINDS]
    ours = lm.harvest((hf, tokenizer), sites=sites, texts=TEXTS, out=tmp_path / "hf",
                      prepend_bos=True, batch_size=4)
    theirs = lm.harvest(hooked, sites=sites, texts=TEXTS, out=tmp_path / "tl",
                        prepend_bos=True, batch_size=4)
    np.testing.assert_array_equal(ours.token_ids, theirs.token_ids)
    for site in sites:
        x_hf, x_tl = ours.select(site=site).read(np.arange(len(ours))), \
            theirs.select(site=site).read(np.arange(len(theirs)))
        assert np.abs(x_hf - x_tl).max() > 0.1, site  # the raw streams differ …
        np.testing.assert_allclose(lm.centred(x_hf), x_tl, rtol=0, atol=1e-4,
                                   err_msg=site)  # … by each token's mean over d_model


def test_an_sae_trained_on_centred_weights_reads_a_raw_model_centred(hooked, tokenizer):
    # gpt2-small-res-jb's metadata: model_from_pretrained_kwargs {center_writing_weights: true}
    centring = _sae(32, site="blocks.1.hook_resid_pre")
    centring = tm.SAE(centring.config, centring.params, centring.metadata | {
        "model_from_pretrained_kwargs": {"center_writing_weights": True}})
    x = np.random.default_rng(0).normal(loc=0.7, size=(5, 32)).astype(np.float32)
    np.testing.assert_allclose(lm.encode_rows(centring, x),
                               np.asarray(centring.encode(x - x.mean(-1, keepdims=True))),
                               rtol=1e-6, atol=1e-6)
    assert not np.allclose(lm.encode_rows(centring, x), np.asarray(centring.encode(x)))
    # the splice's metrics compare x̂ with x as the SAE reads it
    report = lm.splice_effects(hooked, tokenizer, centring, TEXTS[:2])
    plain = lm.splice_effects(hooked, tokenizer, _sae(32), TEXTS[:2])
    assert report["fvu"] != pytest.approx(plain["fvu"])
