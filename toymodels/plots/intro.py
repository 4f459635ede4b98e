"""The TMS intro figure: W Wᵀ and the feature bars at each sparsity (Elhage et al. 2022, Fig. 1).

Each column is one feature density. On top, the Gram matrix W Wᵀ of the feature embeddings: its
diagonal is ‖W_i‖², its off-diagonal entries the overlap of two features. Below, one bar per
feature of length ‖W_i‖, coloured by polysemanticity ‖interference_i‖ as in the TMS notebook:
black for a feature alone in its dimensions, yellow for one sharing them.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from toymodels import analysis
from toymodels.plots import _data, style

#: Feature counts up to this get the intro figure (beyond it the bars are unreadable).
MAX_FEATURES = 30
#: Most columns drawn; a longer density axis is subsampled evenly.
MAX_COLUMNS = 6


def problems(ds: xr.Dataset) -> list[str]:
    return _data.problems(ds, kinds=["relu_output"], dims=["feature_probability"],
                          n_features=(None, MAX_FEATURES), variables=["W"])


@style.styled
def tms_intro(ds: xr.Dataset) -> Figure:
    """W Wᵀ above the feature bars ‖W_i‖, one column per feature density (lowest-loss seed).

    Args:
      ds: a relu_output sweep with a `feature_probability` grid dim and at most 30 features.

    Returns:
      The figure.
    """
    _data.require(problems(ds), "tms_intro")
    model = _data.model_config(ds)
    best = _data.sorted_by(_data.lowest_loss(ds), "feature_probability")
    if best.sizes["feature_probability"] > MAX_COLUMNS:
        keep = np.unique(np.round(np.linspace(0, best.sizes["feature_probability"] - 1,
                                              MAX_COLUMNS)).astype(int))
        best = best.isel(feature_probability=keep)
    W = best["W"].transpose("feature_probability", "feature", "hidden")
    gram = np.einsum("pih,pjh->pij", W.values, W.values)
    norms = analysis.feature_norms(W).values
    poly = analysis.polysemanticity(W).values
    densities = best["feature_probability"].values
    n, cols = model["n_features"], len(densities)

    fig = style.new_figure(height=2.0 + 0.12 * n + 1.6)
    axes = fig.subplots(2, cols, squeeze=False, height_ratios=[1.0, 0.8 + 0.04 * n])
    limit = float(np.nanmax(np.abs(gram))) if np.isfinite(gram).any() else 1.0
    poly_norm = Normalize(0.0, 1.0)
    ticks = np.arange(0, n, 5 if n > 10 else 1)
    bar_max = max(1.1, float(np.nanmax(norms)) * 1.05) if np.isfinite(norms).any() else 1.1
    for c, p in enumerate(densities):
        top, bottom = axes[0, c], axes[1, c]
        image = top.imshow(gram[c], cmap=style.GRAM_CMAP, vmin=-limit, vmax=limit,
                           interpolation="nearest")
        top.set_title(f"1 − S = {style.fmt_density(p)}\nS = {1 - p:.3g}")
        top.set_xticks(ticks)
        top.set_yticks(ticks)
        top.tick_params(length=2, labelsize=7)
        bottom.barh(np.arange(n), norms[c], height=0.8,
                    color=style.POLYSEMANTICITY_CMAP(poly_norm(poly[c])))
        bottom.set_ylim(n - 0.5, -0.5)
        bottom.set_xlim(0, bar_max)
        bottom.set_yticks(ticks)
        bottom.set_xlabel(style.LABEL_NORM)
        bottom.axvline(1.0, color="0.7", lw=0.6, ls=":", zorder=0)
        if c:
            bottom.set_yticklabels([])
            top.set_yticklabels([])
    axes[0, 0].set_ylabel("feature i")
    axes[1, 0].set_ylabel("feature i  (importance ↓)")
    fig.colorbar(image, ax=axes[0, :].tolist(), shrink=0.9, label=r"$W W^\top$:  $W_i \cdot W_j$")
    scalar = ScalarMappable(poly_norm, style.POLYSEMANTICITY_CMAP)
    fig.colorbar(scalar, ax=axes[1, :].tolist(), shrink=0.9, extend="max",
                 label="polysemanticity " r"$\|(\hat W_i \cdot W_j)_{j\neq i}\|$"
                 "\n(0: alone in its dims)")
    fig.suptitle(f"Superposition as features get sparser\nReLU output model, "
                 f"{_data.describe_model(model)}{_data.seed_note(ds)}")
    return fig
