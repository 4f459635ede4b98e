"""Measure what toy models learn: pure functions over arrays of weights.

Every function maps over leading batch/grid axes and accepts NumPy arrays, JAX arrays and
`xarray.DataArray`s; a DataArray in gives a DataArray out with the leading dims and their
coordinates kept, so a sweep's `ds.W` can be passed straight in. Array in gives a JAX array out,
and all but the polytope functions work under `jax.jit` and `jax.vmap`.

- `dimensionality`: D_i (= capacity C_i), D*, feature norms, represented features.
- `interference`: Ŵ_i·W_j, polysemanticity, net interference.
- `neurons`: one-hot neuron responses, monosemanticity (Jermyn et al.), features per neuron,
  the neuron-aligned solution of `hidden_relu` and its exact loss.
- `geometry`: named fractions of D_i and the polytopes features form.
- `recovery`: max cosine and MMCS against known directions (Sharkey et al.).
- `dynamics`: direction drift and formation step over training snapshots.
"""

from toymodels.analysis.dimensionality import (
    capacity,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    represented_features,
)
from toymodels.analysis.dynamics import direction_drift, formation_step
from toymodels.analysis.geometry import (
    FRACTION_LINES,
    POLYTOPE_KINDS,
    POLYTOPES,
    Polytopes,
    fraction_line_counts,
    nearest_fraction,
    polytope_counts,
    polytope_groups,
    polytope_vertices,
)
from toymodels.analysis.interference import interference, net_interference, polysemanticity
from toymodels.analysis.neurons import (
    aligned_loss,
    aligned_solution,
    features_per_neuron,
    monosemantic_neurons,
    n_monosemantic,
    neuron_monosemanticity,
    neuron_responses,
)
from toymodels.analysis.recovery import max_cosine, mmcs

__all__ = [
    "FRACTION_LINES",
    "POLYTOPES",
    "POLYTOPE_KINDS",
    "Polytopes",
    "aligned_loss",
    "aligned_solution",
    "capacity",
    "dimensions_per_feature",
    "direction_drift",
    "feature_dimensionality",
    "feature_norms",
    "features_per_neuron",
    "formation_step",
    "fraction_line_counts",
    "interference",
    "max_cosine",
    "mmcs",
    "monosemantic_neurons",
    "n_monosemantic",
    "n_represented",
    "nearest_fraction",
    "net_interference",
    "neuron_monosemanticity",
    "neuron_responses",
    "polysemanticity",
    "polytope_counts",
    "polytope_groups",
    "polytope_vertices",
    "represented_features",
]
