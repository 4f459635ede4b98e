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
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

KINDS = ("hidden_relu", "abs")
#: A feature drives a neuron when its response exceeds this fraction of the neuron's largest.
REL_THRESHOLD = 0.1
#: A neuron is monosemantic when its top feature has more than this share of its total response.
MONOSEMANTIC = 0.9


def problems(ds: xr.Dataset) -> list[str]:
    return _data.problems(ds, kinds=KINDS, dims=["feature_probability"],
                          variables=[_data.embedding_names()])


def responses(ds: xr.Dataset) -> xr.DataArray:
    """(…, feature, hidden) each neuron's response to each feature alone (see the module doc)."""
    W = _data.embedding(ds)
    if _data.model_config(ds)["kind"] == "abs":
        return abs(W).rename("neuron_responses")
    return analysis.neuron_responses(W)


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


@style.styled
def neuron_polysemanticity(datasets: Mapping[str, xr.Dataset] | xr.Dataset) -> Figure:
    """Features per neuron and monosemantic neurons against density; responses at the sparsest.

    Args:
      datasets: one hidden_relu or abs sweep over `feature_probability`, or a mapping of name to
        several (one line each; their response matrices side by side).

    Returns:
      The figure.
    """
    named = _as_mapping(datasets)
    if not named:
        raise ValueError("neuron_polysemanticity: no datasets given")
    for name, ds in named.items():
        _data.require(problems(ds), f"neuron_polysemanticity ({name!r})")

    fig = style.new_figure(height=3.0 + 2.6)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1.0])
    per_ax, mono_ax = top.subplots(1, 2)
    matrix_axes = np.atleast_1d(bottom.subplots(1, len(named)))
    densities = []
    image = None
    for (name, ds), ax in zip(named.items(), matrix_axes):
        kind = _data.model_config(ds)["kind"]
        best = _data.sorted_by(_data.lowest_loss(ds), "feature_probability")
        r = responses(best).transpose("feature_probability", "feature", "hidden")
        per = analysis.features_per_neuron(r, rel_threshold=REL_THRESHOLD)
        live = per > 0
        mean_per = per.where(live).mean("hidden")
        mono = (analysis.neuron_monosemanticity(r) > MONOSEMANTIC).mean("hidden")
        p = best["feature_probability"].values
        densities.append(p)
        style_kw = dict(color=style.KIND_COLORS[kind], marker="o", ms=3, lw=1.6,
                        label=_label(name, ds, named))
        per_ax.plot(p, mean_per.values, **style_kw)
        mono_ax.plot(p, mono.values, **style_kw)

        sparsest = r.isel(feature_probability=-1).values.T  # (hidden, feature)
        peak = sparsest.max(axis=1, keepdims=True)
        scaled = np.divide(sparsest, peak, out=np.zeros_like(sparsest), where=peak > 0)
        top_feature = np.where(peak[:, 0] > 0, sparsest.argmax(axis=1), sparsest.shape[1])
        order = np.lexsort((-peak[:, 0], top_feature))  # by top feature, dead neurons last
        image = ax.imshow(scaled[order], cmap=style.RESPONSE_CMAP, vmin=0, vmax=1,
                          aspect="auto", interpolation="nearest")
        ax.set_xlabel("feature i  (importance order)")
        ax.set_ylabel("neuron (sorted by top feature)")
        ax.set_title(f"{_label(name, ds, named)}\n1 − S = {style.fmt_density(p[-1])}"
                     f"{_data.seed_note(ds)}", fontsize=8.5)
    for ax in (per_ax, mono_ax):
        style.density_axis(ax, np.concatenate(densities))
    per_ax.set_ylim(0, None)
    per_ax.set_ylabel(f"features per live neuron\n(response > {REL_THRESHOLD:g} × neuron's max)")
    per_ax.set_title("Features each neuron responds to")
    mono_ax.set_ylim(-0.03, 1.03)
    mono_ax.set_ylabel(f"fraction of neurons with\ntop-feature share > {MONOSEMANTIC:g}")
    mono_ax.set_title("Monosemantic neurons")
    top.legend(*per_ax.get_legend_handles_labels(), loc="outside lower center",
               ncols=len(named))
    bottom.colorbar(image, ax=matrix_axes.tolist(), shrink=0.9,
                    label="response / neuron's max")
    top.suptitle("Neuron polysemanticity (lowest-loss seed per point)", fontsize=11)
    bottom.suptitle("Response of each neuron to each feature alone, at the sparsest density",
                    fontsize=9.5)
    return fig
