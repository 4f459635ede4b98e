"""`toymodels lm evaluate`: splice an SAE into its model and report what that costs."""

from __future__ import annotations

import argparse
import json
import sys

from toymodels.lm.commands._args import add_sae_arguments, model_of, sae_of, text_lines


def add_evaluate(p: argparse.ArgumentParser) -> None:
    add_sae_arguments(p)
    texts = p.add_mutually_exclusive_group()
    texts.add_argument("--texts", default=None,
                       help="a UTF-8 file, one text per line, to splice the SAE into (default: "
                            "the shipped corpus, as harvest; with --skip, the lines a harvest "
                            "--limit left out)")
    texts.add_argument("--prompts", action="store_true",
                       help="use the shipped contrast prompts instead (144 texts in another "
                            "style than the corpus)")
    p.add_argument("--skip", type=int, default=0,
                   help="skip the first SKIP lines of --texts (e.g. those harvested for training)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many texts")
    p.add_argument("--store", default=None,
                   help="also encode this store to count the latents that never fire on it "
                        "(the dead fraction) and their density")
    p.add_argument("--batch-size", type=int, default=16, help="texts per forward pass")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_evaluate(args) -> None:
    import numpy as np

    from toymodels.lm.splice import splice_effects
    from toymodels.lm.texts import corpus_path, prompts

    sae = sae_of(args)
    if args.prompts:
        texts = [t for ps in prompts().values() for t in ps][args.skip:]
        texts = texts[:args.limit] if args.limit else texts
    else:
        texts = [t for t in text_lines(args.texts or corpus_path(), skip=args.skip,
                                        limit=args.limit) if t.strip()]
    if not texts:
        raise SystemExit("--texts: no texts left to evaluate on")
    model, tokenizer = model_of(args, sae)
    report = splice_effects(model, tokenizer, sae, texts, batch_size=args.batch_size,
                            progress=not args.quiet)
    if args.store:
        from toymodels.lm.features import latent_stats
        from toymodels.lm.store import ActivationStore

        store = ActivationStore(args.store, site=sae.metadata.get("hook_name"))
        stats = latent_stats(store, sae, n_top=1, progress=not args.quiet)
        report |= {"store_tokens": stats.tokens, "dead_fraction": float(np.mean(stats.density == 0)),
                   "median_density": float(np.median(stats.density))}
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return
    print(f"SAE {args.sae} ({sae.d_sae} latents) spliced into {sae.metadata.get('model_name')} at "
          f"{sae.metadata.get('hook_name')}, {report['texts']} texts, {report['tokens']} tokens:")
    for key, value in report.items():
        if key not in ("texts", "tokens"):
            print(f"  {key:<22} {value:.6g}" if isinstance(value, float) else f"  {key:<22} {value}")
