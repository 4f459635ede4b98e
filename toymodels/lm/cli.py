"""`toymodels lm …`: the language-model commands.

    toymodels lm harvest --model all-MiniLM-L6-v2 --site blocks.3.hook_resid_post --out acts/minilm
    toymodels lm info acts/minilm
    toymodels lm train-sae acts/minilm --out results/sae --grid l1_coefficient=2,5
    toymodels lm evaluate | top-features | latent | contrast results/sae --point l1_coefficient=5 …

The analysis commands read which model and site an SAE belongs to from its sweep's results (the
store's description, `toymodels.lm.saes.sae_from_sweep`) and load a causal LM with its LM head.

`register(subparsers)` adds the `lm` group to the main parser; each command is a (name, help,
add_arguments, run) entry of `COMMANDS`, so a new one is one more entry. Nothing here imports
PyTorch until a command runs, so `toymodels --help` stays fast.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

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


def _save(fig, path: str) -> None:
    """Write a figure as a PNG at `path`, creating its folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)


def _add_harvest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True,
                   help="a Hugging Face model name (e.g. gpt2; downloads need a connection), a "
                        "folder save_pretrained wrote, or all-MiniLM-L6-v2 (the local copy the lm "
                        "extra installs)")
    p.add_argument("--site", action="append", required=True, metavar="SITE",
                   help="a site to keep, e.g. blocks.3.hook_resid_post; repeat it (or give a "
                        "comma-separated list) for several sites, all read in one forward pass")
    p.add_argument("--texts", default=None,
                   help="a UTF-8 file with one text per line (default: the 4,000-sentence corpus "
                        "shipped with toymodels)")
    p.add_argument("--limit", type=int, default=None,
                   help="harvest only the first LIMIT texts (e.g. to hold the rest out)")
    p.add_argument("--out", required=True,
                   help="the store folder; re-run the same command to resume a killed harvest")
    p.add_argument("--tokenizer", default=None, help="a tokenizer name or folder (default: the model's)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    p.add_argument("--max-length", type=int, default=128,
                   help="tokens per text at most; longer texts are truncated (default 128)")
    p.add_argument("--drop-special-tokens", action="store_true",
                   help="also drop [CLS], [SEP], BOS … (padding is always dropped)")
    p.add_argument("--prepend-bos", action="store_true",
                   help="put the tokenizer's BOS token first (GPT-2 as TransformerLens runs it)")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="harvest every N-th batch starting at batch I into OUT/part-I-of-N/ (run "
                        "I = 0 … N-1 in separate processes or hosts; the store is complete when "
                        "all N have finished)")
    p.add_argument("--tokens-per-shard", type=int, default=1 << 16,
                   help="tokens per shard file (default 65536): the work a killed harvest redoes")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="how activations are stored (default float32)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_harvest(args) -> None:
    from toymodels.lm.harvesting import harvest
    from toymodels.lm.texts import corpus_path

    sites = [s.strip() for arg in args.site for s in arg.split(",") if s.strip()]
    texts = args.texts or corpus_path()
    if args.limit is not None:
        texts = _text_lines(texts, limit=args.limit)
    store = harvest(args.model, sites, texts, args.out,
                    tokenizer=args.tokenizer, batch_size=args.batch_size,
                    max_length=args.max_length, drop_special_tokens=args.drop_special_tokens,
                    prepend_bos=args.prepend_bos, shard=args.shard,
                    tokens_per_shard=args.tokens_per_shard, dtype=args.dtype, device=args.device,
                    progress=False if args.quiet else None)
    print(f"{len(store)} tokens of {len(store.sites)} site(s) in {store.path}")


def _text_lines(path, *, skip: int = 0, limit: int | None = None) -> list[str]:
    """Lines `skip` … `skip + limit` of a text file, split as `harvest` splits it (at line feeds)."""
    if skip < 0 or (limit is not None and limit < 1):
        raise SystemExit("--skip must be ≥ 0 and --limit ≥ 1")
    try:
        with open(path, encoding="utf-8", newline="\n") as f:
            lines = itertools.islice(f, skip, None if limit is None else skip + limit)
            return [line.rstrip("\r\n") for line in lines]
    except OSError as err:
        raise SystemExit(f"cannot read {path}: {err}") from None


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="a store folder")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the shards")
    p.add_argument("--json", action="store_true", help="print the manifest(s) as JSON")


def _run_info(args) -> None:
    from toymodels.lm.store import ActivationStore

    store = ActivationStore(args.store, verify=not args.no_verify, partial=True)
    if args.json:
        json.dump(store.parts if len(store.parts) > 1 else store.manifest, sys.stdout, indent=1)
        print()
        return
    m = store.manifest
    done = all(p["complete"] for p in store.parts) and len(store.parts) == m["part"][1]
    print(f"{store.path}: {len(store)} tokens, {store.n_shards} shards, "
          f"{len(store.parts)} part(s){'' if done else ', UNFINISHED'}")
    print(f"  model {m['model']} ({m['architecture']}), tokenizer {m['tokenizer']}, {m['dtype']}")
    for s in store.sites:
        print(f"  {s}  d={m['d'][s]}")
    print(f"  texts: {m['texts']['count']} from {m['texts']['source']}"
          f", settings {m['settings']}")


# ------------------------------------------------------------------------------ SAEs on a store

def _value(text: str):
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


def _pairs(items, what: str) -> dict:
    out = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{what}: expected NAME=VALUE, got {item!r}")
        out[name.strip()] = value
    return out


def _add_train_sae(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", help="an activation store folder (toymodels lm harvest --out)")
    p.add_argument("--out", required=True,
                   help="the results folder (results.nc, the finished chunks); re-run the same "
                        "command to resume an interrupted sweep: finished SAEs are not retrained")
    p.add_argument("--site", default=None,
                   help="the site the SAE reads (needed when the store holds several)")
    p.add_argument("--target-site", default=None,
                   help="train a transcoder: read --site, reconstruct this site (e.g. "
                        "blocks.3.mlp.hook_in -> blocks.3.hook_mlp_out)")
    width = p.add_mutually_exclusive_group()
    width.add_argument("--expansion", type=int, default=8,
                       help="d_sae = EXPANSION × d_in (default 8)")
    width.add_argument("--d-sae", type=int, default=None, help="the number of latents")
    p.add_argument("--architecture", default="standard",
                   choices=("standard", "topk", "batchtopk", "jumprelu", "gated"),
                   help="the SAE architecture, SAELens's names (default standard)")
    p.add_argument("--k", type=int, default=None, help="latents kept per token (topk, batchtopk)")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2,…",
                   help="sweep a field over values, e.g. l1_coefficient=1,3,10 or seed=0,1 or "
                        "d_sae=384,3072; repeat for several (their product is trained)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="options",
                   help="set any other SAEConfig or TrainConfig field, e.g. "
                        "normalize_activations=expected_average_only_in, b_dec_init=mean, "
                        "schedule=warmup_decay; repeat for several")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (default 2000)")
    p.add_argument("--batch-size", type=int, default=1024, help="tokens per step (default 1024)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--log-every", type=int, default=None,
                   help="record the losses every this many steps, a divisor of steps "
                        "(default: the largest divisor up to steps / 20)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip the SHA-256 check of the store's shards when opening it")
    p.add_argument("--save-saelens", default=None, metavar="DIR",
                   help="also write every trained SAE as a SAELens folder (cfg.json + "
                        "sae_weights.safetensors, loadable with SAELens's SAE.load_from_disk) "
                        "under DIR, one sub-folder per grid point named by its values")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _fields(cls) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def _run_train_sae(args) -> None:
    import toymodels as tm
    from toymodels.lm.store import ActivationStore

    store = ActivationStore(args.store, site=args.site, target_site=args.target_site,
                            verify=not args.no_verify)
    options = {k: _value(v) for k, v in _pairs(args.options, "--set").items()}
    sae_fields, train_fields = _fields(tm.SAEConfig), _fields(tm.TrainConfig)
    unknown = sorted(set(options) - sae_fields - train_fields)
    if unknown:
        raise SystemExit(f"--set: {unknown} are neither SAEConfig nor TrainConfig fields")
    d_sae = args.d_sae if args.d_sae is not None else args.expansion * store.d_in
    config = tm.SAEConfig(d_in=store.d_in, d_sae=d_sae, architecture=args.architecture, k=args.k,
                          d_out=store.d_out,
                          **{k: v for k, v in options.items() if k in sae_fields})
    log_every = args.log_every or next(   # about 20 log points, a divisor of steps
        d for d in range(max(1, args.steps // 20), 0, -1) if args.steps % d == 0)
    train = tm.TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           log_every=log_every,
                           **{k: v for k, v in options.items() if k in train_fields})
    grid = {name: [_value(v) for v in values.split(",")]
            for name, values in _pairs(args.grid, "--grid").items()}
    ds = tm.sweep(config, grid, train, data=store, out=args.out,
                  progress=False if args.quiet else None)
    print(summary_table(ds, store).to_string(float_format=lambda v: f"{v:.4g}"))
    print(f"{ds['loss'].size} SAE(s) of {config.d_sae} latents on {len(store)} tokens of "
          f"{store.model} {', '.join(store.input_sites)}; results in {args.out}")
    if args.save_saelens:
        for folder in save_saelens(ds, args.save_saelens):
            print(f"wrote {folder}")


def save_saelens(ds, root) -> list:
    """Every SAE of a store sweep as a SAELens folder under `root`, named by its grid values
    (`l1_coefficient=3,seed=0`; `sae` for a sweep without a grid); returns the folders."""
    from toymodels.io import saelens
    from toymodels.lm.saes import sae_from_sweep

    folders = []
    for point in grid_points(ds):
        sae = sae_from_sweep(ds, point)
        name = ",".join(f"{d}={v:g}" if isinstance(v, float) else f"{d}={v}"
                        for d, v in point.items()) or "sae"
        folders.append(saelens.save(sae, Path(root) / name))
    return folders


def grid_points(ds) -> list[dict]:
    """Every grid point of a sweep as {dim: value}, in C order."""
    import itertools

    dims = list(ds["loss"].dims)
    values = [ds[d].values.tolist() if d in ds.coords else list(range(ds.sizes[d])) for d in dims]
    return [dict(zip(dims, combo)) for combo in itertools.product(*values)]


def summary_table(ds, store=None, sample: int = 1 << 16):
    """One row per SAE of a sweep: L0, FVU, MSE (means over the last logging interval) and, with
    the store, the fraction of latents that never fire on `sample` of its tokens (all of them if
    fewer) with the final parameters (`dead`), and the median latent density there.

    The trainer's own `latent_density` counts firings over its last dead_window steps while the
    parameters still move, so a latent that died during that window does not count as dead there.
    """
    import numpy as np
    import pandas as pd

    from toymodels.lm.saes import encode_rows, sae_from_sweep

    points = grid_points(ds)
    frame = pd.DataFrame([{**point, **{k: float(ds[k].sel(point)) if point else float(ds[k])
                                       for k in ("l0", "fvu", "mse")}} for point in points])
    if store is not None:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(len(store), min(sample, len(store)), replace=False))
        x = store.read(rows)
        x = x[0] if isinstance(x, tuple) else x
        density = [(encode_rows(sae_from_sweep(ds, point), x) > 0).mean(0) for point in points]
        frame["dead"] = [float(np.mean(d == 0)) for d in density]
        frame["median_density"] = [float(np.median(d)) for d in density]
    frame["diverged"] = [bool(ds["diverged"].sel(point)) if point else bool(ds["diverged"])
                         for point in points]
    dims = list(ds["loss"].dims)
    return frame.set_index(dims) if dims else frame


# ------------------------------------------------------------------------------ analysing an SAE

def _add_sae_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sae", help="a results folder of `toymodels lm train-sae` (or of tm.sweep on "
                               "an activation store)")
    p.add_argument("--point", action="append", metavar="DIM=VALUE",
                   help="which SAE of the sweep, e.g. l1_coefficient=3 (repeat per grid dim; a "
                        "dim with one value may be left out)")
    p.add_argument("--model", default=None,
                   help="the model, if not the one the SAE's store was harvested from (a name "
                        "or a folder)")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default: cpu)")


def _sae(args):
    from toymodels.lm.saes import sae_from_sweep

    return sae_from_sweep(args.sae, {k: _value(v) for k, v in _pairs(args.point, "--point").items()})


def _model(args, sae):
    from toymodels.lm.models import load_model

    name = args.model or sae.metadata.get("model_name")
    if name is None:
        raise SystemExit("--model: the SAE's results do not name a model; give one")
    return load_model(name, device=args.device, lm_head=True)


def _add_top_features(p: argparse.ArgumentParser) -> None:
    _add_sae_arguments(p)
    p.add_argument("--prompt", required=True, help="the text to read")
    p.add_argument("-k", type=int, default=5, help="latents listed per token (default 5)")
    p.add_argument("--heatmap", default="top_features.png",
                   help="where to write the token × latent heatmap (default top_features.png; "
                        "'' for none)")
    p.add_argument("--heatmap-k", type=int, default=3,
                   help="the heatmap shows every latent among some token's top HEATMAP_K "
                        "(default 3), at most 30")


def _run_top_features(args) -> None:
    from toymodels.lm.features import text_latents, top_latents
    from toymodels.plots.lm import token_latent_heatmap

    sae = _sae(args)
    model, tokenizer = _model(args, sae)
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
        _save(fig, args.heatmap)
        print(f"wrote {args.heatmap}")


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _add_contrast(p: argparse.ArgumentParser) -> None:
    _add_sae_arguments(p)
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


def _run_contrast(args) -> None:
    from toymodels.lm.features import contrast
    from toymodels.lm.texts import prompts

    sets = prompts() if not args.sets else {
        name: _lines(path) for name, path in _pairs(args.sets, "--set").items()}
    if len(sets) < 2:
        raise SystemExit("--set: give at least two prompt sets")
    sae = _sae(args)
    model, tokenizer = _model(args, sae)
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

        _save(contrast_strips(table, activations, statistic=args.statistic), args.figure)
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

            _save(latent_contexts(contexts, latent, density=density,
                                  title=f"latent {latent}, the strongest “{name}” latent: its "
                                        f"top contexts in the store ({100 * density:.3g} % of "
                                        "tokens)"),
                  args.contexts_figure)
            print(f"wrote {args.contexts_figure}")
            drawn = True


def _lines(path: str) -> list[str]:
    """A prompt file's non-empty lines."""
    lines = [line.strip() for line in _text_lines(path) if line.strip()]
    if not lines:
        raise SystemExit(f"--set: {path} has no prompts")
    return lines


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    _add_sae_arguments(p)
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


def _run_evaluate(args) -> None:
    import numpy as np

    from toymodels.lm.splice import splice_effects
    from toymodels.lm.texts import corpus_path, prompts

    sae = _sae(args)
    if args.prompts:
        texts = [t for ps in prompts().values() for t in ps][args.skip:]
        texts = texts[:args.limit] if args.limit else texts
    else:
        texts = [t for t in _text_lines(args.texts or corpus_path(), skip=args.skip,
                                        limit=args.limit) if t.strip()]
    if not texts:
        raise SystemExit("--texts: no texts left to evaluate on")
    model, tokenizer = _model(args, sae)
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


def _add_latent(p: argparse.ArgumentParser) -> None:
    _add_sae_arguments(p)
    p.add_argument("latent", type=int, help="the latent's index")
    p.add_argument("--store", required=True, help="the store to find its max-activating tokens in")
    p.add_argument("-n", type=int, default=10, help="contexts shown (default 10)")
    p.add_argument("--figure", default=None, help="write the contexts as a PNG here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_latent(args) -> None:
    from toymodels.lm.features import (
        format_contexts,
        latent_stats,
        max_activating_contexts,
        promoted_tokens,
    )
    from toymodels.lm.store import ActivationStore

    sae = _sae(args)
    store = ActivationStore(args.store, site=sae.metadata.get("hook_name"))
    stats = latent_stats(store, sae, n_top=args.n, progress=not args.quiet)
    if not 0 <= args.latent < sae.d_sae:
        raise SystemExit(f"latent: must lie in [0, {sae.d_sae})")
    model, tokenizer = _model(args, sae)
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

        _save(latent_contexts(contexts, args.latent, density=density, promoted=promoted),
              args.figure)
        print(f"wrote {args.figure}")


#: (name, help, add_arguments, run): one entry per `toymodels lm` command.
COMMANDS = [
    ("harvest", "run a model over texts and store its activations at named sites",
     _add_harvest, _run_harvest),
    ("info", "describe a store: model, sites, tokens, shards (checks every shard)",
     _add_info, _run_info),
    ("train-sae", "train SAEs (or transcoders) on a store: one sweep, resumable",
     _add_train_sae, _run_train_sae),
    ("evaluate", "splice an SAE into its model: reconstruction, downstream metrics, dead latents",
     _add_evaluate, _run_evaluate),
    ("top-features", "a prompt's top SAE latents per token, printed and as a heatmap",
     _add_top_features, _run_top_features),
    ("latent", "one latent: its density, max-activating contexts in a store, promoted tokens",
     _add_latent, _run_latent),
    ("contrast", "which latents separate prompt sets (e.g. happy / angry / neutral), with FDR",
     _add_contrast, _run_contrast),
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
