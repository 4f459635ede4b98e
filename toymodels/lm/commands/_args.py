"""What several `toymodels lm` commands share: value parsing, text files, the SAE and model a
command analyses, and figure saving. Nothing here imports PyTorch; the loaders import it when
called."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path


def save(fig, path: str) -> None:
    """Write a figure as a PNG at `path`, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)



def text_lines(path, *, skip: int = 0, limit: int | None = None) -> list[str]:
    """Lines `skip` … `skip + limit` of a text file, split as `harvest` splits it (at line feeds)."""
    if skip < 0 or (limit is not None and limit < 1):
        raise SystemExit("--skip must be ≥ 0 and --limit ≥ 1")
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = itertools.islice(f, skip, None if limit is None else skip + limit)
            return [line.rstrip("\r\n") for line in lines]
    except OSError as err:
        raise SystemExit(f"cannot read {path}: {err}") from None



def parse_value(text: str):
    """A command-line value: an int, a float, true/false, none, or the string itself."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_pairs(items, what: str) -> dict:
    """Repeated NAME=VALUE arguments as {name: value text}; `what` names the flag in errors."""
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out



def add_sae_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments naming one SAE (of a sweep, or a pretrained SAELens release) and the model
    to splice it into."""
    p.add_argument("sae", nargs="?", default=None,
                   help="a results folder of `toymodels lm train-sae` (or of tm.sweep on an "
                        "activation store); or give --sae")
    p.add_argument("--sae", dest="pretrained", metavar="RELEASE:SAE_ID", default=None,
                   help="a pretrained SAE of SAELens's release table instead, e.g. "
                        "gpt2-small-res-jb:blocks.8.hook_resid_pre (needs the interop extra; "
                        "downloaded into the Hugging Face cache, offline once there)")
    p.add_argument("--point", action="append", metavar="DIM=VALUE",
                   help="which SAE of the sweep, e.g. l1_coefficient=3 (repeat per grid dim; a "
                        "dim with one value may be left out)")
    p.add_argument("--model", default=None,
                   help="the model, if not the one the SAE's store was harvested from (a name "
                        "or a folder)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")


def sae_of(args):
    """The SAE that `add_sae_arguments`' `sae` and `--point`, or `--sae`, name."""
    if (args.sae is None) == (args.pretrained is None):
        raise SystemExit("give an SAE: a results folder, or --sae RELEASE:SAE_ID (not both)")
    if args.pretrained is not None:
        from toymodels.io.saelens import from_pretrained

        release, sep, sae_id = args.pretrained.partition(":")
        if not sep or not release or not sae_id:
            raise SystemExit(f"--sae: expected RELEASE:SAE_ID, got {args.pretrained!r}")
        if args.point:
            raise SystemExit("--point chooses an SAE of a sweep; --sae names one already")
        try:
            return from_pretrained(release, sae_id)
        except (ValueError, FileNotFoundError, ModuleNotFoundError) as err:
            raise SystemExit(f"--sae: {err}") from None
    from toymodels.lm.saes import sae_from_sweep

    point = {k: parse_value(v) for k, v in parse_pairs(args.point, "--point").items()}
    return sae_from_sweep(args.sae, point)


def hf_model_name(name: str) -> str:
    """A TransformerLens model name ("gpt2-small", which SAELens's releases use) as the Hugging
    Face name it loads ("gpt2"), by TransformerLens's own alias table when it is installed;
    any other name as it is."""
    try:
        from transformer_lens.loading_from_pretrained import get_official_model_name
    except ImportError:
        return name
    try:
        return get_official_model_name(name)
    except ValueError:
        return name


def model_of(args, sae):
    """(model, tokenizer) with its LM head: `--model`, else the one the SAE's results (or its
    release) name."""
    from toymodels.lm.models import load_model

    name = args.model or sae.metadata.get("model_name")
    if name is None:
        raise SystemExit("--model: the SAE's results do not name a model; give one")
    if args.model is None and "release" in sae.metadata:
        name = hf_model_name(name)
    return load_model(name, device=args.device, lm_head=True)

