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
    p.add_argument("--saebench", action="store_true",
                   help="also run SAEBench's first-letter absorption (prompts over the "
                        "tokenizer's alphabetic words) and k-sparse probing (k = 1, 2, 5) on the "
                        "shipped corpus's 12 topics, beside probes on the raw site")
    p.add_argument("--saebench-words", type=int, default=5000, metavar="N",
                   help="alphabetic words drawn for the absorption prompts (default 5000; 0: "
                        "the whole vocabulary, as SAEBench)")
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
    details = None
    if args.saebench:
        details = saebench_report(model, tokenizer, sae, args)
        report |= {k: v for k, v in details.items() if not isinstance(v, dict | list | tuple)}
    if args.json:
        json.dump(report | ({"saebench": details} if details else {}), sys.stdout, indent=1)
        print()
        return
    print(f"SAE {args.sae} ({sae.d_sae} latents) spliced into {sae.metadata.get('model_name')} at "
          f"{sae.metadata.get('hook_name')}, {report['texts']} texts, {report['tokens']} tokens:")
    for key, value in report.items():
        if key not in ("texts", "tokens"):
            print(f"  {key:<22} {value:.6g}" if isinstance(value, float) else f"  {key:<22} {value}")
    if details:
        sampled, total = details["words"]
        print(f"  SAEBench absorption on {sampled} of {total} alphabetic words"
              f"{' (a sample)' if sampled < total else ''}; raw-site letter-probe test F1:")
        print("   " + " ".join(f"{c}={v['probe_f1']:.2f}" for c, v in
                             details["per_letter"].items()))
        print(f"  {details['letters_passing']} letters have F1 > 0.6: SAEBench's gate of "
              f"{details['min_letters']} {'passed' if details['gate_passed'] else 'NOT passed'}")


def saebench_report(model, tokenizer, sae, args) -> dict:
    """SAEBench's absorption and sparse probing of `sae` (`toymodels.lm.saebench`): the flat
    numbers, and the per-letter and per-topic details under "per_letter" and "per_topic"."""
    from toymodels.lm import saebench
    from toymodels.lm.splice import tokenisation
    from toymodels.lm.texts import corpus, corpus_topics

    if args.saebench_words < 0:
        raise SystemExit("--saebench-words must be ≥ 0 (0: the whole vocabulary)")
    config = saebench.AbsorptionConfig(n_words=args.saebench_words or None,
                                       batch_size=args.batch_size)
    site = saebench.site_of(sae)
    max_length, prepend_bos = tokenisation(sae, None, None)
    data = saebench.letter_data(model, tokenizer, site, config, max_length=max(max_length, 128),
                                prepend_bos=prepend_bos, progress=not args.quiet)
    absorption = saebench.first_letter_absorption(sae, data, config)
    rows, owner = saebench.pooled_activations(model, tokenizer, site, corpus(),
                                              batch_size=args.batch_size, max_length=max_length,
                                              prepend_bos=prepend_bos, progress=not args.quiet)
    probing = saebench.sparse_probing(sae, rows, owner, corpus_topics())
    return {"absorption_fraction": absorption["absorption_fraction"],
            "full_absorption_rate": absorption["full_absorption_rate"],
            "absorption_fraction_ungated": absorption["absorption_fraction_ungated"],
            "full_absorption_rate_ungated": absorption["full_absorption_rate_ungated"],
            "letters_passing": absorption["letters_passing"],
            "gate_passed": absorption["gate_passed"], "min_letters": config.min_letters,
            "mean_main_latents": absorption["mean_main_latents"],
            **{f"probe_{k}": v for k, v in probing.items() if k != "per_class"},
            "words": absorption["words"], "per_letter": absorption["per_letter"],
            "per_topic": probing["per_class"]}
