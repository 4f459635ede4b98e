"""The SAE universality study on ground truth: do SAEs of every width and seed learn the same
features, and do they agree *because* they found the true ones?

The study "Sparse Autoencoder Universality: under what conditions are learned features
consistent?" trains SAEs at dictionary ratios 1:1 … 1:32 with several seeds each, compares every
pair by the mean max cosine of their decoders (`analysis.mean_max_cosine`) and sets the scores
against random directions of the same shapes (`analysis.random_baseline`). On a language model
the true features are unknown; on `GroundTruth` data they are known, so each SAE's agreement with
the others can be put beside its recovery of the truth (MMCS, MCC), SAE by SAE and latent by
latent.

- `universality_table(ds)`: every number the figures show, one Dataset, computed from the sweep
  alone (activation scores encode one batch of inputs drawn from the sweep's own GroundTruth).
- `universality_similarity(ds)`: the pairwise decoder similarity over widths × seeds beside the
  random baseline.
- `universality_vs_recovery(ds)`: agreement with the other SAEs against recovery of the truth, per
  SAE (decoders and activations) and per latent.
- `feature_split_table(ds)`: the latents of the widest SAE that split each latent of the narrowest
  (`analysis.feature_splits`), with the true feature each matches; `write_figures` saves it as
  `universality_feature_splits.csv`.

A sweep feeds them when it ran on GroundTruth over a `d_sae` grid dim of ≥ 2 widths and a `seed`
dim of ≥ 2 seeds, every other grid dim single-valued (`problems` says what is missing).

Activations are sparse (a few latents of thousands fire per input), so latent correlations are
computed from the sparse co-firing counts, E[f_i g_k] − E f_i E g_k: O(w_a w_b + N L0_a L0_b)
per pair of SAEs instead of the O(N w_a w_b) of a dense matrix product: all 300 pairs of a
6-width × 4-seed grid (up to 4,096 latents) on 8,192 inputs take under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from toymodels import analysis
from toymodels.plots import _data, style
from toymodels.plots.sae import _is_sae, _only

__all__ = [
    "feature_split_table",
    "problems",
    "universality_similarity",
    "universality_table",
    "universality_vs_recovery",
]

WIDTH = "d_sae"
SEED = _data.SEED
#: A latent whose decoder has a cosine above this with a true feature has found it.
FOUND = 0.9
#: Shared inputs encoded for the activation scores (the rarest true features of a Sharkey-like
#: GroundTruth fire on ~0.03% of inputs: a few times in 8k).
N_INPUTS = 8192
#: Cosines held at once when reducing a correlation matrix (32 MiB of float64).
_BLOCK = 2**22
#: The universality study's reported numbers (SAEs on a language model), drawn for comparison.
STUDY = {"random baseline": 0.15, "same-ratio pairs": 0.87}


def problems(ds: xr.Dataset) -> list[str]:
    """What keeps `ds` from feeding the universality figures; empty if nothing does."""
    found = _is_sae(ds)
    if found:
        return found
    if "dictionary" not in ds or ds["dictionary"].dims != ("feature", "d_in"):
        found.append("needs one known dictionary (a GroundTruth sweep)")
    if json.loads(ds.attrs.get("data", "{}")).get("kind") != "ground_truth":
        found.append("needs GroundTruth data (the 'data' attr of kind ground_truth) to draw "
                     "shared inputs from")
    grid = _data.grid_dims(ds)
    for dim, what in ((WIDTH, "widths"), (SEED, "seeds")):
        if dim not in grid or ds.sizes[dim] < 2:
            found.append(f"needs a {dim!r} grid dim with at least 2 {what}")
    return found + _only(ds, {WIDTH, SEED})


def _ground_truth(ds: xr.Dataset):
    """The sweep's GroundTruth, rebuilt from its `data` attr and checked against `dictionary`."""
    from toymodels.sources import GroundTruth

    fields = json.loads(ds.attrs["data"])
    fields.pop("kind")
    truth = GroundTruth(**fields)
    if not np.allclose(truth.dictionary, ds["dictionary"].values, atol=1e-6):
        raise ValueError("the dataset's 'data' attr does not rebuild its 'dictionary' (a "
                         "GroundTruth of another version?); cannot draw its inputs")
    return truth


def _widths(ds: xr.Dataset) -> dict[int, xr.Dataset]:
    """{d_sae: (seed, latent, …) Dataset, padding dropped}, narrowest first."""
    from toymodels.widths import split_widths

    ds = _data.squeeze_grid(ds, keep=(WIDTH, SEED))
    return {w: part.transpose(SEED, ...) for w, part in sorted(split_widths(ds).items())}


class _Activations:
    """Activations on the shared inputs (one SAE's latents, or the true coefficients): a sparse
    (batch, d) matrix with each column's mean and spread."""

    def __init__(self, matrix: sp.spmatrix):
        self.matrix = sp.csc_matrix(matrix, dtype=np.float64)
        self.n = self.matrix.shape[0]
        self.mean = np.asarray(self.matrix.mean(axis=0)).ravel()
        square = np.asarray(self.matrix.multiply(self.matrix).mean(axis=0)).ravel()
        # Exact constancy (max = min, implicit zeros included), as
        # `analysis.max_activation_correlation` tests it: rounding would give a dead latent a
        # tiny spread, and so a direction.
        constant = (self.matrix.max(axis=0).toarray().ravel()
                    == self.matrix.min(axis=0).toarray().ravel())
        self.sd = np.where(constant, 0.0, np.sqrt(np.maximum(square - self.mean**2, 0.0)))
        self.alive = self.sd > 0

    @classmethod
    def encoded(cls, sae, x: np.ndarray, rows: int = 2048) -> "_Activations":
        """`sae.encode(x)`, a block of rows at a time so that no dense (batch, d_sae) is held."""
        blocks = [sp.csr_matrix(np.asarray(sae.encode(x[i:i + rows])))
                  for i in range(0, len(x), rows)]
        return cls(sp.vstack(blocks))


def _max_correlations(a: _Activations, b: _Activations) -> tuple[np.ndarray, np.ndarray]:
    r"""(max_k ρ_ik, max_i ρ_ik) with ρ_ik = corr(a_i, b_k) over the shared inputs.

    ρ_ik = (E[a_i b_k] − E a_i E b_k) / (σ_i σ_k), population moments; 0 when either latent is
    constant on the inputs (as in `analysis.max_activation_correlation`, which this equals).
    E[a_i b_k] comes from the sparse product aᵀ b; the rest is rank one, reduced in row blocks.
    """
    cross = (a.matrix.T @ b.matrix).tocsr()
    rows = max(1, _BLOCK // max(len(b.mean), 1))
    row_max = np.empty(len(a.mean))
    column_max = np.full(len(b.mean), -np.inf)
    inverse_b = np.divide(1.0, b.sd, out=np.zeros_like(b.sd), where=b.sd > 0)
    for start in range(0, len(a.mean), rows):
        block = slice(start, start + rows)
        inverse_a = np.divide(1.0, a.sd[block], out=np.zeros_like(a.sd[block]),
                              where=a.sd[block] > 0)
        cov = cross[block].toarray() / a.n - np.outer(a.mean[block], b.mean)
        rho = cov * inverse_a[:, None] * inverse_b[None, :]
        row_max[block] = rho.max(axis=1)
        column_max = np.maximum(column_max, rho.max(axis=0))
    return row_max, column_max


def _alive_mean(values: np.ndarray, alive: np.ndarray) -> float:
    return float(values[alive].mean()) if alive.any() else np.nan


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
      dead_fraction: latents with zero density in the final training window (`latent_density`).
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
    parts = _widths(ds)
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
        scores["dead_fraction"][i] = (part["latent_density"].values == 0).mean(axis=-1)
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
    truth = _ground_truth(ds)
    c = np.asarray(truth.coefficients(jax.random.key(input_seed), int(n_inputs)), np.float64)
    x = (c @ truth.dictionary.astype(np.float64)).astype(np.float32)
    from toymodels.sae.model import SAE

    acts = {}
    for i, (width, part) in enumerate(parts.items()):
        for s in np.flatnonzero(~diverged[i]):
            acts[width, s] = _Activations.encoded(SAE.from_results(part.isel({SEED: s})), x)
    coefficients = _Activations(sp.csc_matrix(c))
    keys = [(w, s) for w in parts for s in range(diverged.shape[1])]
    n = len(keys)
    pairs = np.full((n, n), np.nan)
    recovery = np.full(n, np.nan)
    for i, a in enumerate(keys):
        if a not in acts:
            continue
        pairs[i, i] = 1.0 if acts[a].alive.any() else np.nan
        recovery[i] = _alive_mean(_max_correlations(coefficients, acts[a])[0],
                                  coefficients.alive)
        for j, b in enumerate(keys[i + 1:], start=i + 1):
            if b in acts:
                row, column = _max_correlations(acts[a], acts[b])
                pairs[i, j] = pairs[j, i] = 0.5 * (_alive_mean(row, acts[a].alive)
                                                   + _alive_mean(column, acts[b].alive))
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


def distinct(pairs: xr.DataArray) -> xr.DataArray:
    """`pairs` (d_sae_a, seed_a, d_sae_b, seed_b) with each SAE against itself set to NaN."""
    same = (pairs[f"{WIDTH}_a"] == pairs[f"{WIDTH}_b"]) & (pairs[f"{SEED}_a"] == pairs[f"{SEED}_b"])
    return pairs.where(~same)


def by_width(pairs: xr.DataArray) -> xr.DataArray:
    """(d_sae_a, d_sae_b): the mean over seed pairs, each SAE against itself left out."""
    return distinct(pairs).mean([f"{SEED}_a", f"{SEED}_b"])


def per_sae(pairs: xr.DataArray) -> xr.Dataset:
    """Each SAE's mean score with the other seeds of its width and with the SAEs of other widths.

    Returns a Dataset (d_sae, seed) with `same_width` and `other_widths`.
    """
    pairs = distinct(pairs)
    same = pairs[f"{WIDTH}_a"] == pairs[f"{WIDTH}_b"]
    rename = {f"{WIDTH}_a": WIDTH, f"{SEED}_a": SEED}
    reduce = [f"{WIDTH}_b", f"{SEED}_b"]
    return xr.Dataset({"same_width": pairs.where(same).mean(reduce).rename(rename),
                       "other_widths": pairs.where(~same).mean(reduce).rename(rename)})


def _ratio_label(ratio: float) -> str:
    return f"1:{ratio:g}"


#: The sparsity coefficient each architecture reads (named in figure titles).
_COEFFICIENT = {"standard": "l1_coefficient", "gated": "l1_coefficient",
                "jumprelu": "l0_coefficient", "topk": "k", "batchtopk": "k",
                "matryoshka_batchtopk": "k"}


def _title(ds: xr.Dataset, table: xr.Dataset) -> str:
    data = json.loads(ds.attrs.get("data", "{}"))
    cfg = json.loads(ds.attrs["sae"])
    name = _COEFFICIENT[cfg["architecture"]]
    return (f"{cfg['architecture']} SAEs on ground truth: d_in = {table.attrs['d_in']}, "
            f"{table.attrs['n_features']} true features, ~{data.get('mean_active', 0):g} "
            f"active; {table.sizes[SEED]} seeds per width, {name.replace('_', ' ')} "
            f"{cfg[name]:g}")


def _limits(table: xr.Dataset) -> tuple[float, float]:
    low = min(float(table["baseline"].min()), float(distinct(table["decoder_similarity"]).min()))
    return np.floor(low * 10) / 10, 1.0


@style.styled
def universality_similarity(ds: xr.Dataset, table: xr.Dataset | None = None) -> Figure:
    """The pairwise decoder similarity of SAEs over widths × seeds, beside the random baseline.

    Left: every pair of SAEs (mean max cosine of decoders; width-major, seed-minor; each SAE
    against itself blank). Middle: averaged over seed pairs per pair of widths, with the random
    baseline for the same shapes under each value. Right: per width, the pairs of seeds of that
    width and the mean over pairs with other widths, the baseline, and the study's numbers.

    Args:
      ds: a sweep `problems` finds nothing wrong with.
      table: `universality_table(ds)` if already computed (only its decoder scores are used).
    """
    _data.require(problems(ds), "universality_similarity")
    if table is None:
        table = universality_table(ds, activations=False)
    S = table["decoder_similarity"]
    ratios = table["ratio"].values
    n_widths, n_seeds = table.sizes[WIDTH], table.sizes[SEED]
    low, high = _limits(table)
    fig = style.new_figure(height=3.5)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.05, 1.0, 1.15]})
    cmap = "viridis"

    ax = axes[0]
    every = distinct(S).values.reshape(n_widths * n_seeds, n_widths * n_seeds)
    image = ax.imshow(every, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    for edge in np.arange(1, n_widths) * n_seeds - 0.5:
        ax.axhline(edge, color="white", lw=0.6)
        ax.axvline(edge, color="white", lw=0.6)
    centres = np.arange(n_widths) * n_seeds + (n_seeds - 1) / 2
    labels = [_ratio_label(r) for r in ratios]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(centres, labels, fontsize=7)
    ax.set_title(f"every pair of the {n_widths * n_seeds} SAEs\n(blocks: widths; cells: seeds)",
                 fontsize=8.5)
    ax.set_xlabel("SAE b")
    ax.set_ylabel("SAE a")

    ax = axes[1]
    mean = by_width(S).values
    ax.imshow(mean, cmap=cmap, vmin=low, vmax=high)
    base = table["baseline"].values
    for i in range(n_widths):
        for j in range(n_widths):
            dark = (mean[i, j] - low) / (high - low) < 0.6
            ax.text(j, i - 0.12, f"{mean[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                    color="white" if dark else "black")
            ax.text(j, i + 0.25, f"{base[i, j]:.2f}", ha="center", va="center", fontsize=4.8,
                    color="0.8" if dark else "0.3")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_ticks(range(n_widths), labels, fontsize=7)
    ax.set_title("seeds averaged, self-pairs out\n(small: random baseline)", fontsize=8.5)
    ax.set_xlabel("dictionary ratio b")
    ax.set_ylabel("dictionary ratio a")
    fig.colorbar(image, ax=axes[1], shrink=0.8, pad=0.03, label="mean max cosine")

    ax = axes[2]
    x = np.log2(ratios)
    rows = per_sae(S)
    same = distinct(S).where(S[f"{WIDTH}_a"] == S[f"{WIDTH}_b"])
    colors = style.mpl.colormaps["viridis"](np.linspace(0.0, 0.9, n_widths))
    for i in range(n_widths):
        values = same.isel({f"{WIDTH}_a": i, f"{WIDTH}_b": i}).values
        values = values[np.triu_indices(n_seeds, 1)]
        jitter = np.linspace(-0.12, 0.12, len(values))
        ax.scatter(x[i] + jitter, values, s=9, color=colors[i], alpha=0.8, lw=0, zorder=3)
    ax.plot(x, rows["same_width"].mean(SEED), color="black", lw=1.2, marker="o", ms=3,
            label="same ratio, other seed (dots: pairs)")
    ax.plot(x, rows["other_widths"].mean(SEED), color="#0072B2", lw=1.2, marker="s", ms=3,
            mfc="white", label="other ratios (mean)")
    ax.plot(x, np.diag(base), color="0.45", lw=1.2, ls="--",
            label="random directions, same shapes")
    for (name, value), ls in zip(STUDY.items(), (":", "-.")):
        ax.axhline(value, color="#D55E00", lw=0.9, ls=ls, label=f"study (LM): {name} {value:g}")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_xlabel("dictionary ratio d_sae / n_features")
    ax.set_ylabel("mean max cosine (decoders)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    ax.set_title("consistency per width", fontsize=8.5)
    fig.suptitle(_title(ds, table), fontsize=9.5)
    return fig


def _pearson(x, y) -> float:
    x, y = np.ravel(x), np.ravel(y)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return np.nan
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _per_sae_panel(ax, x, rows, colors, ratios, title, xlabel, ylabel) -> None:
    """Agreement (same width ●, other widths □) against a recovery score, one point per SAE."""
    for i, color in enumerate(colors):
        ax.scatter(x.isel({WIDTH: i}), rows["same_width"].isel({WIDTH: i}), s=16, color=color,
                   zorder=3, label=_ratio_label(ratios[i]))
        ax.scatter(x.isel({WIDTH: i}), rows["other_widths"].isel({WIDTH: i}), s=16,
                   facecolor="white", edgecolor=color, lw=1.0, zorder=2, marker="s")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    values = np.concatenate([np.ravel(x), np.ravel(rows["same_width"]),
                             np.ravel(rows["other_widths"])])
    low = np.floor((np.nanmin(values) - 0.01) * 20) / 20
    ax.set_xlim(low, 1.005)
    ax.set_ylim(low, 1.005)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\nr = {_pearson(x, rows['same_width']):.2f} (●, same width), "
                 f"{_pearson(x, rows['other_widths']):.2f} (□, other widths)", fontsize=7.5)


def _per_latent_panel(fig, ax, table) -> None:
    """2-D histogram: each latent's best true feature against its best match in other seeds."""
    t = table["latent_truth_cosine"].values.ravel()
    s = table["latent_seed_cosine"].values.ravel()
    ok = np.isfinite(t) & np.isfinite(s)
    t, s = t[ok], s[ok]
    edges = np.linspace(min(t.min(), s.min(), 0.0), 1.0, 41)
    counts, _, _ = np.histogram2d(t, s, bins=[edges, edges])
    mesh = ax.pcolormesh(edges, edges, np.where(counts > 0, counts, np.nan).T, cmap="magma_r",
                         norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
    bar = fig.colorbar(mesh, ax=ax, shrink=0.85, pad=0.02, label="latents")
    bar.ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    ax.plot([edges[0], 1], [edges[0], 1], color="0.6", lw=0.8, ls=":")
    found = t > FOUND
    lines = [f"cos to truth > {FOUND:g}: {found.mean():.1%} of latents,",
             f"  {np.mean(s[found] > FOUND):.1%} of them matched (> {FOUND:g}) in other seeds"]
    if (~found).any():
        lines.append(f"cos to truth ≤ {FOUND:g}: {np.mean(s[~found] > FOUND):.1%} matched")
    ax.text(0.97, 0.03, "\n".join(lines), transform=ax.transAxes, fontsize=6, va="bottom",
            ha="right")
    ax.set_aspect("equal")
    ax.set_xlabel("latent's best cosine with a true feature")
    ax.set_ylabel("its best cosine with other seeds (mean)")
    ax.set_title(f"per latent: all {int(ok.sum())} of every SAE", fontsize=7.5)


@style.styled
def universality_vs_recovery(ds: xr.Dataset, table: xr.Dataset | None = None) -> Figure:
    """Agreement between SAEs against their recovery of the true features.

    One point per SAE: its similarity to the other seeds of its width (filled) and to the SAEs of
    other widths (hollow) against (top left) its MMCS to the truth, the mean over true features
    of their best latent; (top right) the mean over its latents of their best true feature; and
    (bottom left) the same with activations: correlation between latents on shared inputs,
    against each true feature's best correlated latent. Bottom right, per latent of every SAE:
    its best cosine with a true feature against its best cosine with the other seeds' SAEs of its
    width. The titles give the Pearson r over SAEs.

    Args:
      ds: a sweep `problems` finds nothing wrong with.
      table: `universality_table(ds)` if already computed, with its activation scores.
    """
    _data.require(problems(ds), "universality_vs_recovery")
    if table is None:
        table = universality_table(ds)
    if "activation_similarity" not in table:
        raise ValueError("universality_vs_recovery: the table has no activation scores; compute "
                         "it with universality_table(ds, activations=True)")
    ratios = table["ratio"].values
    colors = style.mpl.colormaps["viridis"](np.linspace(0.0, 0.9, len(ratios)))
    fig = style.new_figure(height=7.2)
    axes = fig.subplots(2, 2)
    decoders = per_sae(table["decoder_similarity"])
    _per_sae_panel(axes[0, 0], table["mmcs"], decoders, colors, ratios,
                   "how much of the truth the SAE found (per SAE)",
                   "MMCS: true features' best latent (mean)", "decoder similarity to other SAEs")
    _per_sae_panel(axes[0, 1], table["latent_mmcs"], decoders, colors, ratios,
                   "how much of the SAE is the truth (per SAE)",
                   "latents' best true feature (mean)", "decoder similarity to other SAEs")
    _per_sae_panel(axes[1, 0], table["activation_recovery"],
                   per_sae(table["activation_similarity"]), colors, ratios,
                   "the same with activations on shared inputs",
                   "true features' best latent correlation (mean)",
                   "activation similarity to other SAEs")
    axes[0, 0].legend(title="ratio", fontsize=6.5, title_fontsize=7, frameon=False,
                      loc="lower right", handletextpad=0.1, labelspacing=0.25)
    _per_latent_panel(fig, axes[1, 1], table)
    fig.suptitle("Do SAEs agree because they found the truth?\n" + _title(ds, table),
                 fontsize=9)
    return fig


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
    parts = _widths(ds)
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
    truth = _ground_truth(ds)
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
