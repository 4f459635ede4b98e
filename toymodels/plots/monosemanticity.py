"""Monosemantic neurons of Jermyn et al.'s models, against what a sweep varies, and against loss.

Jermyn, Schiefer & Hubinger (2022) count a neuron as monosemantic when, pushing each feature alone
through the fixed embedding and the first layer with its bias, its largest response is more than
0.999 of the sum of its responses (`toymodels.analysis.embedded_neuron_responses`, then
`n_monosemantic`). Their plots (`plot_helper.py`) show that count divided by the number of
features (1 when every feature has a neuron of its own), against learning rate, initial bias
(with and without bias decay), width k and ε; and how models of about equal loss differ in it.

- `monosemanticity_sweep(ds)`: one jermyn sweep over one of `SWEEP_DIMS` (a second dim,
  `bias_decay`, gives one line per value): monosemantic neurons per feature and the loss against
  it, every seed a dot and the seeds' mean a line; below, the single-feature responses of the
  lowest-loss seed at the two ends of the sweep, as their `sfa_plot`.
- `monosemanticity_vs_loss(datasets)`: every model of every jermyn sweep, monosemantic neurons
  per feature against final loss.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.config import JERMYN_KINDS, ToyModelConfig
from toymodels.plots import _data, style

#: Grid dims a monosemanticity sweep plots against, in the order one is picked as the x axis.
SWEEP_DIMS = ("lr", "init_bias", "d_hidden", "feature_probability", "l1_coefficient",
              "frequency_exponent", "bias_decay")
#: The dim drawn as one line per value when another dim is the x axis.
SERIES_DIM = "bias_decay"
#: Their monosemanticity threshold (`r_threshold`).
THRESHOLD = 0.999
LABELS = {
    "lr": "learning rate",
    "init_bias": "initial mean bias (init_bias)",
    "d_hidden": "neurons k",
    "feature_probability": "feature density ε",
    "l1_coefficient": "L1 on hidden activations",
    "frequency_exponent": "power-law exponent a",
    "bias_decay": "bias decay",
}
LOG_DIMS = ("lr", "d_hidden", "feature_probability", "l1_coefficient")
SERIES_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"]


def sweep_dim(ds: xr.Dataset) -> str | None:
    """The dim a sweep is plotted against: the first grid dim of `SWEEP_DIMS` with > 1 value
    (bias_decay only if nothing else varies)."""
    grid = _data.grid_dims(ds)
    varied = [d for d in SWEEP_DIMS if d in grid and ds.sizes[d] > 1]
    return varied[0] if varied else None


def problems(ds: xr.Dataset) -> list[str]:
    x = sweep_dim(ds) if isinstance(ds, xr.Dataset) and "loss" in ds else None
    if x is None:
        found = _data.problems(ds, kinds=JERMYN_KINDS, variables=["W_in", "b_in"])
        return found + [f"needs a grid dim of {list(SWEEP_DIMS)} with more than one value"]
    series = [SERIES_DIM] if x != SERIES_DIM else []
    return _data.problems(ds, kinds=JERMYN_KINDS, dims=[x], optional_dims=series,
                          variables=["W_in", "b_in"])


def loss_problems(ds: xr.Dataset) -> list[str]:
    return _data.problems(ds, kinds=JERMYN_KINDS, optional_dims=_data.grid_dims(ds)
                          if isinstance(ds, xr.Dataset) and "loss" in ds else (),
                          variables=["W_in", "b_in"])


def config(ds: xr.Dataset) -> ToyModelConfig:
    """The sweep's ToyModelConfig (static fields as run; swept ones at their base values)."""
    model = _data.model_config(ds)
    return ToyModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})


def responses(ds: xr.Dataset) -> xr.DataArray:
    """(…, feature, hidden) each neuron's response to each feature alone, through the embedding."""
    model = config(ds)
    embedding = xr.DataArray(model.embeddings()[0], dims=("feature", "embed"))
    return analysis.embedded_neuron_responses(ds["W_in"], ds["b_in"], embedding,
                                              activation=model.activation)


def monosemantic_count(ds: xr.Dataset) -> xr.DataArray:
    """(*grid) the number of monosemantic neurons of each model (Jermyn et al.'s count)."""
    count = analysis.n_monosemantic(responses(ds), threshold=THRESHOLD)
    return count.rename("n_monosemantic")


def _values(dim: str, ds: xr.Dataset) -> np.ndarray:
    return np.asarray(ds[dim].values, float)


def _plot_series(axes, ds: xr.Dataset, x: str, color: str, label: str | None) -> None:
    n = _data.model_config(ds)["n_features"]
    per_feature = (monosemantic_count(ds) / n).where(~ds["diverged"])
    loss = ds["loss"].where(~ds["diverged"])
    xs = _values(x, ds)
    for ax, value in zip(axes, (per_feature, loss)):
        value = value.squeeze([d for d in value.dims
                               if d not in (x, _data.SEED) and value.sizes[d] == 1])
        if _data.SEED in value.dims:
            for s in range(value.sizes[_data.SEED]):
                ax.scatter(xs, value.isel({_data.SEED: s}).transpose(x).values, s=10,
                           color=color, alpha=0.35, lw=0)
            value = value.mean(_data.SEED)
        ax.plot(xs, value.transpose(x).values, color=color, lw=1.7, marker="o", ms=3,
                label=label)


def _response_matrix(ax, ds: xr.Dataset, title: str):
    """Their `sfa_plot`: neurons sorted most monosemantic first, features by their top neuron."""
    r = np.asarray(responses(ds).transpose("feature", "hidden").values, float).T  # (hidden, feature)
    r = np.maximum(r, 0.0)
    share = r.max(1) / (1e-10 + r.sum(1))
    r = r[np.argsort(-share, kind="stable")]
    r = r[:, np.argsort(r.argmax(0), kind="stable")]
    image = ax.imshow(r, cmap=style.RESPONSE_CMAP, vmin=0, vmax=max(1.0, float(r.max())),
                      aspect="auto", interpolation="nearest")
    ax.set_xlabel("feature (by its top neuron)")
    ax.set_ylabel("neuron (most monosemantic first)")
    ax.set_title(title, fontsize=8.5)
    return image


def _extremes(ds: xr.Dataset) -> list[tuple[xr.Dataset, list[str]]]:
    """The grid points (lowest-loss seed each) with the fewest and the most monosemantic neurons,
    among models with a live neuron, each with the grid dims that name it; padding dropped."""
    best = _data.lowest_loss(ds)
    dims = [d for d in _data.grid_dims(best)]
    count = monosemantic_count(best).where(responses(best).max(("feature", "hidden")) > 0)
    flat = count.values.ravel()
    if np.all(np.isnan(flat)):
        flat = np.zeros_like(flat)
    out = []
    for i in (int(np.nanargmin(flat)), int(np.nanargmax(flat))):
        index = dict(zip(dims, np.unravel_index(i, count.shape))) if dims else {}
        point = best.isel(index)
        if "hidden_mask" in point:
            point = point.isel(hidden=np.flatnonzero(point["hidden_mask"].values))
        out.append((point, dims))
    return out


def _fmt(dim: str, value: float) -> str:
    return f"{int(value)}" if dim == "d_hidden" else f"{value:.3g}"


@style.styled
def monosemanticity_sweep(ds: xr.Dataset) -> Figure:
    """Monosemantic neurons and loss against the swept value; responses at both ends.

    Args:
      ds: a jermyn sweep with a grid dim of `SWEEP_DIMS` (and optionally `bias_decay` and
        `seed`).

    Returns:
      The figure.
    """
    _data.require(problems(ds), "monosemanticity_sweep")
    x = sweep_dim(ds)
    model = _data.model_config(ds)
    fig = style.new_figure(height=6.2)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.0, 1.05])
    mono_ax, loss_ax = top.subplots(1, 2)
    series = SERIES_DIM if x != SERIES_DIM and SERIES_DIM in _data.grid_dims(ds) else None
    if series is not None:
        for i, value in enumerate(_values(series, ds)):
            _plot_series((mono_ax, loss_ax), ds.isel({series: i}), x,
                         SERIES_COLORS[i % len(SERIES_COLORS)], f"bias decay {value:g}")
        mono_ax.legend(frameon=False)
    else:
        _plot_series((mono_ax, loss_ax), ds, x, SERIES_COLORS[0], None)
    xs = np.unique(_values(x, ds))
    for ax in (mono_ax, loss_ax):
        ax.set_xlabel(LABELS[x])
        if x in LOG_DIMS:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(xs, [_fmt(x, v) for v in xs], rotation=45 if len(xs) > 6 else 0)
    if x == "d_hidden":
        mono_ax.axvline(model["n_features"], color="0.5", ls=":", lw=1)
    mono_ax.axhline(1.0, color="0.5", ls=":", lw=1)
    mono_ax.set_ylim(-0.03, None)
    mono_ax.set_ylabel("monosemantic neurons / features")
    mono_ax.set_title(f"Monosemantic neurons (max/sum > {THRESHOLD})")
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("loss  Σ (out − target)² / batch")
    loss_ax.set_title("Final loss (last logging interval)")
    k = "swept" if x == "d_hidden" else model["d_hidden"]
    top.suptitle(f"{model['kind']}: n = {model['n_features']} features, m = {model['d_embed']}, "
                 f"k = {k}, {model['activation']}  "
                 f"(dots: seeds; lines: mean)", fontsize=10)

    axes = np.atleast_1d(bottom.subplots(1, 2))
    image = None
    for ax, (point, where) in zip(axes, _extremes(ds)):
        label = ", ".join(f"{LABELS[d].split(' (')[0]} {_fmt(d, float(point[d]))}" for d in where)
        count = int(monosemantic_count(point))
        image = _response_matrix(ax, point, f"{label}: {count} monosemantic")
    bottom.colorbar(image, ax=axes.tolist(), shrink=0.9, label="response to the feature alone")
    bottom.suptitle("Single-feature responses: the fewest and the most monosemantic neurons "
                    "(lowest-loss seed per point)", fontsize=9.5)
    return fig


@style.styled
def monosemanticity_vs_loss(datasets: Mapping[str, xr.Dataset] | xr.Dataset) -> Figure:
    """Monosemantic neurons per feature against final loss, every model of every jermyn sweep.

    Args:
      datasets: a jermyn sweep, or a mapping of name to several (one colour each).

    Returns:
      The figure.
    """
    named = {"sweep": datasets} if isinstance(datasets, xr.Dataset) else dict(datasets)
    if not named:
        raise ValueError("monosemanticity_vs_loss: no datasets given")
    for name, ds in named.items():
        _data.require(loss_problems(ds), f"monosemanticity_vs_loss ({name!r})")
    fig = style.new_figure(height=4.2)
    ax = fig.subplots()
    for i, (name, ds) in enumerate(named.items()):
        n = _data.model_config(ds)["n_features"]
        ok = ~ds["diverged"]
        mono = (monosemantic_count(ds) / n).where(ok).values.ravel()
        loss = ds["loss"].where(ok).values.ravel()
        ax.scatter(loss, mono, s=14, alpha=0.7, lw=0, color=SERIES_COLORS[i % len(SERIES_COLORS)],
                   label=name)
    ax.set_xscale("log")
    ax.set_xlabel("final loss  Σ (out − target)² / batch")
    ax.set_ylabel("monosemantic neurons / features")
    ax.set_title("Models of similar loss differ in how monosemantic their neurons are")
    ax.legend(frameon=False, fontsize=7.5, loc="best")
    return fig
