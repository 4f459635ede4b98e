"""The shipped texts, and that `import toymodels` (and reading a store) never imports PyTorch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toymodels import lm

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_corpus_is_what_the_generator_makes():
    texts, topics = lm.generate_corpus()
    assert lm.corpus() == texts and lm.corpus_topics() == topics
    assert len(set(texts)) == 4000 and len(set(topics)) == 12
    assert lm.corpus_path().read_text(encoding="utf-8").count("\n") == 4000


def test_contrast_prompt_sets():
    sets = lm.prompts()
    assert sorted(sets) == ["angry", "happy", "neutral"]
    assert {len(v) for v in sets.values()} == {48}
    assert len({t for v in sets.values() for t in v}) == 3 * 48
    assert lm.prompts("happy") == sets["happy"]
    with pytest.raises(ValueError, match="sad"):
        lm.prompts("sad")


def test_importing_toymodels_does_not_import_torch():
    code = ("import sys, toymodels, toymodels.cli; from toymodels import lm; "
            "lm.ActivationStore; lm.parse_site('blocks.0.hook_resid_pre'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_site_names():
    site = lm.parse_site("blocks.11.mlp.hook_in")
    assert (site.layer, site.kind, site.name) == (11, "mlp.hook_in", "blocks.11.mlp.hook_in")
    assert sorted(map(lm.parse_site, ["blocks.1.hook_resid_pre", "blocks.0.hook_resid_post",
                                      "blocks.1.hook_attn_out"])) == [
        lm.parse_site(s) for s in ["blocks.0.hook_resid_post", "blocks.1.hook_resid_pre",
                                   "blocks.1.hook_attn_out"]]
    for bad in ["blocks.-1.hook_resid_pre", "blocks.1.hook_resid", "block.1.hook_resid_pre", 3]:
        with pytest.raises(ValueError, match="not one of the forms"):
            lm.parse_site(bad)
    with pytest.raises(ValueError, match="layer 6 is outside 0 … 5"):
        lm.parse_site("blocks.6.hook_resid_pre", n_layers=6)
