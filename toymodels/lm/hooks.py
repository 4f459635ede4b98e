"""Read sites out of one forward pass of a Hugging Face model, and stop it after the last one.

`capture(model, sites, input_ids, attention_mask)` registers one forward hook (or pre-hook) per
site on the module `toymodels.lm.sites` maps it to, runs the model under `torch.no_grad()`, and
removes every hook before it returns: nothing stays registered on the model, and there is no global
registry. The hook of the site a forward pass reaches last raises a private exception once it has
read its tensor, so the blocks after it, the final norm, pooler and head never run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from toymodels.lm import lens
from toymodels.lm.sites import Site, architecture_of, n_layers, parse_sites


class _Reached(Exception):
    """Raised by the last site's hook: every site has been read, the rest of the pass is waste."""


def _first(x):
    return x[0] if isinstance(x, tuple | list) else x


@contextlib.contextmanager
def _hooks(model, sites: Sequence[Site], read: Callable[[torch.Tensor], object], stop: bool):
    """Hooks writing `read(tensor)` of every site into the yielded dict; removed on exit."""
    arch = architecture_of(model.config)
    base = model.base_model
    last = max(sites)
    found: dict[str, object] = {}
    handles = []

    def keep(site: Site, tensor):
        if site.name in found:
            raise RuntimeError(f"{site.name}: module {arch.tap(site).path(site.layer)} ran twice in "
                               "one forward pass; this model does not fit the site table")
        found[site.name] = read(tensor.detach())
        if stop and site == last:
            raise _Reached

    try:
        for site in sites:
            tap = arch.tap(site)
            module = base.get_submodule(tap.path(site.layer))
            if tap.read == "input":
                def hook(_module, args, kwargs, site=site):
                    keep(site, args[0] if args else kwargs["hidden_states"])
                handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))
            else:
                def hook(_module, _args, output, site=site):
                    keep(site, _first(output))
                handles.append(module.register_forward_hook(hook))
        yield found
    finally:
        for h in handles:
            h.remove()


def capture(model, sites, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
            stop: bool = True, read: Callable[[torch.Tensor], object] | None = None) -> dict:
    """The activations at `sites` for one batch: {site name: (batch, seq, d_model) tensor}.

    Args:
      model: a Hugging Face model of a supported architecture (`toymodels.lm.sites.ARCHITECTURES`),
        in eval mode (the caller's business: dropout would make activations random).
      sites: site names, e.g. ["blocks.3.hook_resid_post", "blocks.3.mlp.hook_in"].
      input_ids, attention_mask: (batch, seq) on the model's device.
      stop: end the forward pass once the last site is read (the model's outputs are not computed).
      read: applied to each captured tensor inside its hook (e.g. `lambda t: t[mask]` to keep only
        real tokens; it must copy if later modules could modify the tensor in place); default: keep
        the tensor as the model produced it.

    A TransformerLens model (`HookedTransformer`) is read at its own hook points instead: any
    name in `model.hook_dict` is a site (`toymodels.lm.lens`).
    """
    if lens.is_hooked(model):
        return lens.capture(model, sites, input_ids, attention_mask, stop=stop, read=read)
    parsed = parse_sites(sites, n_layers(model.config))
    read = read or (lambda t: t)
    with torch.no_grad(), _hooks(model, parsed, read, stop) as found:
        try:
            model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _Reached:
            pass
    missing = [s.name for s in parsed if s.name not in found]
    if missing:
        raise RuntimeError(f"the forward pass never reached {', '.join(missing)}")
    return {s: found[s] for s in (p.name for p in parsed)}
