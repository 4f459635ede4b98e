"""`toymodels lm top-features | contrast --sae RELEASE:SAE_ID`: a pretrained SAELens release by name,
its files from a local Hugging Face cache the test writes (HF_HUB_OFFLINE=1), read into a tiny
random GPT-2 saved as a folder (no download). The commands print what the Python API computes."""

import json
from pathlib import Path

import pytest

from extras import require  # tests/extras.py
from hub_cache import pre6_release_files, run_offline, snapshot  # tests/hub_cache.py

require("torch", "lm")
require("sae_lens", "interop")
require("transformer_lens", "interop")

from lm_models import tiny_model, tiny_tokenizer  # noqa: E402  (tests/lm_models.py)

RELEASE, SAE_ID = "gpt2-small-res-jb", "blocks.1.hook_resid_pre"
PROMPT = "I was thrilled when the train arrived early in Paris."


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    tokenizer = tiny_tokenizer()
    tiny_model("gpt2", len(tokenizer)).save_pretrained(root / "gpt2")  # d_model 32, 3 blocks
    tokenizer.save_pretrained(root / "gpt2")
    # a pre-6.0 release folder, as gpt2-small-res-jb's are, at the tiny model's width
    pre6_release_files(snapshot(root / "hub", "jbloom/GPT2-Small-SAEs-Reformatted") / SAE_ID,
                       d_in=32, d_sae=64, sparsity=False)
    return root


def _run(code: str, root: Path) -> str:
    return run_offline(code, root / "hub", cwd=root)


def test_top_features_and_contrast_by_release_name(setup):
    out = _run(f"""
        import json
        import numpy as np
        import toymodels as tm
        from toymodels import lm
        from toymodels.cli import main
        main(["lm", "top-features", "--sae", "{RELEASE}:{SAE_ID}", "--model",
              "{setup / 'gpt2'}", "--prompt", {PROMPT!r}, "--heatmap", "", "-k", "1"])
        main(["lm", "contrast", "--sae", "{RELEASE}:{SAE_ID}", "--model", "{setup / 'gpt2'}",
              "--quiet", "--min-active", "1"])
        main(["lm", "evaluate", "--sae", "{RELEASE}:{SAE_ID}", "--model", "{setup / 'gpt2'}",
              "--limit", "6", "--quiet", "--json"])
        sae = tm.saelens.from_pretrained("{RELEASE}", "{SAE_ID}")
        model, tokenizer = lm.load_model("{setup / 'gpt2'}", lm_head=True)
        one = lm.text_latents(model, tokenizer, sae, [{PROMPT!r}])[0]
        index, values = lm.top_latents(one.feature_acts, 1)
        print(json.dumps({{"top": index[:, 0].tolist(), "bos": one.tokens[0],
                          "n": len(one.tokens)}}))
    """, setup)
    lines = out.strip().splitlines()
    want = json.loads(lines[-1])
    assert f"top 1 latents per token ({SAE_ID}, d_sae=64)" in out
    rows = lines[1:1 + want["n"]]  # one line per token, with its top latent first
    assert [int(r.split()[-1].split(":")[0]) for r in rows] == want["top"]
    assert want["bos"] == "<|endoftext|>"  # the release's prepend_bos (SAELens's default)
    assert "tests significant at FDR" in out  # contrast ran on the shipped prompt sets
    assert '"ce_recovered"' in out and '"texts": 6' in out  # evaluate spliced it in


def test_hf_model_name_from_transformer_lens_aliases():
    from toymodels.lm.commands._args import hf_model_name

    assert hf_model_name("gpt2-small") == "gpt2"
    assert hf_model_name("my/local-model") == "my/local-model"


def test_sae_and_results_folder_are_exclusive(setup, capsys):
    from toymodels.cli import main

    with pytest.raises(SystemExit, match="not both"):
        main(["lm", "top-features", "some/results", "--sae", f"{RELEASE}:{SAE_ID}",
              "--prompt", "x"])
    with pytest.raises(SystemExit, match="expected RELEASE:SAE_ID"):
        main(["lm", "top-features", "--sae", RELEASE, "--prompt", "x"])
    with pytest.raises(SystemExit, match="closest releases: .*gpt2-small-res-jb"):
        main(["lm", "top-features", "--sae", f"gpt2-small-res-jj:{SAE_ID}", "--prompt", "x"])
