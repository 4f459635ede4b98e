"""tm.saelens.from_pretrained: SAELens's release table (read from the installed sae-lens), the files
from the Hugging Face cache, offline. The test writes a release's files into a local hub cache and
loads them with HF_HUB_OFFLINE=1, through toymodels and through SAELens's own SAE.from_pretrained,
which must agree; an unknown release or sae_id is an error naming the close ones.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from extras import require  # tests/extras.py

require("sae_lens", "interop")
require("huggingface_hub", "interop")

import toymodels as tm  # noqa: E402
from toymodels.io import releases  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RELEASE, SAE_ID = "gpt2-small-res-jb", "blocks.8.hook_resid_pre"
REPO = "jbloom/GPT2-Small-SAEs-Reformatted"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _snapshot(cache: Path, repo: str) -> Path:
    """A repo's snapshot folder in a hub cache laid out as huggingface_hub lays it out."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    snap = root / "snapshots" / COMMIT
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def _pre6_release_files(folder: Path, d_in=8, d_sae=16, seed=0, sparsity=True):
    """What gpt2-small-res-jb's folders hold: a pre-6.0 SAELens config, weights, log sparsity
    (the real ones are d_in 768, d_sae 24,576)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({
        "model_name": "gpt2-small", "hook_point": SAE_ID, "hook_point_layer": 8,
        "hook_point_head_index": None, "dataset_path": "Skylion007/openwebtext",
        "is_dataset_tokenized": False, "context_size": 128, "d_in": d_in, "d_sae": d_sae,
        "b_dec_init_method": "geometric_median", "expansion_factor": d_sae // d_in,
        "activation_fn": "relu", "normalize_sae_decoder": True, "apply_b_dec_to_input": True,
        "lr": 4e-4, "l1_coefficient": 8e-5, "dtype": "torch.float32", "device": "cuda",
        "sae_lens_training_version": None}))
    save_file({"W_enc": rng.normal(size=(d_in, d_sae)).astype(np.float32),
               "b_enc": (rng.normal(size=d_sae) * 0.3).astype(np.float32),
               "W_dec": rng.normal(size=(d_sae, d_in)).astype(np.float32),
               "b_dec": (rng.normal(size=d_in) * 0.3).astype(np.float32)},
              str(folder / "sae_weights.safetensors"))
    if sparsity:
        save_file({"sparsity": rng.uniform(-6, -1, size=d_sae).astype(np.float32)},
                  str(folder / "sparsity.safetensors"))


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hub")
    snap = _snapshot(cache, REPO)
    _pre6_release_files(snap / SAE_ID)
    _pre6_release_files(snap / "blocks.3.hook_resid_pre", seed=1, sparsity=False)
    # an "owner/repo" release: a SAELens 6 folder toymodels wrote
    sae = tm.SAE(tm.SAEConfig(d_in=4, d_sae=6, architecture="topk", k=2),
                 {n: np.random.default_rng(2).normal(size=s).astype(np.float32)
                  for n, s in (("W_enc", (4, 6)), ("b_enc", (6,)), ("W_dec", (6, 4)),
                               ("b_dec", (4,)))}, {})
    tm.saelens.save(sae, _snapshot(cache, "someone/my-saes") / "layer3", hook_name="blocks.3.x")
    return cache


def _offline(code: str, cache: Path) -> dict:
    """Run `code` in a fresh process with the hub offline and `cache` as its cache; its last
    stdout line, as JSON."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


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
