"""`toymodels lm train-sae`: one resumable sweep of SAEs on a store, the table it prints and
the SAELens folders it writes (`summary_table`, `save_saelens`: usable on any store sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path

from toymodels.lm.commands._args import parse_pairs, parse_value
from toymodels.sae.config import Architecture


def add_train_sae(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--architecture", default="standard", choices=Architecture.__args__,
                   help="the SAE architecture, SAELens's names (default standard)")
    p.add_argument("--k", type=int, default=None,
                   help="latents kept per token (topk, batchtopk, matryoshka_batchtopk)")
    p.add_argument("--matryoshka-widths", default=None, metavar="W1,W2,…",
                   help="nested prefix widths ending at d_sae (matryoshka_batchtopk; optional "
                        "for standard), e.g. 96,384,3072")
    p.add_argument("--grid", action="append", metavar="FIELD=V1,V2,…",
                   help="sweep a field over values, e.g. l1_coefficient=1,3,10 or seed=0,1 or "
                        "d_sae=384,3072; repeat for several (their product is trained)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", dest="options",
                   help="set any other SAEConfig or TrainConfig field, e.g. "
                        "normalize_activations=expected_average_only_in, b_dec_init_method=mean, "
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


def run_train_sae(args) -> None:
    import toymodels as tm
    from toymodels.lm.store import ActivationStore

    store = ActivationStore(args.store, site=args.site, target_site=args.target_site,
                            verify=not args.no_verify)
    options = {k: parse_value(v) for k, v in parse_pairs(args.options, "--set").items()}
    sae_fields, train_fields = _fields(tm.SAEConfig), _fields(tm.TrainConfig)
    unknown = sorted(set(options) - sae_fields - train_fields)
    if unknown:
        raise SystemExit(f"--set: {unknown} are neither SAEConfig nor TrainConfig fields")
    d_sae = args.d_sae if args.d_sae is not None else args.expansion * store.d_in
    if args.matryoshka_widths is not None:
        options["matryoshka_widths"] = tuple(parse_value(w) for w in
                                             args.matryoshka_widths.split(","))
    config = tm.SAEConfig(d_in=store.d_in, d_sae=d_sae, architecture=args.architecture, k=args.k,
                          d_out=store.d_out,
                          **{k: v for k, v in options.items() if k in sae_fields})
    log_every = args.log_every or next(   # about 20 log points, a divisor of steps
        d for d in range(max(1, args.steps // 20), 0, -1) if args.steps % d == 0)
    train = tm.TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           log_every=log_every,
                           **{k: v for k, v in options.items() if k in train_fields})
    grid = {name: [parse_value(v) for v in values.split(",")]
            for name, values in parse_pairs(args.grid, "--grid").items()}
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

    The trainer's `training_latent_density` counts firings over its last dead_feature_window steps
    while the parameters still move, so a latent that died during that window is not dead there.
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

