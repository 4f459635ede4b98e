"""A local Hugging Face hub cache written by the tests, and code run against it offline.

Pretrained SAELens releases come from the hub; here their files are written into a cache laid out
as huggingface_hub lays it out, and the code under test runs in a fresh process with
HF_HUB_OFFLINE=1 and that cache, so nothing is downloaded.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def snapshot(cache: Path, repo: str) -> Path:
    """A repo's snapshot folder in a hub cache laid out as huggingface_hub lays it out."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(COMMIT)
    snap = root / "snapshots" / COMMIT
    snap.mkdir(parents=True, exist_ok=True)
    return snap


def pre6_release_files(folder: Path, d_in=8, d_sae=16, seed=0, sparsity=True) -> None:
    """What gpt2-small-res-jb's folders hold, for the hook point the folder is named after: a
    pre-6.0 SAELens config, weights, log sparsity (the real ones are d_in 768, d_sae 24,576)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({
        "model_name": "gpt2-small", "hook_point": folder.name,
        "hook_point_layer": int(folder.name.split(".")[1]),
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


def run_offline(code: str, cache: Path, cwd: Path = ROOT) -> str:
    """Run `code` in a fresh process with the hub offline and `cache` as its cache; its stdout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
           "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout
