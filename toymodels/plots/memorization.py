"""Superposition on finite data (Henighan et al. 2023): double descent, datapoints against
features, and the (T, m) map of test loss.

A sweep over `dataset_size` (T) of a TMS model on a fixed dataset (`ToyModelConfig.dataset_size`)
holds the train and test losses and W; the training points' hidden vectors h_i = W x_i are
recomputed from `tm.training_set`, which draws exactly the samples the model trained on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.config import ToyModelConfig
from toymodels.plots import _data, style
from toymodels.train import training_set

KINDS = ("relu_output", "linear")
#: the norm a feature's W_i or a point's h_i must pass to be drawn and counted (as
#: `represented_features`).
THRESHOLD = 0.5
#: columns of the geometry figure (values of T, log-spaced over the grid).
GEOMETRY_COLUMNS = 6
TEST, TRAIN, FEATURES, POINTS = "#D55E00", "#0072B2", "#009E73", "#CC79A7"


def problems(ds: xr.Dataset, width: bool = False) -> list[str]:
    dims = ["dataset_size", "d_hidden"] if width else ["dataset_size"]
    found = _data.problems(ds, kinds=KINDS, dims=dims, variables=["test_loss"])
    if not found and not width and "d_hidden" in _data.grid_dims(ds):
        found.append("is swept over d_hidden (that is the width figure's)")
    return found


def geometry_problems(ds: xr.Dataset) -> list[str]:
    found = problems(ds)
    if not found and ds.sizes.get("hidden") != 2:
        found.append(f"d_hidden = {ds.sizes.get('hidden')}; needs 2")
    return found


def width_problems(ds: xr.Dataset) -> list[str]:
    return problems(ds, width=True)


def _config(ds: xr.Dataset, dataset_size: int) -> ToyModelConfig:
    model = _data.model_config(ds)
    fields = {f.name for f in dataclasses.fields(ToyModelConfig)}
    model = {k: tuple(v) if isinstance(v, list) else v for k, v in model.items() if k in fields}
    return ToyModelConfig(**(model | {"dataset_size": int(dataset_size)}))


def _weight_decay(ds: xr.Dataset) -> float:
    return float(json.loads(ds.attrs["train"])["weight_decay"])


def zero_loss(ds: xr.Dataset) -> float:
    """The loss of the model that outputs 0: E‖x‖² / n, for unit-norm samples the fraction of
    samples with a feature on, over n (else p / 3 per feature, for U[0, 1) magnitudes)."""
    model = _config(ds, 1)
    p = np.asarray(model.probabilities())
    if model.unit_norm_inputs:
        return float((1 - np.prod(1 - p)) / model.n_features)
    return float(np.mean(p / 3))


def hidden_vectors(ds: xr.Dataset, dataset_size: int, seed: int) -> np.ndarray:
    """(T, hidden) the training points' hidden vectors h_i = W x_i of one model of the sweep."""
    point = ds.sel(dataset_size=dataset_size)
    if "seed" in point.dims:
        point = point.sel(seed=seed)
    x = training_set(_config(ds, dataset_size), seed=int(seed))
    return x @ np.asarray(point.W.squeeze().values)


def _seeds(ds: xr.Dataset) -> list[int]:
    return ds.seed.values.tolist() if "seed" in _data.grid_dims(ds) else [
        json.loads(ds.attrs["train"])["seed"]]


def _per_seed(da: xr.DataArray) -> np.ndarray:
    """(T, seed) values of a (dataset_size[, seed]) variable."""
    return da.values.reshape(da.sizes["dataset_size"], -1)


def regime_table(ds: xr.Dataset) -> list[dict]:
    """Per T (ascending): mean train and test loss over seeds, the mean D of the represented
    datapoints and features (`represented_dimensionality`), and ‖W‖_F."""
    ds = _data.sorted_by(_data.squeeze_grid(ds, ["dataset_size", "seed"]), "dataset_size",
                         descending=False)
    rows = []
    for i, T in enumerate(ds.dataset_size.values.tolist()):
        point = ds.isel(dataset_size=i)
        d_points, d_features = [], []
        for s in _seeds(ds):
            W = np.asarray((point.sel(seed=s) if "seed" in point.dims else point).W.values)
            d_points.append(float(analysis.represented_dimensionality(
                hidden_vectors(ds, T, s), THRESHOLD)))
            d_features.append(float(analysis.represented_dimensionality(W, THRESHOLD)))
        rows.append(dict(dataset_size=int(T), loss=float(point.loss.mean()),
                         test_loss=float(point.test_loss.mean()),
                         datapoint_D=float(np.nanmean(d_points)),
                         feature_D=float(np.nanmean(d_features)),
                         weight_norm=float(analysis.weight_norm(point.W).mean())))
    return rows


@style.styled
def double_descent(datasets: Mapping[str, xr.Dataset]) -> Figure:
    """Test and train loss, the dimensionality of datapoints and features, and ‖W‖_F, against T.

    Args:
      datasets: {name: sweep over dataset_size (and seed)} of one model on fixed datasets; the
        sweeps may differ in weight decay (each gets its own line in the loss and norm panels;
        the dimensionality panel shows the lowest weight decay's).

    Returns:
      The figure.
    """
    if isinstance(datasets, xr.Dataset):
        datasets = {"sweep": datasets}
    for ds in datasets.values():
        _data.require(problems(ds), "double_descent")
    order = sorted(datasets.values(), key=_weight_decay)
    main = _data.sorted_by(_data.squeeze_grid(order[0], ["dataset_size", "seed"]),
                           "dataset_size", descending=False)
    model = _data.model_config(main)
    fig = style.new_figure(height=3.6)
    ax_loss, ax_dim, ax_norm = fig.subplots(1, 3)
    ax_train = ax_loss.twinx()
    styles = ["-", "--", ":", "-."]
    for k, ds in enumerate(order):
        ds = _data.sorted_by(_data.squeeze_grid(ds, ["dataset_size", "seed"]), "dataset_size",
                             descending=False)
        T = ds.dataset_size.values
        wd = _weight_decay(ds)
        test, train = _per_seed(ds.test_loss), _per_seed(ds.loss)
        ls = styles[k % len(styles)]
        zero = zero_loss(ds)
        ax_loss.plot(T, test.mean(1) / zero, ls, color=TEST, marker="o", ms=3,
                     label=f"test, weight decay {wd:g}")
        ax_loss.scatter(np.repeat(T, test.shape[1]), test.ravel() / zero, s=4, color=TEST,
                        alpha=0.3)
        ax_train.plot(T, np.maximum(train.mean(1), 1e-12) / zero, ls, color=TRAIN, alpha=0.8,
                      label=f"train, weight decay {wd:g}")
        norms = np.asarray(analysis.weight_norm(ds.W).values).reshape(len(T), -1)
        ax_norm.plot(T, norms.mean(1), ls, color="k", marker="o", ms=3,
                     label=f"weight decay {wd:g}")
        ax_norm.scatter(np.repeat(T, norms.shape[1]), norms.ravel(), s=4, color="k", alpha=0.3)
    ax_loss.axhline(1.0, color="grey", lw=0.8, ls=":", label="x′ = 0 (the zero model)")
    ax_loss.set(xscale="log", xlabel="training set size T",
                ylabel="test loss / zero model's", title="(a) loss")
    ax_train.set(yscale="log")
    ax_train.set_ylabel("train loss / zero model's", color=TRAIN)
    ax_train.tick_params(axis="y", colors=TRAIN)
    lines = ax_loss.get_legend_handles_labels()
    train_lines = ax_train.get_legend_handles_labels()
    ax_loss.legend(lines[0] + train_lines[0], lines[1] + train_lines[1], fontsize=6,
                   loc="center right")
    ax_norm.set(xscale="log", xlabel="training set size T", ylabel=r"$\|W\|_F$",
                title="(c) weight norm")
    ax_norm.legend(fontsize=6)

    m = model["d_hidden"]
    T = main.dataset_size.values
    rng = np.random.default_rng(0)
    for i, t in enumerate(T.tolist()):
        point = main.isel(dataset_size=i)
        for s in _seeds(main):
            W = np.asarray((point.sel(seed=s) if "seed" in point.dims else point).W.values)
            h = hidden_vectors(main, t, s)
            for vectors, color in ((h, POINTS), (W, FEATURES)):
                d = np.asarray(analysis.datapoint_dimensionality(vectors))
                keep = np.linalg.norm(vectors, axis=1) > THRESHOLD
                jitter = np.exp(rng.uniform(-0.08, 0.08, keep.sum()))
                ax_dim.scatter(t * jitter, d[keep], s=3, color=color, alpha=0.35, lw=0)
    grid = np.geomspace(T.min(), T.max(), 100)
    ax_dim.plot(grid, np.minimum(m / grid, 1), color=POINTS, lw=1, label=r"$m/T$ (a T-gon)")
    ax_dim.axhline(2 / 5, color=FEATURES, lw=1, ls="--", label="2/5 (a pentagon)")
    ax_dim.scatter([], [], s=8, color=POINTS, label=r"datapoints $D_{X,i}$")
    ax_dim.scatter([], [], s=8, color=FEATURES, label=r"features $D_i$")
    ax_dim.set(xscale="log", yscale="log", ylim=(1e-3, 1.2), xlabel="training set size T",
               ylabel="dimensionality", title="(b) datapoints vs features")
    ax_dim.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"Finite data: n = {model['n_features']} features, m = {m}, "
                 f"S = {1 - model['feature_probability']:g}; vectors with norm > {THRESHOLD}, "
                 f"{_data.n_seeds(main)} seeds", fontsize=8)
    return fig


@style.styled
def memorization_geometry(ds: xr.Dataset) -> Figure:
    """The training points' hidden vectors h_i (top) and the features' W_i (bottom), at a few T.

    Args:
      ds: a sweep over dataset_size (and seed) with d_hidden = 2; the first seed is drawn.

    Returns:
      The figure.
    """
    _data.require(geometry_problems(ds), "memorization_geometry")
    ds = _data.sorted_by(_data.squeeze_grid(ds, ["dataset_size", "seed"]), "dataset_size",
                         descending=False)
    T = ds.dataset_size.values
    # the smallest T (where datapoints form polygons), then the rest log-spaced up to the largest
    half = GEOMETRY_COLUMNS // 2
    rest = np.geomspace(T[min(half, len(T) - 1)], T[-1], GEOMETRY_COLUMNS - half)
    picks = np.unique(np.concatenate([np.arange(min(half, len(T))),
                                      [np.argmin(np.abs(np.log(T) - np.log(r))) for r in rest]]))
    seed = _seeds(ds)[0]
    fig = style.new_figure(height=3.2)
    axes = fig.subplots(2, len(picks), squeeze=False)
    for col, i in enumerate(picks.astype(int)):
        t = int(T[i])
        point = ds.isel(dataset_size=i)
        W = np.asarray((point.sel(seed=seed) if "seed" in point.dims else point).W.values)
        h = hidden_vectors(ds, t, seed)
        for row, (vectors, color, what) in enumerate(((h, POINTS, "points"),
                                                      (W, FEATURES, "features"))):
            ax = axes[row, col]
            norms = np.linalg.norm(vectors, axis=1)
            keep = norms > 0.1 * max(norms.max(), 1e-12)
            for v in vectors[keep]:
                ax.plot([0, v[0]], [0, v[1]], color=color, lw=0.6, alpha=0.6)
            ax.scatter(vectors[keep, 0], vectors[keep, 1], s=5, color=color, zorder=3)
            d = np.asarray(analysis.represented_dimensionality(vectors, THRESHOLD))
            r = 1.15 * max(norms.max(), 1e-6)
            ax.set(xlim=(-r, r), ylim=(-r, r), aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"T = {t}" if row == 0 else "", fontsize=7)
            ax.text(0.02, 0.02, f"D̄ = {d:.2f}" if np.isfinite(d) else "", fontsize=6,
                    transform=ax.transAxes)
            if col == 0:
                ax.set_ylabel(f"{what}\n" + (r"$h_i = W x_i$" if row == 0 else r"$W_i$"),
                              fontsize=7)
    fig.suptitle(f"Hidden vectors of the training points and the features (seed {seed}); D̄: "
                 f"mean dimensionality of those with norm > {THRESHOLD}", fontsize=8)
    return fig


@style.styled
def memorization_width(ds: xr.Dataset) -> Figure:
    """The (T, m) map of test loss relative to the zero model's, mean over seeds.

    Args:
      ds: a sweep over dataset_size and d_hidden (and seed).

    Returns:
      The figure.
    """
    _data.require(width_problems(ds), "memorization_width")
    ds = _data.squeeze_grid(ds, ["dataset_size", "d_hidden", "seed"])
    ds = _data.sorted_by(_data.sorted_by(ds, "dataset_size", False), "d_hidden", False)
    test = ds.test_loss.mean("seed") if "seed" in ds.test_loss.dims else ds.test_loss
    ratio = (test / zero_loss(ds)).transpose("d_hidden", "dataset_size").values
    T, m = ds.dataset_size.values, ds.d_hidden.values
    fig = style.new_figure(width=style.WIDTH * 0.6, height=3.2)
    ax = fig.subplots()
    spread = max(abs(np.log(ratio)).max(), 1e-3)
    image = ax.imshow(np.log(ratio), origin="lower", aspect="auto", cmap="RdBu_r",
                      vmin=-spread, vmax=spread)
    ax.set_xticks(range(len(T)), [str(t) for t in T], fontsize=6)
    ax.set_yticks(range(len(m)), [str(v) for v in m], fontsize=6)
    peaks = np.argmax(ratio, axis=1)
    ax.scatter(peaks, range(len(m)), marker="x", color="k", s=12, label="highest test loss")
    ax.set(xlabel="training set size T", ylabel="hidden width m")
    ax.legend(fontsize=6, loc="upper right")
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("log(test loss / zero model's)", fontsize=7)
    fig.suptitle("Test loss over (T, m)" + (f", mean of {_data.n_seeds(ds)} seeds"
                                            if _data.n_seeds(ds) > 1 else ""), fontsize=8)
    return fig
