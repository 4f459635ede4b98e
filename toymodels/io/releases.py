"""SAELens's pretrained releases: which Hugging Face files a (release, sae_id) names.

SAELens ships its release table as `pretrained_saes.yaml` inside the `sae_lens` package; each
release gives a `repo_id`, the `model` its SAEs read, a `conversion_func` (null: the files are
SAELens's own `cfg.json` + `sae_weights.safetensors`), `config_overrides` (e.g.
`model_from_pretrained_kwargs: {center_writing_weights: true}`) and its `saes`, each
`{id, path, l0, variance_explained, neuronpedia, norm_scaling_factor}`. A release that is not in
the table but contains "/" is taken, as SAELens takes it, as a Hugging Face repo with the sae_id as
its folder.

The table is read from the installed sae-lens (the `interop` extra) without importing it (importing
`sae_lens` pulls torch and TransformerLens); the files are fetched with `huggingface_hub` into its
cache, so they come from the cache offline (`HF_HUB_OFFLINE=1`) once fetched, or once written
there. Only SAELens-format releases (`conversion_func: null`) are read: a release of another
format (Gemma Scope's npz, Llama Scope …) is refused with the converter it would need.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Release", "download", "release_table", "resolve"]

TABLE = "pretrained_saes.yaml"
FILES = ("cfg.json", "sae_weights.safetensors")
SPARSITY = "sparsity.safetensors"


@dataclass(frozen=True)
class Release:
    """Where one pretrained SAE lives and what its release says about it."""

    release: str
    sae_id: str
    repo_id: str
    path: str  # the folder in the repo
    model: str | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)
    neuronpedia: str | None = None
    norm_scaling_factor: float | None = None


def table_path() -> Path:
    """The installed sae-lens's `pretrained_saes.yaml` (found without importing sae_lens)."""
    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("SAELens's release table comes with sae-lens: "
                                  "pip install 'toymodels[interop]'")
    path = Path(list(spec.submodule_search_locations)[0]) / TABLE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the installed sae-lens has no release table")
    return path


@functools.cache
def _read(path: Path) -> dict[str, Any]:
    import yaml

    with open(path) as f:  # 1.5 MB: the C loader when PyYAML has it, as SAELens reads it
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a table of releases")
    return data


def release_table(path: str | Path | None = None) -> dict[str, Any]:
    """{release: its entry} as SAELens's yaml has it (default: the installed sae-lens's)."""
    return _read(Path(path) if path is not None else table_path())


def _close(name: str, names, what: str) -> str:
    close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
    return f"; closest {what}: {', '.join(close)}" if close else ""


def resolve(release: str, sae_id: str, *, table: dict[str, Any] | None = None) -> Release:
    """The repo, folder and settings of (release, sae_id); ValueError listing the closest
    releases (or sae_ids of the release) when it names none."""
    for name, value in (("release", release), ("sae_id", sae_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    table = release_table() if table is None else table
    if release not in table:
        if "/" in release:  # a Hugging Face repo, the sae_id its folder (as SAELens does)
            return Release(release, sae_id, repo_id=release, path=sae_id)
        raise ValueError(f"release {release!r} is not in SAELens's pretrained_saes.yaml (nor an "
                         "'owner/repo' Hugging Face repo)" + _close(release, table, "releases"))
    entry = table[release]
    saes = {s["id"]: s for s in entry.get("saes", [])}
    if sae_id not in saes:
        raise ValueError(f"sae_id {sae_id!r} is not in release {release!r} "
                         f"({len(saes)} SAEs)" + _close(sae_id, saes, "sae_ids"))
    converter = entry.get("conversion_func")
    if converter is not None:
        raise ValueError(f"release {release!r} is stored in another format (SAELens converts it "
                         f"with {converter!r}); only SAELens-format releases load here")
    sae = saes[sae_id]
    return Release(release, sae_id, repo_id=entry["repo_id"], path=str(sae["path"]),
                   model=entry.get("model"),
                   config_overrides=dict(entry.get("config_overrides") or {}),
                   neuronpedia=sae.get("neuronpedia"),
                   norm_scaling_factor=sae.get("norm_scaling_factor"))


def download(where: Release, *, cache_dir: str | Path | None = None,
             force_download: bool = False) -> tuple[Path, Path | None]:
    """(the local folder holding cfg.json and sae_weights.safetensors, sparsity.safetensors or
    None): fetched with huggingface_hub into its cache, or found there offline."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    def fetch(name: str) -> Path:
        filename = f"{where.path}/{name}" if where.path else name
        return Path(hf_hub_download(where.repo_id, filename, cache_dir=cache_dir,
                                    force_download=force_download))

    try:
        paths = [fetch(name) for name in FILES]
    except LocalEntryNotFoundError as e:
        raise FileNotFoundError(f"{where.release}:{where.sae_id}: {where.repo_id}/{where.path} is "
                                "not in the Hugging Face cache and the hub cannot be reached "
                                f"(offline?): {e}") from None
    try:
        sparsity = fetch(SPARSITY)
    except (EntryNotFoundError, LocalEntryNotFoundError):  # optional: many releases have none
        sparsity = None
    folder = paths[0].parent
    if paths[1].parent != folder:
        raise RuntimeError(f"huggingface_hub put {FILES[0]} and {FILES[1]} in different folders")
    return folder, sparsity
