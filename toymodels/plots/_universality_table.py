"""The universality study's numbers, computed from a sweep alone: `universality_table` (every
score the figures show) and `feature_split_table` (which latents of the widest SAE split each
latent of the narrowest). Activation scores encode one batch of inputs drawn from the sweep's own
GroundTruth (`_universality.ground_truth_of`)."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from toymodels import analysis
from toymodels.plots import _data
from toymodels.plots._universality import (
    FOUND,
    N_INPUTS,
    SEED,
    WIDTH,
    Activations,
    alive_mean,
    ground_truth_of,
    max_correlations,
    problems,
    split_by_width,
)


def universality_table(ds: xr.Dataset, *, activations: bool = True, n_inputs: int = N_INPUTS,
                       input_seed: int = 0) -> xr.Dataset:
    r"""Every score of the universality study for a sweep over d_sae × seed on GroundTruth.

    SAE pairs (dims d_sae_a, seed_a, d_sae_b, seed_b; a self-pair scores 1):
      decoder_similarity: `mean_max_cosine` of the two decoders, ½ [mean_i max_k cos + mean_k
        max_i cos];
      activation_similarity: ½ [mean_i max_k ρ_ik + mean_k max_i ρ_ik], ρ the Pearson
        correlation of latent i of A and latent k of B over the shared inputs, each mean over the
        latents that are not constant there (`max_activation_correlation`, dead latents left out).
    Width pairs (d_sae_a, d_sae_b):
      baseline: `random_baseline(d_sae_a, d_sae_b, d_in)`, decoder_similarity for random unit
        directions (exact).
    SAEs (d_sae, seed):
      mmcs, mcc, recovered: the decoder against the true dictionary (`mmcs`, `mcc`,
        `fraction_recovered` above cos 0.9): how much of the truth the SAE found;
      latent_mmcs: (1/d_sae) Σ_i max_j cos(W_dec,i, d_j), the mean over its latents of their best
        true feature (`mmcs(truth, W_dec)`): how much of the SAE is the truth;
      activation_recovery: (1/n_true) Σ_j max_k corr(c_j, f_k), each true feature's coefficient
        against its best latent, over the features that vary on the inputs (the activation MMCS);
      dead_fraction: latents with zero density in the final training window (`training_latent_density`).
    Latents (d_sae, seed, latent; NaN beyond each width):
      latent_truth_cosine: max_j cos(W_dec,i, d_j), the latent's best true feature;
      latent_seed_cosine: max_k cos(W_dec,i, W'_dec,k) averaged over the other seeds' SAEs of
        the same width.
    A diverged SAE's scores are NaN. The coordinate `ratio` (d_sae) is d_sae / n_features.

    Args:
      ds: an SAE sweep on GroundTruth over d_sae (≥ 2 widths) and seed (≥ 2), as
        `toymodels.sweep` or `toymodels.load_results` gives it.
      activations: compute the activation scores (the cost is the encoding of n_inputs inputs by
        every SAE, and one sparse product per pair); False leaves them out.
      n_inputs: shared inputs drawn from the sweep's GroundTruth, ≥ 2.
      input_seed: their key, `jax.random.key(input_seed)`.

    Returns:
      An xarray.Dataset.
    """
    _data.require(problems(ds), "universality_table")
    if not isinstance(n_inputs, (int, np.integer)) or n_inputs < 2:
        raise ValueError(f"universality_table: n_inputs must be an integer ≥ 2, got {n_inputs!r}")
    truth = ds["dictionary"].values
    parts = split_by_width(ds)
    widths = list(parts)
    seeds = parts[widths[0]][SEED].values
    n_seeds, width_max, d_in = len(seeds), max(widths), ds.sizes["d_in"]
    diverged = np.stack([part["diverged"].values for part in parts.values()])

    decoders = {w: part["W_dec"] for w, part in parts.items()}
    similarity = analysis.pairwise_similarity(decoders, dim=WIDTH).values
    baseline = np.array([[analysis.random_baseline(a, b, d_in) for b in widths] for a in widths])

    scores = {name: np.full((len(widths), n_seeds), np.nan) for name in
              ("mmcs", "mcc", "recovered", "latent_mmcs", "dead_fraction")}
    latent_truth = np.full((len(widths), n_seeds, width_max), np.nan)
    latent_seed = np.full((len(widths), n_seeds, width_max), np.nan)
    for i, (w, part) in enumerate(parts.items()):
        W = part["W_dec"].values                                      # (seed, w, d_in)
        scores["mmcs"][i] = np.asarray(analysis.mmcs(W, truth))
        # A diverged SAE may hold NaNs, which the Hungarian matching refuses.
        scores["mcc"][i, ~diverged[i]] = analysis.mcc(W[~diverged[i]], truth)
        scores["recovered"][i] = np.asarray(analysis.fraction_recovered(W, truth, FOUND))
        scores["dead_fraction"][i] = (part["training_latent_density"].values == 0).mean(axis=-1)
        latent_truth[i, :, :w] = np.asarray(analysis.max_cosine(truth, W))
        scores["latent_mmcs"][i] = latent_truth[i, :, :w].mean(axis=-1)
        # [j, s]: each latent of seed s's best match among seed j's latents.
        cross = np.asarray(analysis.max_cosine(W[:, None], W[None, :]))
        others = (~np.eye(n_seeds, dtype=bool) & ~diverged[i][:, None])[:, :, None]
        with np.errstate(invalid="ignore"):
            latent_seed[i, :, :w] = np.where(others, cross, 0).sum(0) / others.sum(0)

    pair_dims = (f"{WIDTH}_a", f"{SEED}_a", f"{WIDTH}_b", f"{SEED}_b")
    variables = {
        "decoder_similarity": (pair_dims, similarity),
        "baseline": ((f"{WIDTH}_a", f"{WIDTH}_b"), baseline),
        **{name: ((WIDTH, SEED), value) for name, value in scores.items()},
        "latent_truth_cosine": ((WIDTH, SEED, "latent"), latent_truth),
        "latent_seed_cosine": ((WIDTH, SEED, "latent"), latent_seed),
    }
    if activations:
        variables.update(_activation_scores(ds, parts, diverged, n_inputs, input_seed,
                                            pair_dims))
    n_true = ds.sizes["feature"]
    coords = {WIDTH: widths, SEED: seeds, f"{WIDTH}_a": widths, f"{SEED}_a": seeds,
              f"{WIDTH}_b": widths, f"{SEED}_b": seeds, "latent": np.arange(width_max),
              "ratio": (WIDTH, np.asarray(widths) / n_true)}
    table = xr.Dataset(variables, coords=coords,
                       attrs={"d_in": d_in, "n_features": n_true, "n_inputs": int(n_inputs),
                              "input_seed": int(input_seed)})
    return _mask_diverged(table, diverged)


def _activation_scores(ds, parts, diverged, n_inputs, input_seed, pair_dims) -> dict:
    truth = ground_truth_of(ds)
    c = np.asarray(truth.coefficients(jax.random.key(input_seed), int(n_inputs)), np.float64)
    x = (c @ truth.dictionary.astype(np.float64)).astype(np.float32)
    from toymodels.sae.model import SAE

    acts = {}
    for i, (width, part) in enumerate(parts.items()):
        for s in np.flatnonzero(~diverged[i]):
            acts[width, s] = Activations.encoded(SAE.from_results(part.isel({SEED: s})), x)
    coefficients = Activations(sp.csc_matrix(c))
    keys = [(w, s) for w in parts for s in range(diverged.shape[1])]
    n = len(keys)
    pairs = np.full((n, n), np.nan)
    recovery = np.full(n, np.nan)
    for i, a in enumerate(keys):
        if a not in acts:
            continue
        pairs[i, i] = 1.0 if acts[a].alive.any() else np.nan
        recovery[i] = alive_mean(max_correlations(coefficients, acts[a])[0],
                                  coefficients.alive)
        for j, b in enumerate(keys[i + 1:], start=i + 1):
            if b in acts:
                row, column = max_correlations(acts[a], acts[b])
                pairs[i, j] = pairs[j, i] = 0.5 * (alive_mean(row, acts[a].alive)
                                                   + alive_mean(column, acts[b].alive))
    shape = diverged.shape
    return {"activation_similarity": (pair_dims, pairs.reshape(shape + shape)),
            "activation_recovery": ((WIDTH, SEED), recovery.reshape(shape))}


def _mask_diverged(table: xr.Dataset, diverged: np.ndarray) -> xr.Dataset:
    if not diverged.any():
        return table
    ok = xr.DataArray(~diverged, dims=(WIDTH, SEED))
    for name, value in list(table.data_vars.items()):
        if WIDTH in value.dims:
            table[name] = value.where(ok)
        if f"{WIDTH}_a" in value.dims and f"{SEED}_a" in value.dims:
            side = {side: ok.rename({WIDTH: f"{WIDTH}_{side}", SEED: f"{SEED}_{side}"})
                    for side in "ab"}
            table[name] = table[name].where(side["a"] & side["b"])
    return table



def feature_split_table(ds: xr.Dataset, *, narrow: int | None = None, wide: int | None = None,
                        seed=None, n_inputs: int = N_INPUTS, input_seed: int = 0,
                        cos_threshold: float = 0.7, coact_threshold: float = 0.5
                        ) -> pd.DataFrame:
    """Which latents of a wide SAE split each latent of a narrow one, and which truth they match.

    `analysis.feature_splits` between the SAEs of widths `narrow` and `wide` (default: the
    narrowest and the widest) of one seed (default: the first), with activations on shared
    inputs from the sweep's GroundTruth, plus for each latent its best true feature:
    narrow_feature / narrow_truth_cosine and wide_feature / wide_truth_cosine (decoder cosines).
    On ground truth a "split" latent's children are usually copies of the same true feature.

    Returns:
      A pandas DataFrame, one row per (narrow latent, wide child), as `feature_splits` gives it.
    """
    _data.require(problems(ds), "feature_split_table")
    parts = split_by_width(ds)
    narrow = min(parts) if narrow is None else narrow
    wide = max(parts) if wide is None else wide
    for name, value in (("narrow", narrow), ("wide", wide)):
        if value not in parts:
            raise ValueError(f"feature_split_table: {name} must be one of the widths "
                             f"{list(parts)}, got {value!r}")
    seeds = parts[narrow][SEED].values.tolist()
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise ValueError(f"feature_split_table: seed must be one of {seeds}, got {seed!r}")
    truth = ground_truth_of(ds)
    x = np.asarray(truth.sample(jax.random.key(input_seed), int(n_inputs)))
    from toymodels.sae.model import SAE

    saes = {w: SAE.from_results(parts[w].sel({SEED: seed})) for w in (narrow, wide)}
    table = analysis.feature_splits(saes[narrow].W_dec, saes[wide].W_dec,
                                    np.asarray(saes[narrow].encode(x)),
                                    np.asarray(saes[wide].encode(x)),
                                    cos_threshold=cos_threshold, coact_threshold=coact_threshold)
    for side, w in (("narrow", narrow), ("wide", wide)):
        cosines = _cosines(saes[w].W_dec, truth.dictionary)
        index = table[f"{side}_latent"].to_numpy()
        table[f"{side}_feature"] = cosines.argmax(axis=1)[index]
        table[f"{side}_truth_cosine"] = cosines.max(axis=1)[index]
    table.insert(0, "seed", seed)
    table.insert(0, "d_sae_wide", wide)
    table.insert(0, "d_sae_narrow", narrow)
    return table


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    def unit(x):
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    return unit(np.asarray(a, np.float64)) @ unit(np.asarray(b, np.float64)).T
