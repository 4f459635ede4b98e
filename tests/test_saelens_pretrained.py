"""tm.saelens.from_pretrained: SAELens's release table (read from the installed sae-lens), the files
from the Hugging Face cache, offline. The test writes a release's files into a local hub cache and
loads them with HF_HUB_OFFLINE=1, through toymodels and through SAELens's own SAE.from_pretrained,
which must agree; an unknown release or sae_id is an error naming the close ones.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from extras import require  # tests/extras.py
from hub_cache import pre6_release_files, run_offline, snapshot  # tests/hub_cache.py

require("sae_lens", "interop")
require("huggingface_hub", "interop")

import toymodels as tm  # noqa: E402
from toymodels.io import releases  # noqa: E402

RELEASE, SAE_ID = "gpt2-small-res-jb", "blocks.8.hook_resid_pre"
REPO = "jbloom/GPT2-Small-SAEs-Reformatted"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hub")
    snap = snapshot(cache, REPO)
    pre6_release_files(snap / SAE_ID)
    pre6_release_files(snap / "blocks.3.hook_resid_pre", seed=1, sparsity=False)
    # an "owner/repo" release: a SAELens 6 folder toymodels wrote
    sae = tm.SAE(tm.SAEConfig(d_in=4, d_sae=6, architecture="topk", k=2),
                 {n: np.random.default_rng(2).normal(size=s).astype(np.float32)
                  for n, s in (("W_enc", (4, 6)), ("b_enc", (6,)), ("W_dec", (6, 4)),
                               ("b_dec", (4,)))}, {})
    tm.saelens.save(sae, snapshot(cache, "someone/my-saes") / "layer3", hook_name="blocks.3.x")
    return cache


def _offline(code: str, cache: Path) -> dict:
    """Run `code` offline against `cache`; its last stdout line, as JSON."""
    return json.loads(run_offline(code, cache).strip().splitlines()[-1])


def test_from_pretrained_offline_equals_saelens(hub_cache):
    got = _offline(f"""
        import json, numpy as np, torch
        import toymodels as tm
        from sae_lens import SAE
        x = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
        ours = tm.saelens.from_pretrained({RELEASE!r}, {SAE_ID!r})
        theirs = SAE.from_pretrained({RELEASE!r}, {SAE_ID!r})
        with torch.no_grad():
            f = theirs.encode(torch.from_numpy(x)).numpy()
            x_hat = theirs.decode(torch.from_numpy(f)).numpy()
        sparsity = tm.saelens.pretrained_sparsity({RELEASE!r}, {SAE_ID!r})
        print(json.dumps({{
            "f": float(np.abs(np.asarray(ours.encode(x)) - f).max()),
            "x_hat": float(np.abs(np.asarray(ours.decode(f)) - x_hat).max()),
            "active": float((f > 0).mean()), "metadata": ours.metadata,
            "theirs_kwargs": theirs.cfg.metadata.model_from_pretrained_kwargs,
            "sparsity": None if sparsity is None else len(sparsity),
            "none": tm.saelens.pretrained_sparsity({RELEASE!r}, "blocks.3.hook_resid_pre"),
            "owner_repo": tm.saelens.from_pretrained("someone/my-saes", "layer3").config.k}}))
    """, hub_cache)
    assert got["f"] < 1e-5 and got["x_hat"] < 1e-4 and 0 < got["active"] < 1
    meta = got["metadata"]
    assert (meta["release"], meta["sae_id"], meta["hook_name"]) == (RELEASE, SAE_ID, SAE_ID)
    assert meta["model_name"] == "gpt2-small" and meta["prepend_bos"] is True
    assert meta["context_size"] == 128 and meta["neuronpedia_id"] == "gpt2-small/8-res-jb"
    # the release's model_from_pretrained_kwargs, as SAELens itself records them
    assert meta["model_from_pretrained_kwargs"] == {"center_writing_weights": True}
    assert got["theirs_kwargs"] == meta["model_from_pretrained_kwargs"]
    assert got["sparsity"] == 16 and got["none"] is None
    assert got["owner_repo"] == 2


def test_not_in_the_cache_offline_is_a_clear_error(hub_cache):
    got = _offline(f"""
        import json
        import toymodels as tm
        try:
            tm.saelens.from_pretrained({RELEASE!r}, "blocks.5.hook_resid_pre")
        except FileNotFoundError as e:
            print(json.dumps({{"error": str(e)}}))
    """, hub_cache)
    assert "not in the Hugging Face cache" in got["error"] and REPO in got["error"]


def test_unknown_release_or_sae_id_lists_the_close_names():
    with pytest.raises(ValueError, match="release 'gpt2-small-res-jj' is not in .*closest "
                       "releases: .*gpt2-small-res-jb"):
        tm.saelens.from_pretrained("gpt2-small-res-jj", SAE_ID)
    with pytest.raises(ValueError, match="sae_id 'blocks.8.hook_resid_pro' is not in release "
                       "'gpt2-small-res-jb' .*closest sae_ids: blocks.8.hook_resid_pre"):
        tm.saelens.from_pretrained(RELEASE, "blocks.8.hook_resid_pro")
    with pytest.raises(ValueError, match="another format .*'gemma_2'"):
        gemma = next(r for r, e in releases.release_table().items()
                     if e.get("conversion_func") == "gemma_2")
        tm.saelens.from_pretrained(gemma, releases.release_table()[gemma]["saes"][0]["id"])


def test_the_table_is_sae_lens_own():
    where = releases.resolve(RELEASE, SAE_ID)
    assert (where.repo_id, where.path, where.model) == (REPO, SAE_ID, "gpt2-small")
    assert where.config_overrides == {"model_from_pretrained_kwargs":
                                      {"center_writing_weights": True}}
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory
    theirs = get_pretrained_saes_directory()
    assert set(releases.release_table()) == set(theirs)
