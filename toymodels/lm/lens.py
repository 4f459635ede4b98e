"""TransformerLens models as input: read and write any of a `HookedTransformer`'s hook points.

A TransformerLens model names its own sites: every `HookPoint` in `model.hook_dict`
("blocks.8.hook_resid_pre", "blocks.3.attn.hook_z", "ln_final.hook_normalized" …), so no site table
is needed and any hook point can be harvested, spliced or contrasted, not only the six kinds of
`toymodels.lm.sites`. Reading registers a plain forward hook on each site's HookPoint (whose forward
is the identity, so its output *is* the activation), the same mechanism `run_with_cache` uses, and
removes it afterwards; the hook that completes the set of sites stops the pass. Writing returns the
edited tensor from that hook.

A site must carry one vector per token: a tensor (batch, seq, …) whose trailing axes are flattened
into one (hook_z's (n_heads, d_head) becomes n_heads·d_head, SAELens's `reshape_activations:
"hook_z"`). Attention patterns and scores ((batch, head, q, k)) are refused.

TransformerLens is imported only when a TransformerLens model is passed in (it is then already
imported by whoever built it): toymodels never requires it.
"""

from __future__ import annotations

import contextlib
import difflib
import sys
from collections.abc import Callable

import torch

__all__ = ["capture", "is_hooked", "model_outputs", "parse_hook_sites", "rewrite_hooks",
           "site_widths"]

#: hook points whose tensors are per (query, key) pair, not per token
_NOT_PER_TOKEN = ("hook_pattern", "hook_attn_scores")


class _Reached(Exception):
    """Raised once every site has been read: the rest of the pass is waste."""


def is_hooked(model) -> bool:
    """Whether `model` is a TransformerLens model (a HookedRootModule: HookedTransformer …)."""
    if "transformer_lens" not in sys.modules:  # nothing built from it exists in this process
        return False
    from transformer_lens import HookedRootModule

    return isinstance(model, HookedRootModule)


def parse_hook_sites(model, sites) -> list[str]:
    """The site names, checked against `model.hook_dict`; ValueError naming an unknown one and
    the closest hook names, a repeated one, or a per-(query, key) one."""
    if isinstance(sites, str):
        sites = [sites]
    names = list(sites)
    if not names:
        raise ValueError("sites: give at least one of the model's hook names, e.g. "
                         "blocks.0.hook_resid_pre")
    for name in names:
        if name not in model.hook_dict:
            close = difflib.get_close_matches(str(name), list(model.hook_dict), n=5, cutoff=0.6)
            raise ValueError(f"site {name!r} is not a hook point of this TransformerLens model"
                             + (f"; closest: {', '.join(close)}" if close else ""))
        if name.endswith(_NOT_PER_TOKEN):
            raise ValueError(f"site {name!r} holds one value per (query, key) pair, not one "
                             "vector per token")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"sites: {', '.join(repeated)} given more than once")
    return names


def _per_token(name: str, t: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(batch, seq, …) -> (batch, seq, d), flattening the trailing axes."""
    if t.ndim < 3 or tuple(t.shape[:2]) != shape:
        raise ValueError(f"site {name!r} has shape {tuple(t.shape)}, not (batch, seq, …) = "
                         f"{shape} + (…): not one vector per token")
    return t.reshape(*shape, -1)


def _forward(model, input_ids, attention_mask, return_type):
    # Tokens as a tensor: TransformerLens prepends no BOS to them (toymodels' tokenisation did).
    return model(input_ids, return_type=return_type, attention_mask=attention_mask)


def capture(model, sites, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, *,
            stop: bool = True, read: Callable[[torch.Tensor], object] | None = None) -> dict:
    """{site: (batch, seq, d)} for one batch, as `toymodels.lm.hooks.capture` (same arguments);
    equal to `model.run_with_cache(input_ids)[1][site]` with trailing axes flattened."""
    names = parse_hook_sites(model, sites)
    read = read or (lambda t: t)
    shape = tuple(input_ids.shape)
    found: dict[str, object] = {}

    def hook_for(name):
        def hook(_module, _args, output):
            # A hook point that runs more than once in a pass (ln1's, once each for q, k, v)
            # keeps its last value, as run_with_cache does.
            found[name] = read(_per_token(name, output.detach(), shape))
            if stop and len(found) == len(names):
                raise _Reached
        return hook

    handles = [model.hook_dict[n].register_forward_hook(hook_for(n)) for n in names]
    try:
        with torch.no_grad():  # "logits": the unembedding's hook points run only then
            _forward(model, input_ids, attention_mask, "logits")
    except _Reached:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in found]
    if missing:  # e.g. hook_result without cfg.use_attn_result
        raise ValueError(f"the forward pass never reached {', '.join(missing)} (a hook point "
                         "this model's config leaves unused)")
    return {n: found[n] for n in names}


def site_widths(model, sites) -> dict[str, int]:
    """{site: d}: the per-token width of each site, from one forward pass over one token."""
    ids = torch.zeros((1, 1), dtype=torch.long, device=model.cfg.device)
    return {n: int(t.shape[-1]) for n, t in capture(model, sites, ids).items()}


@contextlib.contextmanager
def rewrite_hooks(model, read_site: str, write_site: str,
                  rewrite: Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]):
    """While open, the tensor at `write_site` is replaced by `rewrite(x_in, x)`: x the tensor
    there (batch, seq, d), x_in the one at `read_site` (None when they are the same site).
    The hooks are removed on exit, also on error."""
    parse_hook_sites(model, [read_site] if read_site == write_site else [read_site, write_site])
    state: dict[str, torch.Tensor] = {}

    def keep(_module, _args, output):
        state["x_in"] = output

    def replace(_module, _args, output):
        flat = output.reshape(*output.shape[:2], -1)
        x_in = None
        if read_site != write_site:
            if "x_in" not in state:
                raise ValueError(f"target_site {write_site!r} comes before site {read_site!r} in "
                                 "the forward pass; a transcoder writes a later site than it reads")
            x_in = state.pop("x_in").reshape(*output.shape[:2], -1)
        return rewrite(x_in, flat).reshape(output.shape)

    handles = []
    try:
        if read_site != write_site:
            handles.append(model.hook_dict[read_site].register_forward_hook(keep))
        handles.append(model.hook_dict[write_site].register_forward_hook(replace))
        yield
    finally:
        for h in handles:
            h.remove()


def model_outputs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The next-token logits (batch, seq, d_vocab), float32."""
    with torch.no_grad():
        return _forward(model, input_ids, attention_mask, "logits").float()




#: TransformerLens's normalization_type → (its final norm centres its input, it has a gain w).
#: fold_ln turns "LN" into "LNPre" (the gain folded into W_U), which reads the same.
_FINAL_NORMS = {"LN": (True, True), "LNPre": (True, False), "RMS": (False, True),
                "RMSPre": (False, False), None: (False, False)}


def unembedding(model) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """(W_U as (d_vocab, d_model), the final norm's gain (d_model,) or None, whether the final
    norm centres its input), float32 on the CPU: what `lm.promoted_tokens` reads."""
    centre, has_gain = _FINAL_NORMS[model.cfg.normalization_type]
    gain = model.ln_final.w.detach().float().cpu() if has_gain else None
    return model.W_U.detach().float().cpu().T, gain, centre
