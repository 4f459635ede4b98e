"""SAE universality on a real model: do SAEs of every width and seed learn the same features of
all-MiniLM-L6-v2's residual stream?

The study "Sparse Autoencoder Universality: under what conditions are learned features
consistent?" trains SAEs at dictionary ratios 1:1 … 1:32 with several seeds and compares every
pair by the mean max cosine of their decoders (both ways) and by the max correlation of their
latents' activations on shared inputs, against a random baseline (≈ 0.15; same-ratio pairs ≈ 0.87,
1:1 least consistent). `experiments/sae_universality.toml` runs it on ground truth; this script
runs it on MiniLM's block-3 residual stream (d_in = 384), reduced to minutes on 2 CPU cores:

- SAEs: standard, d_sae = r × 384 for r in `--ratios` (1 … 32), `--seeds` seeds each, one sweep
  (`tm.sweep` over d_sae × seed on the activation store; every SAE sees the same batches, its
  seed sets its initialisation), l1 fixed across widths as in the ground-truth study.
- Decoder similarity: `analysis.pairwise_similarity` (mean max cosine, both ways) for every pair;
  per pair of ratios, averaged over seed pairs, leaving out each SAE against itself.
- Activation similarity: `analysis.mean_max_activation_correlation` (both ways, averaged) on
  `--inputs` shared store tokens, for same-ratio pairs of different seeds up to `--max-act-ratio`
  (the dense correlation of two 1:32 SAEs is too large for a few CPU minutes).
- Baselines: `analysis.random_baseline` (isotropic random directions, exact, the study's ≈ 0.15),
  and, for reference, the mean max cosine between two samples of store tokens of the same sizes,
  centred on the store's mean: not a chance level but how redundant the data is (a small
  templated corpus repeats words in near-identical contexts, so almost every sampled token has a
  near-twin in the other sample).
- Dead latents (never firing on 32,768 store tokens with the final parameters), and the
  same-ratio decoder similarity over live latents only: a dead latent keeps a direction training
  never shaped, and wider SAEs have more of them.

    python experiments/lm_universality.py                       # uses or makes results/lm-demo/acts
    python experiments/lm_universality.py --ground-truth results/sae_universality

Writes `OUT/sweep/` (the resumable sweep), `OUT/similarity.nc`, a table on stdout (beside the
ground-truth study's numbers, computed the same way, when `--ground-truth` names its results) and
`--figure` (default figures/lm_universality.png).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import xarray as xr

import toymodels as tm
from toymodels import analysis, lm
from toymodels.plots import style

SITE = "blocks.3.hook_resid_post"


def store_for(path: Path, limit: int) -> lm.ActivationStore:
    """The store at `path`, harvested there first (MiniLM, the corpus's first `limit` texts)."""
    if not (path / "manifest.json").exists():
        lm.harvest("all-MiniLM-L6-v2", [SITE], lm.corpus()[:limit], path, progress=False)
    return lm.ActivationStore(path, site=SITE)


def same_group_mean(S: xr.DataArray, dim: str = "ratio") -> xr.DataArray:
    """(ratio_a, ratio_b): the mean over seed pairs, each SAE against itself left out."""
    distinct = (S[f"{dim}_a"] != S[f"{dim}_b"]) | (S.seed_a != S.seed_b)
    return S.where(distinct).mean(["seed_a", "seed_b"])


def decoders_by_ratio(ds: xr.Dataset, d_in: int) -> dict[int, xr.DataArray]:
    """{ratio: W_dec (seed, latent, d_in)} of a sweep over d_sae × seed, padding dropped."""
    return {width // d_in: part.W_dec.transpose("seed", "latent", "d_in")
            for width, part in tm.split_widths(ds).items()}


def data_baseline(store: lm.ActivationStore, n_a: int, n_b: int, seed: int = 0) -> float:
    """Mean max cosine between n_a and n_b random store tokens, centred on the store's mean (as
    an SAE's b_dec centres them): a data-matched chance level for decoder similarity."""
    rng = np.random.default_rng(seed)
    mean = store.read(rng.choice(len(store), min(len(store), 16384), replace=False)).mean(0)
    rows = rng.choice(len(store), n_a + n_b, replace=len(store) < n_a + n_b)
    x = store.read(rows) - mean
    return float(analysis.mean_max_cosine(x[:n_a], x[n_a:]))


def live_latents(ds: xr.Dataset, store: lm.ActivationStore, n_inputs: int, seed: int = 0
                 ) -> dict[int, list[np.ndarray]]:
    """{ratio: per seed, which latents fire on `n_inputs` store tokens with the final
    parameters (the others are dead)}."""
    rng = np.random.default_rng(seed)
    x = store.read(np.sort(rng.choice(len(store), min(n_inputs, len(store)), replace=False)))
    return {width // store.d_in: [(lm.encode_rows(tm.SAE.from_results(part.sel(seed=s)), x) > 0)
                                  .any(0) for s in part.seed.values]
            for width, part in tm.split_widths(ds).items()}


def live_similarity(decoders: dict[int, xr.DataArray], live: dict[int, list[np.ndarray]]
                    ) -> dict[int, float]:
    """{ratio: mean over seed pairs of the decoder mean max cosine of their live latents only}:
    dead latents keep directions training never shaped, and wider SAEs have more of them."""
    out = {}
    for r, W in decoders.items():
        rows = [W.values[i][alive] for i, alive in enumerate(live[r])]
        out[r] = float(np.mean([float(analysis.mean_max_cosine(a, b))
                                for i, a in enumerate(rows) for b in rows[i + 1:]]))
    return out


def activation_similarity(ds: xr.Dataset, store: lm.ActivationStore, ratios, n_inputs: int,
                          seed: int = 0) -> dict[int, float]:
    """{ratio: mean over seed pairs of the two-way mean max activation correlation}."""
    rng = np.random.default_rng(seed)
    x = store.read(np.sort(rng.choice(len(store), n_inputs, replace=False)))
    parts = tm.split_widths(ds)
    out = {}
    for r in ratios:
        part = parts[r * store.d_in]
        acts = [lm.encode_rows(tm.SAE.from_results(part.sel(seed=s)), x)
                for s in part.seed.values]
        scores = [0.5 * (float(analysis.mean_max_activation_correlation(a, b))
                         + float(analysis.mean_max_activation_correlation(b, a)))
                  for i, a in enumerate(acts) for b in acts[i + 1:]]
        out[r] = float(np.mean(scores))
    return out


def ground_truth_table(path: Path) -> dict[int, float] | None:
    """{ratio: same-ratio decoder similarity} of the ground-truth study's sweep, if it is there."""
    results = path / "results.nc"
    if not results.exists():
        return None
    ds = tm.load_results(results)
    n_true = ds.sizes["feature"]
    S = analysis.pairwise_similarity({w // n_true: p.W_dec.transpose("seed", "latent", "d_in")
                                      for w, p in tm.split_widths(ds).items()}, dim="ratio")
    M = same_group_mean(S)
    return {int(r): float(M.sel(ratio_a=r, ratio_b=r)) for r in M.ratio_a.values}


@style.styled
def figure(M: xr.DataArray, baseline: dict, data_base: dict, ground_truth: dict | None,
           activation: dict[int, float], same_live: dict[int, float]):
    ratios = [int(r) for r in M.ratio_a.values]
    fig = style.new_figure(style.WIDTH, 4.3)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.25])
    image = left.imshow(M.values, cmap="viridis", vmin=0, vmax=1, origin="lower")
    for i in range(len(ratios)):
        for j in range(len(ratios)):
            left.text(j, i, f"{float(M.values[i, j]):.2f}", ha="center", va="center", fontsize=7,
                      color="white" if M.values[i, j] < 0.6 else "black")
    labels = [f"1:{r}" for r in ratios]
    left.set_xticks(range(len(ratios)), labels)
    left.set_yticks(range(len(ratios)), labels)
    left.set_xlabel("SAE B ratio")
    left.set_ylabel("SAE A ratio")
    left.set_title("MiniLM: decoder mean max cosine")
    fig.colorbar(image, ax=left, shrink=0.8)
    same = [float(M.sel(ratio_a=r, ratio_b=r)) for r in ratios]
    right.plot(ratios, same, "o-", color="#D55E00", label="MiniLM, same ratio (decoders)")
    right.plot(ratios, [same_live[r] for r in ratios], "^-", color="#D55E00", alpha=0.6,
               label="MiniLM, same ratio (live latents' decoders)")
    if activation:
        right.plot(list(activation), list(activation.values()), "s--", color="#D55E00",
                   alpha=0.7, label="MiniLM, same ratio (activations)")
    if ground_truth:
        right.plot(list(ground_truth), list(ground_truth.values()), "o-", color="#0072B2",
                   label="ground truth (ratio of its 128 true features)")
    right.plot(ratios, [baseline[r] for r in ratios], ":", color="0.4",
               label="random directions (384-d)")
    right.plot(ratios, [data_base[r] for r in ratios], "-.", color="0.4",
               label="two samples of MiniLM tokens (centred)")
    right.set_xscale("log", base=2)
    right.set_xticks(ratios, labels)
    right.set_ylim(0, 1.02)
    right.set_xlabel("dictionary ratio d_sae : d_in")
    right.set_ylabel("similarity between seeds")
    right.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2,
                 frameon=False)
    right.set_title("Same-ratio agreement against chance")
    return fig


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", default="results/lm-demo/acts",
                   help="a MiniLM store of blocks.3.hook_resid_post (harvested if absent)")
    p.add_argument("--limit", type=int, default=3600, help="texts to harvest if it is absent")
    p.add_argument("--out", default="results/lm-universality")
    p.add_argument("--ratios", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--l1", type=float, default=2.0)
    p.add_argument("--inputs", type=int, default=4096, help="tokens for activation correlation")
    p.add_argument("--max-act-ratio", type=int, default=8,
                   help="activation correlation for ratios up to this one")
    p.add_argument("--ground-truth", default="results/sae_universality",
                   help="the ground-truth study's results folder, for its numbers beside")
    p.add_argument("--figure", default="figures/lm_universality.png")
    args = p.parse_args(argv)

    start = time.perf_counter()
    store = store_for(Path(args.store), args.limit)
    d = store.d_in
    sae = tm.SAEConfig(d_in=d, d_sae=d, l1_coefficient=args.l1)
    train = tm.TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                           log_every=args.steps // 10)
    ds = tm.sweep(sae, {"d_sae": [r * d for r in args.ratios], "seed": args.seeds}, train,
                  data=store, out=str(Path(args.out) / "sweep"))
    trained = time.perf_counter() - start

    decoders = decoders_by_ratio(ds, d)
    S = analysis.pairwise_similarity(decoders, dim="ratio")
    M = same_group_mean(S)
    baseline = {r: analysis.random_baseline(r * d, r * d, d) for r in args.ratios}
    data_base = {r: data_baseline(store, r * d, r * d) for r in args.ratios}
    activation = activation_similarity(ds, store, [r for r in args.ratios
                                                   if r <= args.max_act_ratio], args.inputs)
    ground_truth = ground_truth_table(Path(args.ground_truth))
    live = live_latents(ds, store, 1 << 15)
    dead = {r: float(np.mean([np.mean(~alive) for alive in v])) for r, v in live.items()}
    same_live = live_similarity(decoders, live)
    xr.Dataset({"similarity": S, "mean_similarity": M}).to_netcdf(
        Path(args.out) / "similarity.nc", engine="h5netcdf")

    table = tm.split_widths(ds)
    print(f"{len(args.ratios)} widths × {len(args.seeds)} seeds on {len(store)} tokens of MiniLM "
          f"{SITE}, {args.steps} steps of {args.batch_size}: trained in {trained:.0f} s")
    print("ratio    L0     FVU   dead  same-ratio  live only  activations  random dirs  "
          "token samples" + ("  ground truth" if ground_truth else ""))
    for r in args.ratios:
        part = table[r * d]
        act = f"{activation[r]:11.3f}" if r in activation else f"{'–':>11}"
        gt = f"  {ground_truth[r]:12.3f}" if ground_truth and r in ground_truth else ""
        print(f"1:{r:<4} {float(part.l0.mean()):6.1f} {float(part.fvu.mean()):6.3f} "
              f"{dead[r]:6.3f} {float(M.sel(ratio_a=r, ratio_b=r)):10.3f} {same_live[r]:10.3f} "
              f"{act}  "
              f"{baseline[r]:11.3f} {data_base[r]:13.3f}{gt}")
    print("decoder mean max cosine between ratios (seed pairs averaged):")
    print(M.to_pandas().round(3).to_string())
    if args.figure:
        figure(M, baseline, data_base, ground_truth, activation, same_live).savefig(
            args.figure, dpi=150)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
