"""`toymodels lm top-features | latent | contrast`: what an SAE's latents respond to, from one
prompt, one latent or sets of prompts."""

from __future__ import annotations

import argparse

from toymodels.lm.commands._args import (
    add_sae_arguments,
    model_of,
    parse_pairs,
    sae_of,
    save,
    text_lines,
)


def add_top_features(p: argparse.ArgumentParser) -> None:
    add_sae_arguments(p)
    p.add_argument("--prompt", required=True, help="the text to read")
    p.add_argument("-k", type=int, default=5, help="latents listed per token (default 5)")
    p.add_argument("--heatmap", default="top_features.png",
                   help="where to write the token × latent heatmap (default top_features.png; "
                        "'' for none)")
    p.add_argument("--heatmap-k", type=int, default=3,
                   help="the heatmap shows every latent among some token's top HEATMAP_K "
                        "(default 3), at most 30")


def run_top_features(args) -> None:
    from toymodels.lm.features import text_latents, top_latents
    from toymodels.plots.lm import token_latent_heatmap

    sae = sae_of(args)
    model, tokenizer = model_of(args, sae)
    one = text_latents(model, tokenizer, sae, [args.prompt])[0]
    index, values = top_latents(one.feature_acts, min(args.k, sae.d_sae))
    width = max(len(t) for t in one.tokens)
    print(f"top {index.shape[1]} latents per token ({sae.metadata.get('hook_name')}, "
          f"d_sae={sae.d_sae}): latent:activation")
    for token, i, v in zip(one.tokens, index, values):
        cells = "  ".join(f"{a:>5d}:{b:<6.2f}" for a, b in zip(i, v) if b > 0)
        print(f"{token:>{width}}  {cells or '(none fire)'}")
    if args.heatmap:
        fig = token_latent_heatmap(one.tokens, one.feature_acts, k=args.heatmap_k,
                                   max_latents=30, title=f"“{_short(args.prompt)}”")
        save(fig, args.heatmap)
        print(f"wrote {args.heatmap}")


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def add_contrast(p: argparse.ArgumentParser) -> None:
    add_sae_arguments(p)
    p.add_argument("--set", action="append", metavar="NAME=FILE", dest="sets",
                   help="a prompt set: a UTF-8 file of one prompt per line; repeat for each set "
                        "(default: the shipped happy, angry and neutral sets, 48 matched prompts "
                        "each)")
    p.add_argument("--statistic", choices=("max", "mean"), default="max",
                   help="a prompt's value of a latent: its max (default) or mean over the "
                        "prompt's tokens")
    p.add_argument("--fdr", type=float, default=0.05,
                   help="the Benjamini–Hochberg false-discovery rate (default 0.05)")
    p.add_argument("--min-active", type=int, default=3,
                   help="test only latents active on at least this many prompts of all the "
                        "sets together (default 3; a filter blind to the sets)")
    p.add_argument("--top", type=int, default=20, help="rows of the table printed (default 20)")
    p.add_argument("--csv", default=None, help="write every tested (set, latent) row here")
    p.add_argument("--figure", default=None,
                   help="write the per-prompt activations of the strongest latents (PNG) here")
    p.add_argument("--store", default=None,
                   help="a store of the SAE's site: print the max-activating contexts of each "
                        "set's strongest latent (the one its prompts raise most) from it")
    p.add_argument("--contexts-figure", default=None,
                   help="with --store: draw the contexts of the strongest latent of the first set "
                        "that has one (PNG) here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_contrast(args) -> None:
    from toymodels.lm.features import contrast
    from toymodels.lm.texts import prompts

    sets = prompts() if not args.sets else {
        name: _lines(path) for name, path in parse_pairs(args.sets, "--set").items()}
    if len(sets) < 2:
        raise SystemExit("--set: give at least two prompt sets")
    sae = sae_of(args)
    model, tokenizer = model_of(args, sae)
    table, activations = contrast(model, tokenizer, sae, sets, statistic=args.statistic,
                                  fdr=args.fdr, min_active=args.min_active,
                                  progress=not args.quiet)
    significant = table[table["significant"]]
    comparisons = "first against second" if len(sets) == 2 else "each set against the rest"
    print(f"{len(significant)} of {len(table)} (set, latent) tests significant at FDR "
          f"{args.fdr} ({comparisons}; Mann–Whitney U on per-prompt {args.statistic}, "
          f"Benjamini–Hochberg; {', '.join(f'{k}: {len(v)}' for k, v in sets.items())} prompts)")
    if len(significant):
        print(significant.head(args.top).to_string(
            index=False, float_format=lambda v: f"{v:.3g}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.figure and len(significant):
        from toymodels.plots.lm import contrast_strips

        save(contrast_strips(table, activations, statistic=args.statistic), args.figure)
        print(f"wrote {args.figure}")
    if args.store:
        _contexts_of_strongest(args, sae, tokenizer, significant, list(sets))


def _contexts_of_strongest(args, sae, tokenizer, significant, names) -> None:
    """Each set's strongest significant latent (the one it raises most): its contexts."""
    import numpy as np

    from toymodels.lm.features import format_contexts, latent_stats, max_activating_contexts
    from toymodels.lm.store import ActivationStore

    store = ActivationStore(args.store, site=sae.metadata.get("hook_name"))
    stats = latent_stats(store, sae, n_top=8, progress=not args.quiet)
    drawn = False
    for name in names:
        # The rows where this set raises the latent; with two sets, the first's table rows
        # with a negative effect are the second's.
        raised = significant["effect"] * np.where(significant["set"] == name, 1, -1)
        mine = (significant["set"] == name) | (len(names) == 2)
        rows = significant.assign(raised=raised)[mine & (raised > 0)]
        if rows.empty:
            continue
        latent = int(rows.sort_values("raised", ascending=False, kind="stable").iloc[0]["latent"])
        contexts = max_activating_contexts(store, sae, stats, latent, tokenizer=tokenizer, n=5)
        density = float(stats.density[latent])
        print(f"\n{name}: latent {latent} (fires on {100 * density:.3g} % of the store's tokens)")
        print(format_contexts(contexts) or "(it never fires in the store)")
        if args.contexts_figure and contexts and not drawn:
            from toymodels.plots.lm import latent_contexts

            save(latent_contexts(contexts, latent, density=density,
                                  title=f"latent {latent}, the strongest “{name}” latent: its "
                                        f"top contexts in the store ({100 * density:.3g} % of "
                                        "tokens)"),
                  args.contexts_figure)
            print(f"wrote {args.contexts_figure}")
            drawn = True


def _lines(path: str) -> list[str]:
    """A prompt file's non-empty lines."""
    lines = [line.strip() for line in text_lines(path) if line.strip()]
    if not lines:
        raise SystemExit(f"--set: {path} has no prompts")
    return lines



def add_latent(p: argparse.ArgumentParser) -> None:
    add_sae_arguments(p)
    p.add_argument("latent", type=int, help="the latent's index")
    p.add_argument("--store", required=True, help="the store to find its max-activating tokens in")
    p.add_argument("-n", type=int, default=10, help="contexts shown (default 10)")
    p.add_argument("--figure", default=None, help="write the contexts as a PNG here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_latent(args) -> None:
    from toymodels.lm.features import (
        format_contexts,
        latent_stats,
        max_activating_contexts,
        promoted_tokens,
    )
    from toymodels.lm.store import ActivationStore

    sae = sae_of(args)
    store = ActivationStore(args.store, site=sae.metadata.get("hook_name"))
    stats = latent_stats(store, sae, n_top=args.n, progress=not args.quiet)
    if not 0 <= args.latent < sae.d_sae:
        raise SystemExit(f"latent: must lie in [0, {sae.d_sae})")
    model, tokenizer = model_of(args, sae)
    contexts = max_activating_contexts(store, sae, stats, args.latent, tokenizer=tokenizer,
                                       n=args.n)
    density = float(stats.density[args.latent])
    print(f"latent {args.latent}: fires on {100 * density:.3g} % of {stats.tokens} tokens, max "
          f"{stats.max[args.latent]:.3g}")
    promoted = None
    try:
        promoted = promoted_tokens(model, tokenizer, sae, args.latent)["promoted"]
        print("promotes: " + ", ".join(f"{t} ({v:.2f})" for t, v in promoted))
    except ValueError as err:
        print(f"promoted tokens: {err}")
    print(format_contexts(contexts) or "(it never fires in the store)")
    if args.figure and contexts:
        from toymodels.plots.lm import latent_contexts

        save(latent_contexts(contexts, args.latent, density=density, promoted=promoted),
              args.figure)
        print(f"wrote {args.figure}")
