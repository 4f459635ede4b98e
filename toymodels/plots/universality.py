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

This module draws the figures and is the study's public face; the numbers are computed in
`_universality_table`, on the helpers in `_universality` that both use.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, NullFormatter

from toymodels.plots import _data, style
from toymodels.plots._universality import FOUND, SEED, WIDTH, by_width, distinct, per_sae, problems
from toymodels.plots._universality_table import feature_split_table, universality_table

__all__ = [
    "feature_split_table",
    "problems",
    "universality_similarity",
    "universality_table",
    "universality_vs_recovery",
]

#: The universality study's reported numbers (SAEs on a language model), drawn for comparison.
STUDY = {"random baseline": 0.15, "same-ratio pairs": 0.87}


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
