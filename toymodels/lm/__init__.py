"""Real language models: harvest their activations at TransformerLens-style sites into an on-disk
store, read it back as shuffled batches for the SAE trainer, splice the trained SAEs back into the
model, and find what their latents mean.

    from toymodels import lm
    store = lm.harvest("all-MiniLM-L6-v2", sites=["blocks.3.hook_resid_post"],
                       texts=lm.corpus_path(), out="acts/minilm")
    store = lm.ActivationStore("acts/minilm")       # len(store) tokens, store.d_in
    x = next(store.batches(4096, seed=0))           # (4096, 384) float32

    sae = lm.sae_from_sweep(tm.sweep(tm.SAEConfig(d_in=384, d_sae=3072), {...}, train, data=store))
    lm.splice_effects(model, tokenizer, sae, texts)  # FVU, L0 … and the spliced embedding cosine
    table, acts = lm.contrast(model, tokenizer, sae, lm.prompts())   # latents that separate sets

Modules: `sites` (site names, one table per architecture), `hooks` (reading sites), `harvesting`,
`store` (the on-disk store), `texts` (shipped corpus and prompts), `models` (loading), `saes`
(an SAE's model and site, encoding rows), `splice` (editing sites: splices, ablations, steering,
and their downstream metrics), `features` (what latents mean), `saebench` (SAEBench's
first-letter absorption and k-sparse probing), `lens` (TransformerLens models as
input: their own hook points), `saelens_cache` (SAELens's cached-activation datasets, both ways),
`cli`.

Needs the `lm` extra (PyTorch, transformers, safetensors). Reading a store needs only NumPy, so
this package imports PyTorch lazily: `harvest`, `capture`, `encode` and everything of `splice`
and `features` load it on first use, and `ActivationStore` never does (a JAX training process
pays nothing for it).
"""

from toymodels.lm.models import MINILM_NAMES, load_model, minilm_path, resolve_model
from toymodels.lm.saelens_cache import SAELensCache
from toymodels.lm.saelens_cache import export as export_saelens_cache
from toymodels.lm.saes import centred, decode_rows, encode_rows, sae_from_sweep, sae_site
from toymodels.lm.sites import ARCHITECTURES, KINDS, Site, architecture_of, parse_site, site_table
from toymodels.lm.store import ActivationStore
from toymodels.lm.texts import corpus, corpus_path, corpus_topics, generate_corpus, prompts

# name -> module, imported on first use (they import torch)
_LAZY = {"harvest": "toymodels.lm.harvesting", "encode": "toymodels.lm.harvesting",
         "capture": "toymodels.lm.hooks"}
_LAZY |= {name: "toymodels.lm.splice" for name in (
    "Effects", "intervention", "intervention_effects", "latent_ablation", "model_outputs",
    "output_kind", "reconstruction", "sentence_embedding", "splice_effects", "steering",
    "zero_ablation")}
_LAZY |= {name: "toymodels.lm.features" for name in (
    "Context", "LatentStats", "TextLatents", "contrast", "contrast_latents", "format_contexts",
    "latent_stats", "max_activating_contexts", "per_prompt", "promoted_tokens", "text_latents",
    "top_latents")}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'toymodels.lm' has no attribute {name!r}")


__all__ = [
    "ARCHITECTURES", "KINDS", "MINILM_NAMES", "ActivationStore", "SAELensCache", "Site",
    "architecture_of", "export_saelens_cache",
    "capture", "centred", "corpus", "corpus_path", "corpus_topics", "decode_rows", "encode",
    "encode_rows", "generate_corpus", "harvest", "load_model", "minilm_path", "parse_site",
    "prompts", "resolve_model", "sae_from_sweep", "sae_site", "site_table",
    *sorted(n for n, m in _LAZY.items() if m in ("toymodels.lm.splice", "toymodels.lm.features")),
]
