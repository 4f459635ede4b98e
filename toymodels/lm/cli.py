"""`toymodels lm …`: the language-model commands, registered on the main parser.

    toymodels lm harvest --model all-MiniLM-L6-v2 --site blocks.3.hook_resid_post --out acts/minilm
    toymodels lm info acts/minilm
    toymodels lm train-sae acts/minilm --out results/sae --grid l1_coefficient=2,5
    toymodels lm evaluate | top-features | latent | contrast results/sae --point l1_coefficient=5 …

The analysis commands read which model and site an SAE belongs to from its sweep's results (the
store's description, `toymodels.lm.saes.sae_from_sweep`) and load a causal LM with its LM head.

`register(subparsers)` adds the `lm` group to the main parser; each command is a (name, help,
add_arguments, run) entry of `COMMANDS`, its code in `toymodels.lm.commands` (one module per
family), so a new one is one more entry. Nothing here imports PyTorch until a command runs, so
`toymodels --help` stays fast.
"""

from __future__ import annotations

import argparse

from toymodels.lm.commands.evaluate import add_evaluate, run_evaluate
from toymodels.lm.commands.features import (
    add_contrast,
    add_latent,
    add_top_features,
    run_contrast,
    run_latent,
    run_top_features,
)
from toymodels.lm.commands.store import add_harvest, add_info, run_harvest, run_info
from toymodels.lm.commands.train_sae import add_train_sae, run_train_sae

_DESCRIPTION = """\
Real language models: keep a model's activations at named sites in an on-disk store, train SAEs
on them, splice them back into the model and find what their latents mean.

    toymodels lm harvest --model all-MiniLM-L6-v2 --site blocks.3.hook_resid_post --out acts/minilm
    toymodels lm info acts/minilm
    toymodels lm train-sae acts/minilm --out results/minilm-sae --grid l1_coefficient=2,5
    toymodels lm evaluate results/minilm-sae --point l1_coefficient=5 --store acts/minilm
    toymodels lm top-features results/minilm-sae --point l1_coefficient=5 --prompt "I am thrilled."
    toymodels lm latent results/minilm-sae 123 --point l1_coefficient=5 --store acts/minilm
    toymodels lm contrast results/minilm-sae --point l1_coefficient=5
"""

_SITES_HELP = """\
sites: blocks.{l}.hook_resid_pre | hook_attn_out | hook_resid_mid | mlp.hook_in | hook_mlp_out |
hook_resid_post (see toymodels.lm.sites for the module each maps to in BERT, GPT-2 and Llama)
"""


#: (name, help, add_arguments, run): one entry per `toymodels lm` command.
COMMANDS = [
    ("harvest", "run a model over texts and store its activations at named sites",
     add_harvest, run_harvest),
    ("info", "describe a store: model, sites, tokens, shards (checks every shard)",
     add_info, run_info),
    ("train-sae", "train SAEs (or transcoders) on a store: one sweep, resumable",
     add_train_sae, run_train_sae),
    ("evaluate", "splice an SAE into its model: reconstruction, downstream metrics, dead latents",
     add_evaluate, run_evaluate),
    ("top-features", "a prompt's top SAE latents per token, printed and as a heatmap",
     add_top_features, run_top_features),
    ("latent", "one latent: its density, max-activating contexts in a store, promoted tokens",
     add_latent, run_latent),
    ("contrast", "which latents separate prompt sets (e.g. happy / angry / neutral), with FDR",
     add_contrast, run_contrast),
]


def register(subparsers) -> None:
    """Add `lm` and its commands to the main parser's subparsers."""
    lm = subparsers.add_parser("lm", help="real language models: harvest activations, …",
                               description=_DESCRIPTION,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = lm.add_subparsers(dest="lm_command", required=True)
    for name, text, add, run in COMMANDS:
        p = sub.add_parser(name, help=text, description=text + ("\n\n" + _SITES_HELP
                           if name == "harvest" else ""),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add(p)
        p.set_defaults(func=run)
