"""Figures of SAE sweeps: recovery of a known dictionary, latent densities, and the ARENA picture.

- `sae_recovery`: MMCS and MCC against the true dictionary over the sparsity coefficient ×
  dictionary ratio d_sae / n_features (Sharkey et al. 2022's sweep), with L0 beside them.
- `latent_density`: histograms of log₁₀ latent firing density in the final training window
  (`training_latent_density`), dead latents counted apart.
- `sae_toy_directions`: a 2-D toy model's feature directions with the decoder directions of the
  SAEs trained on its hidden activations drawn over them, one row per dataset (ARENA 1.3.1; with
  and without resampling).

An SAE sweep's Dataset carries its data's dictionary (`dictionary`), so each figure is a function
of the Dataset alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

#: The grid dims that hold a sparsity coefficient, by architecture (topk's sparsity is k).
COEFFICIENT_DIMS = ("l1_coefficient", "l0_coefficient", "k")
#: Latents whose decoder row has a cosine above this with a true feature count as recovering it.
RECOVERED = 0.9
#: Decoder directions of latents that fired less often than this are drawn faded (dead).
DEAD_DENSITY = 1e-6


def sae_config(ds: xr.Dataset) -> dict:
    """The sweep's SAEConfig as a dict (the `sae` attr `sweep` writes)."""
    return json.loads(ds.attrs["sae"])


def _is_sae(ds) -> list[str]:
    if not isinstance(ds, xr.Dataset) or "loss" not in ds:
        return ["not a sweep result"]
    if "sae" not in ds.attrs:
        return ["not an SAE sweep (no 'sae' attr)"]
    return []


def _coefficient_dim(ds: xr.Dataset) -> str | None:
    return next((d for d in COEFFICIENT_DIMS if d in _data.grid_dims(ds) and ds.sizes[d] > 1), None)


def _only(ds: xr.Dataset, allowed) -> list[str]:
    return [f"grid dim {d!r} has {ds.sizes[d]} values; select one first"
            for d in _data.grid_dims(ds) if d not in allowed and ds.sizes[d] > 1]


def recovery_problems(ds: xr.Dataset) -> list[str]:
    found = _is_sae(ds)
    if found:
        return found
    if "dictionary" not in ds or ds["dictionary"].dims != ("feature", "d_in"):
        found.append("needs one known dictionary (a GroundTruth sweep)")
    coefficient = _coefficient_dim(ds)
    if coefficient is None:
        found.append(f"needs a grid dim over one of {COEFFICIENT_DIMS}")
    return found + _only(ds, {coefficient, "d_sae", _data.SEED})


def _width_table(ds: xr.Dataset, coefficient: str) -> xr.Dataset:
    """MMCS, MCC, recovered fraction and L0 over (d_sae, coefficient), seeds averaged."""
    truth = ds["dictionary"].values
    parts = tm_split(ds)
    rows = []
    for width, part in parts.items():
        m = analysis.mmcs(part["W_dec"], truth)
        c = analysis.mcc(part["W_dec"], truth)
        recovered = analysis.fraction_recovered(part["W_dec"], truth, threshold=RECOVERED)
        table = xr.Dataset({"mmcs": m, "mcc": c, "recovered": recovered, "l0": part["l0"]})
        table = table.where(~part["diverged"])
        if _data.SEED in table.dims:
            table = table.mean(_data.SEED)
        rows.append(table.expand_dims(d_sae=[width]))
    table = xr.concat(rows, "d_sae")
    keep = {"d_sae", coefficient}
    return table.isel({d: 0 for d in table.dims if d not in keep})


def tm_split(ds: xr.Dataset) -> dict[int, xr.Dataset]:
    """{d_sae: Dataset} of a sweep, over widths or of one width."""
    if "d_sae" in ds.dims:
        from toymodels.widths import split_widths

        return split_widths(ds)
    return {int(sae_config(ds)["d_sae"]): ds}


@style.styled
def sae_recovery(ds: xr.Dataset) -> Figure:
    """Recovery of the true dictionary over sparsity coefficient × dictionary ratio.

    Args:
      ds: an SAE sweep on `GroundTruth` over a sparsity coefficient (l1_coefficient,
        l0_coefficient or k) and optionally d_sae and seed (averaged).
    """
    _data.require(recovery_problems(ds), "sae_recovery")
    coefficient = _coefficient_dim(ds)
    table = _width_table(ds, coefficient).transpose("d_sae", coefficient)
    n_true = ds.sizes["feature"]
    ratio = table["d_sae"].values / n_true
    x = table[coefficient].values
    fig = style.new_figure(height=3.3)
    axes = fig.subplots(1, 4)
    panels = [("mmcs", "MMCS (mean max cosine)", "viridis", (0, 1)),
              ("mcc", "MCC (one-to-one, Hungarian)", "viridis", (0, 1)),
              ("recovered", f"features with max cos > {RECOVERED:g}", "viridis", (0, 1)),
              ("l0", "L0 (latents per input)", "magma", None)]
    log_x = coefficient != "k"
    for ax, (name, title, cmap, limits) in zip(axes, panels):
        values = table[name].values
        xe = style.log_edges(x) if log_x else _lin_edges(x)
        ye = style.log_edges(ratio)
        vmin, vmax = limits if limits else (np.nanmin(values), np.nanmax(values))
        mesh = ax.pcolormesh(xe, ye, values[np.argsort(ratio)][:, np.argsort(x)], cmap=cmap,
                             vmin=vmin, vmax=vmax)
        if log_x:
            ax.set_xscale("log")
        ax.set_yscale("log", base=2)
        ax.set_xticks(np.sort(x), [f"{v:g}" for v in np.sort(x)], rotation=45 if len(x) > 4 else 0)
        ax.set_yticks(np.sort(ratio), [_ratio(r) for r in np.sort(ratio)])
        ax.minorticks_off()
        ax.set_xlabel(coefficient.replace("_", " "))
        ax.set_title(title, fontsize=8.5)
        fig.colorbar(mesh, ax=ax, shrink=0.85, pad=0.02)
        for (i, r), (j, v) in ((a, b) for a in enumerate(np.sort(ratio))
                               for b in enumerate(np.sort(x))):
            value = values[np.argsort(ratio)[i], np.argsort(x)[j]]
            if np.isfinite(value) and len(x) * len(ratio) <= 60:
                ax.text(v, r, f"{value:.2f}" if name != "l0" else f"{value:.0f}", ha="center",
                        va="center", fontsize=5.5, color="white" if name == "l0" or value < 0.6
                        else "black")
    axes[0].set_ylabel("dictionary ratio d_sae / n_features")
    data = json.loads(ds.attrs.get("data", "{}"))
    cfg = sae_config(ds)
    fig.suptitle(f"{cfg['architecture']} SAEs on ground truth: d_in = {data.get('d_in')}, "
                 f"{n_true} features, ~{data.get('mean_active')} active"
                 f"{' (mean of %d seeds)' % ds.sizes['seed'] if 'seed' in ds.dims else ''}")
    return fig


def _ratio(r: float) -> str:
    """A dictionary ratio as '1/4', '1', '2'."""
    return f"{r:g}" if r >= 1 else f"1/{1 / r:g}"


def _lin_edges(values) -> np.ndarray:
    v = np.sort(np.asarray(values, float))
    if len(v) == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def density_problems(ds: xr.Dataset) -> list[str]:
    found = _is_sae(ds)
    if found:
        return found
    if "training_latent_density" not in ds:
        found.append("needs a 'training_latent_density' variable")
    return found


@style.styled
def latent_density(ds: xr.Dataset) -> Figure:
    """Histograms of log₁₀ latent density, one line per value of the sparsity coefficient.

    Latents that never fired in the final window are counted as dead, beside the histogram. Other
    grid dims are reduced to their first value (the widest d_sae, the first seed).
    """
    _data.require(density_problems(ds), "latent_density")
    coefficient = _coefficient_dim(ds)
    if "d_sae" in ds.dims:
        ds = ds.sel(d_sae=ds["d_sae"].max()).isel(latent=slice(0, int(ds["d_sae"].max())))
    others = {d: 0 for d in _data.grid_dims(ds) if d != coefficient}
    ds = ds.isel(others)
    density = ds["training_latent_density"]
    if coefficient is None:
        density = density.expand_dims(point=[0])
        coefficient = "point"
    fig = style.new_figure(width=style.WIDTH * 0.75, height=3.2)
    ax = fig.subplots()
    bins = np.linspace(-6, 0, 31)
    colors = style.mpl.colormaps["viridis"](np.linspace(0, 0.9, density.sizes[coefficient]))
    for i, color in enumerate(colors):
        d = density.isel({coefficient: i}).values
        alive = d > 0
        hist, _ = np.histogram(np.log10(d[alive]), bins=bins)
        value = density[coefficient].values[i]
        ax.stairs(hist, bins, color=color, lw=1.5,
                  label=f"{coefficient.replace('_', ' ')} = {value:.3g}: "
                        f"{100 * (~alive).mean():.0f}% dead" if coefficient != "point" else
                  f"{100 * (~alive).mean():.0f}% dead")
    ax.set_xlabel("log₁₀ latent density (fraction of inputs a latent fires on)")
    ax.set_ylabel("latents")
    ax.legend(fontsize=7, frameon=False)
    cfg = sae_config(ds)
    width = int(ds["d_sae"]) if "d_sae" in ds.coords else cfg["d_sae"]
    window = json.loads(ds.attrs["sae"])["dead_feature_window"]
    ax.set_title(f"Latent density of {cfg['architecture']} SAEs, d_sae = {width} "
                 f"(over the last {window} steps)")
    return fig


def toy_problems(ds: xr.Dataset) -> list[str]:
    found = _is_sae(ds)
    if found:
        return found
    if "dictionary" not in ds or ds["dictionary"].sizes.get("d_in") != 2:
        found.append("needs a 2-D toy model's dictionary (an SAE on ToyActivations, d_in = 2)")
    return found


def _columns(ds: xr.Dataset) -> tuple[str | None, xr.Dataset]:
    """(the dim the columns run over, ds with every other grid dim at its first value).

    The columns are the sparsity coefficient's values when the grid has one (how the picture
    changes as the penalty grows, for the first toy model and seed), else the toy models.
    """
    coefficient = _coefficient_dim(ds)
    toy_dims = [d for d in _data.grid_dims(ds) if d.startswith("toy_")]
    column = coefficient or (toy_dims[0] if toy_dims else None)
    others = {d: 0 for d in _data.grid_dims(ds) if d != column}
    return column, ds.isel(others)


def _draw_directions(ax, point: xr.Dataset) -> None:
    W = point["dictionary"].values
    dec = point["W_dec"].values
    norms = np.linalg.norm(dec, axis=1, keepdims=True)
    unit = np.divide(dec, norms, out=np.zeros_like(dec), where=norms > 0)
    alive = point["training_latent_density"].values > DEAD_DENSITY
    scale = np.abs(W).max() * 1.15
    for w in W:
        ax.annotate("", xy=w, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color="0.55", lw=1.2))
    for u, a in zip(unit, alive):
        ax.plot([0, u[0] * scale], [0, u[1] * scale], color="#D55E00",
                alpha=0.9 if a else 0.35, lw=1.1, ls="-" if a else ":")
    lim = scale * 1.1
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.add_patch(style.mpl.patches.Circle((0, 0), scale, fill=False, color="0.85", lw=0.8))
    score = float(analysis.mmcs(dec, W))
    return score, int(alive.sum()), len(alive)


@style.styled
def sae_toy_directions(datasets: Mapping[str, xr.Dataset] | xr.Dataset) -> Figure:
    """SAE decoder directions over a 2-D toy model's features, one row per dataset.

    Grey arrows are the toy's features W_i (rows of W); orange lines are the unit decoder
    directions of the SAE trained on its hidden activations, dotted where the latent is dead.
    Columns run over the sparsity coefficient (for the first toy model and seed), or over the
    toy models when the coefficient is fixed; each panel gives the SAE's MMCS and live latents.
    """
    named = {"": datasets} if isinstance(datasets, xr.Dataset) else dict(datasets)
    for name, ds in named.items():
        _data.require(toy_problems(ds), f"sae_toy_directions ({name!r})")
    layouts = {name: _columns(ds) for name, ds in named.items()}
    columns = max(ds.sizes.get(column, 1) if column else 1
                  for column, ds in layouts.values())
    fig = style.new_figure(height=max(1.6, style.WIDTH / columns) * len(named) + 0.6)
    axes = np.atleast_2d(fig.subplots(len(named), columns, squeeze=False))
    for row, (name, (column, ds)) in zip(axes, layouts.items()):
        n = ds.sizes.get(column, 1) if column else 1
        for i, ax in enumerate(row):
            if i >= n:
                ax.set_axis_off()
                continue
            point = ds.isel({column: i}) if column else ds
            score, alive, total = _draw_directions(ax, point)
            value = (f"{column.replace('_coefficient', '')} = {point[column].item():.3g}\n"
                     if column and not column.startswith("toy_") else "")
            ax.set_title(f"{value}MMCS {score:.2f}\n{alive}/{total} live", fontsize=6.5)
        cfg = sae_config(named[name])
        resample = "no resampling" if cfg["resample"] == "none" else f"resample: {cfg['resample']}"
        row[0].set_ylabel(f"d_sae = {cfg['d_sae']}\n{resample}", fontsize=7)
    fig.suptitle("SAE decoder directions (orange; dotted: dead) over the toy model's features "
                 "(grey)")
    return fig
