"""Polysemantic neurons: how many features each hidden neuron responds to, as features get sparser.

Only models with a nonlinearity on the hidden layer have neurons to speak of (TMS's privileged
basis): `hidden_relu` (x' = ReLU(W ReLU(Wᵀx) + b)) and `abs` (computation in superposition). A
neuron's response to feature i alone is ReLU(W_in[i, k]) (`toymodels.analysis.neuron_responses`;
neither model has a hidden bias); the abs model sees signed inputs, so there feature i drives
neuron k through either +e_i or −e_i and its response is max(ReLU(W_ik), ReLU(−W_ik)) = |W_ik|.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.config import ToyModelConfig
from toymodels.plots import _data, style

KINDS = ("hidden_relu", "abs")
#: A neuron carries a feature when its response exceeds this fraction of the model's scale s (the
#: response norm of its strongest feature): `toymodels.analysis.features_per_neuron`.
THRESHOLD = 0.1


def problems(ds: xr.Dataset) -> list[str]:
    return _data.problems(ds, kinds=KINDS, dims=["feature_probability"],
                          variables=[_data.embedding_names()])


def responses(ds: xr.Dataset) -> xr.DataArray:
    """(…, feature, hidden) each neuron's response to each feature alone (see the module doc)."""
    W = _data.embedding(ds)
    if _data.model_config(ds)["kind"] == "abs":
        return abs(W).rename("neuron_responses")
    return analysis.neuron_responses(W)


def aligned_loss(ds: xr.Dataset) -> xr.DataArray | None:
    """(feature_probability,) the loss of the neuron-aligned solution, for a hidden_relu sweep.

    `toymodels.analysis.aligned_loss` at each density: one neuron per kept feature, the others at
    their means. None for other kinds, whose one-feature-per-neuron solution is not this one.
    """
    model = _data.model_config(ds)
    if model["kind"] != "hidden_relu":
        return None
    fields = {k: v for k, v in model.items() if k in ToyModelConfig.__dataclass_fields__}
    importance = ToyModelConfig(**fields).importances()
    p = ds["feature_probability"].values
    return xr.DataArray([analysis.aligned_loss(importance, q, model["d_hidden"]) for q in p],
                        dims="feature_probability", coords={"feature_probability": p})


def _as_mapping(datasets) -> dict[str, xr.Dataset]:
    if isinstance(datasets, xr.Dataset):
        return {_data.model_config(datasets).get("kind", "model"): datasets}
    if isinstance(datasets, Mapping):
        return dict(datasets)
    raise ValueError(f"neuron_polysemanticity: expected a Dataset or a mapping of name to Dataset, "
                     f"got {type(datasets).__name__}")


def _label(name: str, ds: xr.Dataset, names: dict[str, xr.Dataset]) -> str:
    kind = _data.model_config(ds)["kind"]
    same_kind = sum(_data.model_config(d)["kind"] == kind for d in names.values())
    model = _data.model_config(ds)
    label = f"{style.KIND_LABELS[kind]}, {model['n_features']}→{model['d_hidden']}"
    return f"{label} ({name})" if same_kind > 1 else label


def _matrix(ax, r: np.ndarray, title: str):
    """Responses (feature, hidden) over the model's scale s, neurons sorted by top feature."""
    scale = np.sqrt((r**2).sum(axis=1)).max()
    scaled = (r / scale if scale > 0 else r).T  # (hidden, feature)
    peak = scaled.max(axis=1)
    carried = peak > THRESHOLD
    top_feature = np.where(carried, scaled.argmax(axis=1), scaled.shape[1])
    order = np.lexsort((-peak, top_feature))  # by top feature; neurons carrying none last
    image = ax.imshow(scaled[order], cmap=style.RESPONSE_CMAP, vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    ax.set_xlabel("feature i")
    ax.set_title(title, fontsize=8)
    return image


@style.styled
def neuron_polysemanticity(datasets: Mapping[str, xr.Dataset] | xr.Dataset) -> Figure:
    """Features per neuron, single-feature neurons and loss against density; response matrices.

    A neuron carries feature i when its response to i alone exceeds THRESHOLD × s, s the
    response norm of the model's strongest feature (`analysis.features_per_neuron`). The third
    panel divides each hidden_relu model's loss by the neuron-aligned solution's exact loss
    (`analysis.aligned_loss`): below 1 where superposition beats one feature per neuron, above 1
    where training stopped short of it.

    Args:
      datasets: one hidden_relu or abs sweep over `feature_probability`, or a mapping of name to
        several (one line each; their densest and sparsest response matrices side by side).

    Returns:
      The figure.
    """
    named = _as_mapping(datasets)
    if not named:
        raise ValueError("neuron_polysemanticity: no datasets given")
    for name, ds in named.items():
        _data.require(problems(ds), f"neuron_polysemanticity ({name!r})")

    fig = style.new_figure(height=3.0 + 2.7)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.0])
    per_ax, mono_ax, loss_ax = top.subplots(1, 3)
    matrix_axes = np.atleast_1d(bottom.subplots(1, 2 * len(named)))
    densities = []
    image = None
    for i, (name, ds) in enumerate(named.items()):
        kind = _data.model_config(ds)["kind"]
        best = _data.sorted_by(_data.lowest_loss(ds), "feature_probability")
        r = responses(best).transpose("feature_probability", "feature", "hidden")
        per = analysis.features_per_neuron(r, threshold=THRESHOLD)
        mean_per = per.where(per > 0).mean("hidden")
        single = (per == 1).mean("hidden")
        p = best["feature_probability"].values
        densities.append(p)
        label = _label(name, ds, named)
        style_kw = dict(color=style.KIND_COLORS[kind], marker="o", ms=3, lw=1.6, label=label)
        per_ax.plot(p, mean_per.values, **style_kw)
        mono_ax.plot(p, single.values, **style_kw)
        optimum = aligned_loss(best)
        if optimum is not None:
            ratio = (best["loss"] / optimum).values
            loss_ax.plot(p, ratio, **style_kw)
            # How many features the densest model represents: where it stops short of the
            # aligned solution, it is by features left out (README: hidden_relu's optimum).
            kept = int(analysis.n_represented(_data.embedding(best).isel(feature_probability=0)))
            loss_ax.annotate(f"{kept} of {_data.model_config(ds)['d_hidden']} features\n"
                             f"represented", (p[0], ratio[0]), xytext=(6, 10),
                             textcoords="offset points", fontsize=7)
        for ax, j, end in [(matrix_axes[2 * i], 0, "densest"), (matrix_axes[2 * i + 1], -1,
                                                                "sparsest")]:
            image = _matrix(ax, r.isel(feature_probability=j).values,
                            f"{label}\n1 − S = {style.fmt_density(p[j])} ({end})")
        matrix_axes[2 * i].set_ylabel("neuron (sorted by top feature)")
    for ax in (per_ax, mono_ax, loss_ax):
        style.density_axis(ax, np.concatenate(densities))
        ax.set_xlabel(ax.get_xlabel(), fontsize=8)
    per_ax.set_ylim(0, None)
    per_ax.set_ylabel(f"features per neuron\n(response > {THRESHOLD:g} × s; neurons with ≥ 1)",
                      fontsize=8)
    per_ax.set_title("Features each neuron carries")
    mono_ax.set_ylim(-0.03, 1.03)
    mono_ax.set_ylabel("fraction of neurons that\ncarry exactly one feature", fontsize=8)
    mono_ax.set_title("Monosemantic neurons")
    loss_ax.set_yscale("log")
    loss_ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
    loss_ax.set_ylabel("loss / aligned solution's loss\n(hidden ReLU)", fontsize=8)
    loss_ax.set_title("Loss vs one neuron per feature")
    top.legend(*per_ax.get_legend_handles_labels(), loc="outside lower center",
               ncols=len(named))
    bottom.colorbar(image, ax=matrix_axes.tolist(), shrink=0.9, label="response / s")
    top.suptitle("Neuron polysemanticity (lowest-loss seed per point; s = the response norm of "
                 "the model's strongest feature)", fontsize=10)
    bottom.suptitle("Response of each neuron to each feature alone (features in importance order)",
                    fontsize=9.5)
    return fig
