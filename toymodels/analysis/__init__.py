"""Measure what toy models and SAEs learn: pure functions over arrays of weights and activations.

Every metric maps over leading batch/grid axes and accepts NumPy arrays, JAX arrays and
`xarray.DataArray`s; a DataArray in gives a DataArray out with the leading dims and their
coordinates kept, so a sweep's `ds.W` or `ds.W_dec` can be passed straight in. Array in gives a
JAX array out, and all work under `jax.jit` and `jax.vmap` but the polytope functions and those
that run NumPy and SciPy on the host: `mcc` and `matched_similarity` (NumPy arrays out),
`pairwise_similarity` (all pairs among many SAEs, a DataArray), `feature_splits` (one pair of
SAEs, a pandas table) and `random_baseline` (a float).

The metrics against a known feature tree and stitching are defined for one SAE and run on the
host (NumPy out; each needs a one-to-one match of features to latents): `match_latents`,
`absorption_from_acts`, `absorption_directions`, `hedging_from_weights`, `novel_latents`,
`stitch`, `stitch_curve` and `novel_features`; `absorption`, `absorption_direction` and
`hedging` loop over every SAE of a sweep's Dataset and label the result by its grid, and
`evaluate_on_truth` measures every SAE of a sweep at once (L0, MSE, FVU, dead latents, MCC and
the absorption summaries) on fresh samples of its truth.

- `dimensionality`: D_i (= capacity C_i), D*, feature norms, represented features.
- `interference`: Ŵ_i·W_j, polysemanticity, net interference.
- `neurons`: one-hot neuron responses, monosemanticity (Jermyn et al.), features per neuron,
  the neuron-aligned solution of `hidden_relu` and its exact loss.
- `embedded`: one-hot responses through a fixed input embedding (Jermyn et al.'s models).
- `geometry`: named fractions of D_i and the polytopes features form.
- `recovery`: max cosine, MMCS, MCC and the fraction recovered against known directions, and
  the one-to-one match of true features to latents.
- `reconstruction`: an SAE's MSE, explained variance (about the mean) and shrinkage.
- `sparsity`: L0, latent density, dead and dense latents, the density histogram.
- `universality`: decoder and activation similarity between SAEs, all pairs at once, and their
  random baseline.
- `hedging`: how far a feature's latent's decoder spreads over its tree relatives and the
  other features (Chanin et al. 2025).
- `splitting`: which latents of a wider SAE split a latent of a narrower one.
- `stitching`: a wider SAE's novel latents, added one at a time to a narrower SAE (Leask et
  al. 2024), and the (L0, MSE) curve between the two.
- `dynamics`: direction drift and formation step over training snapshots.
- `memorization`: datapoint dimensionality D_X,i on a finite dataset, the dimensions per represented
  feature or datapoint, the weight norm (Henighan et al. 2023).
"""

from toymodels.analysis.absorption import (
    absorption,
    absorption_direction,
    absorption_directions,
    absorption_from_acts,
)
from toymodels.analysis.evaluation import evaluate_on_truth
from toymodels.analysis.dimensionality import (
    capacity,
    dimensions_per_feature,
    feature_dimensionality,
    feature_norms,
    n_represented,
    represented_features,
)
from toymodels.analysis.dynamics import direction_drift, formation_step
from toymodels.analysis.embedded import embedded_neuron_responses
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
from toymodels.analysis.hedging import Hedging, hedging, hedging_from_weights, tree_relatives
from toymodels.analysis.memorization import (
    datapoint_dimensionality,
    represented_dimensionality,
    weight_norm,
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
from toymodels.analysis.reconstruction import (
    explained_variance,
    fraction_of_variance_unexplained,
    l2_ratio,
    mse,
    relative_reconstruction_bias,
)
from toymodels.analysis.recovery import fraction_recovered, match_latents, max_cosine, mcc, mmcs
from toymodels.analysis.sparsity import (
    DENSITY_BINS,
    dead_fraction,
    dead_latents,
    dense_fraction,
    dense_latents,
    density_histogram,
    l0,
    latent_density,
)
from toymodels.analysis.splitting import feature_splits
from toymodels.analysis.stitching import (
    NOVELTY_THRESHOLD,
    novel_features,
    novel_latents,
    stitch,
    stitch_curve,
)
from toymodels.analysis.universality import (
    matched_similarity,
    max_activation_correlation,
    mean_max_activation_correlation,
    mean_max_cosine,
    pairwise_similarity,
    random_baseline,
)

__all__ = [
    "absorption",
    "absorption_direction",
    "absorption_directions",
    "absorption_from_acts",
    "match_latents",
    "datapoint_dimensionality",
    "represented_dimensionality",
    "weight_norm",
    "DENSITY_BINS",
    "FRACTION_LINES",
    "POLYTOPES",
    "POLYTOPE_KINDS",
    "Polytopes",
    "aligned_loss",
    "aligned_solution",
    "capacity",
    "dead_fraction",
    "dead_latents",
    "dense_fraction",
    "dense_latents",
    "density_histogram",
    "dimensions_per_feature",
    "direction_drift",
    "embedded_neuron_responses",
    "evaluate_on_truth",
    "explained_variance",
    "feature_dimensionality",
    "feature_norms",
    "feature_splits",
    "features_per_neuron",
    "formation_step",
    "fraction_line_counts",
    "fraction_of_variance_unexplained",
    "fraction_recovered",
    "Hedging",
    "hedging",
    "hedging_from_weights",
    "interference",
    "l0",
    "l2_ratio",
    "latent_density",
    "matched_similarity",
    "max_activation_correlation",
    "max_cosine",
    "mcc",
    "mean_max_activation_correlation",
    "mean_max_cosine",
    "mmcs",
    "monosemantic_neurons",
    "mse",
    "n_monosemantic",
    "n_represented",
    "NOVELTY_THRESHOLD",
    "novel_features",
    "novel_latents",
    "nearest_fraction",
    "net_interference",
    "neuron_monosemanticity",
    "neuron_responses",
    "pairwise_similarity",
    "polysemanticity",
    "polytope_counts",
    "polytope_groups",
    "polytope_vertices",
    "random_baseline",
    "relative_reconstruction_bias",
    "represented_features",
    "stitch",
    "stitch_curve",
    "tree_relatives",
]
