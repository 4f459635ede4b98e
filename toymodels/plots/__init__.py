"""The figures of Toy Models of Superposition, drawn from sweep results.

    from toymodels.plots import write_figures
    paths = write_figures({"basic": relu_ds, "linear": linear_ds, "phase21": phase_ds}, "figures/")

Each figure is a function from Dataset(s) to a `matplotlib.figure.Figure` (built without pyplot,
so it works on a headless machine); `write_figures` looks at what each dataset holds — its model
kind, n_features and d_hidden (the `model` attr) and its grid dims — and draws every figure it can
feed. A figure function given a dataset it cannot draw raises a ValueError saying why. Where a
grid has a `seed` dim, figures show the lowest-loss seed at each point (represented_vs_sparsity
shows every seed, and their mean); the phase figures pick it by exact expected loss.

- `tms_intro.png` (`tms_intro`): a relu_output sweep over feature_probability, n ≤ 30.
- `represented_vs_sparsity.png` (`represented_vs_sparsity`): a relu_output and a linear sweep of
  equal (n_features, d_hidden), both over feature_probability.
- `feature_geometry.png` (`feature_geometry`): a relu_output sweep over feature_probability,
  n ≥ 50.
- `phase_2_1.png`, `phase_3_2.png` (`phase_diagram`): a relu_output sweep of 2 features in 1 dim
  (or 3 in 2) over feature_probability and extra_importance, the others of equal importance.
  Its theory is computed on the dataset's grid: seconds for 2→1, minutes for 3→2 (once per grid
  in a process, shared by the sweeps over the same grid).
- `phase_basins_2_1.png`, `phase_basins_3_2.png` (`phase_basins`): the same kind of sweep with at
  least 8 seeds per point: the fraction of seeds that reach the theory's phase at every point,
  beside the lowest-exact-loss seed's diagram and the theory. Such a sweep gets this figure instead of
  `phase_n_m.png`, whose panels it includes.
- `training_dynamics.png` (`training_dynamics`): a sweep of any kind with snapshots (a
  snapshot_step dim), optionally over feature_probability.
- `neuron_polysemanticity.png` (`neuron_polysemanticity`): every hidden_relu and abs sweep over
  feature_probability, drawn together.
- `monosemanticity.png` (`monosemanticity_sweep`): a jermyn sweep over lr, init_bias, d_hidden,
  feature_probability, l1_coefficient, frequency_exponent or bias_decay (bias_decay may be a
  second dim, one line per value).
- `monosemanticity_vs_loss.png` (`monosemanticity_vs_loss`): every jermyn sweep, drawn together.

- `double_descent.png` (`double_descent`): every TMS sweep on fixed datasets over dataset_size
  (Henighan et al. 2023), drawn together (one line per weight decay): train and test loss, the
  dimensionality of datapoints and features, and ‖W‖_F against T.
- `memorization_geometry.png` (`memorization_geometry`): such a sweep with d_hidden = 2: the
  training points' hidden vectors and the features' W_i at a few T.
- `memorization_width.png` (`memorization_width`): such a sweep over dataset_size and d_hidden:
  the (T, m) map of test loss.

- `sae_recovery.png` (`sae_recovery`): an SAE sweep on GroundTruth over a sparsity coefficient
  (and d_sae, seed): MMCS, MCC, recovered fraction and L0.
- `latent_density.png` (`latent_density`): any SAE sweep: log latent-density histograms.
- `sae_toy_directions.png` (`sae_toy_directions`): every SAE sweep on a 2-D toy model's
  activations, drawn together (ARENA's picture, with and without resampling).
- `universality_similarity.png` (`universality_similarity`), `universality_vs_recovery.png`
  (`universality_vs_recovery`) and the table `universality_feature_splits.csv`
  (`feature_split_table`): an SAE sweep on GroundTruth over d_sae (≥ 2 widths) and seed (≥ 2
  seeds): the pairwise similarity of SAEs beside the random baseline, agreement against recovery
  of the truth, and which latents of the widest SAE split those of the narrowest.

Not from one sweep, so not in `write_figures`: `absorption_study.png`
(`toymodels.plots.absorption.absorption_study`) draws the report of
`experiments/absorption_study.py`, many sweeps measured with `tm.analysis.evaluate_on_truth`.

Grid dims other than the ones a figure plots and `seed` must have a single value. When several
datasets qualify for one figure, each gets its own file, suffixed with its name
(`tms_intro_basic.png`); the neuron figure instead draws all its datasets together.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from toymodels.plots import (
    basins,
    dynamics,
    geometry,
    intro,
    memorization,
    monosemanticity,
    neurons,
    phase_change,
    represented,
    sae,
    style,
    universality,
)
from toymodels.plots.basins import phase_basins
from toymodels.plots._data import model_config
from toymodels.plots.dynamics import training_dynamics
from toymodels.plots.geometry import feature_geometry
from toymodels.plots.intro import tms_intro
from toymodels.plots.memorization import double_descent, memorization_geometry, memorization_width
from toymodels.plots.monosemanticity import monosemanticity_sweep, monosemanticity_vs_loss
from toymodels.plots.neurons import neuron_polysemanticity
from toymodels.plots.phase_change import phase_diagram
from toymodels.plots.represented import represented_vs_sparsity
from toymodels.plots.sae import latent_density, sae_recovery, sae_toy_directions
from toymodels.plots.universality import (
    feature_split_table,
    universality_similarity,
    universality_vs_recovery,
)

__all__ = [
    "double_descent",
    "feature_geometry",
    "feature_split_table",
    "figure_plan",
    "latent_density",
    "memorization_geometry",
    "memorization_width",
    "monosemanticity_sweep",
    "monosemanticity_vs_loss",
    "neuron_polysemanticity",
    "phase_basins",
    "phase_diagram",
    "represented_vs_sparsity",
    "sae_recovery",
    "sae_toy_directions",
    "style",
    "tms_intro",
    "training_dynamics",
    "universality_similarity",
    "universality_vs_recovery",
    "write_figures",
]

log = logging.getLogger(__name__)


def _check(datasets) -> None:
    if not isinstance(datasets, Mapping):
        raise ValueError(f"datasets must be a mapping of name to xarray.Dataset; "
                         f"got {type(datasets).__name__}")
    for name, ds in datasets.items():
        if not isinstance(ds, xr.Dataset):
            raise ValueError(f"datasets[{name!r}] must be an xarray.Dataset; "
                             f"got {type(ds).__name__}")


def _qualifying(datasets: Mapping[str, xr.Dataset], figure: str, problems) -> list[str]:
    """The names of the datasets `problems` finds nothing wrong with, for `figure`."""
    out = []
    for name, ds in datasets.items():
        found = problems(ds)
        if found:
            log.debug("%s does not feed %s: %s", name, figure, "; ".join(found))
        else:
            out.append(name)
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "dataset"


def _files(stem: str, keys: list[str], ext: str = "png") -> list[tuple[str, str]]:
    """(key, file name) per qualifying key: `stem.ext` if one, `stem_key.ext` each if several."""
    if len(keys) == 1:
        return [(keys[0], f"{stem}.{ext}")]
    return [(k, f"{stem}_{_slug(k)}.{ext}") for k in keys]


#: (file name, function, its arguments): a `.png` file's function returns a Figure, a `.csv`
#: file's a pandas DataFrame (a table drawn beside a figure).
Plan = list[tuple[str, Callable[..., Figure | pd.DataFrame], tuple]]


def figure_plan(datasets: Mapping[str, xr.Dataset]) -> Plan:
    """What `write_figures` would draw: (file name, figure function, its arguments) per figure.

    Cheap (nothing is drawn); see the module docstring for the rules.
    """
    _check(datasets)
    plan: Plan = []

    def each(stem, problems, figure, ext="png"):
        names = _qualifying(datasets, stem, problems)
        plan.extend((file, figure, (datasets[name],)) for name, file in _files(stem, names, ext))

    def together(stem, problems, figure):
        """One figure of every qualifying dataset, passed as {name: dataset}."""
        names = _qualifying(datasets, stem, problems)
        if names:
            plan.append((f"{stem}.png", figure, ({k: datasets[k] for k in names},)))

    each("tms_intro", intro.problems, tms_intro)

    stem = "represented_vs_sparsity"
    relu = _qualifying(datasets, stem, lambda ds: represented.problems(ds, "relu_output"))
    linear = _qualifying(datasets, stem, lambda ds: represented.problems(ds, "linear"))
    pairs = [(r, li) for r in relu for li in linear
             if not represented.pair_problems(datasets[r], datasets[li])]
    files = _files(stem, [f"{r}_vs_{li}" for r, li in pairs])
    for (r, li), (_, file) in zip(pairs, files):
        plan.append((file, represented_vs_sparsity, (datasets[r], datasets[li])))

    each("feature_geometry", geometry.problems, feature_geometry)

    # A sweep with many seeds per point gets the basin figure, which holds its phase diagram.
    many_seeds = set(_qualifying(datasets, "phase_basins", basins.problems))
    for stem, figure, names in [
        ("phase", phase_diagram,
         [k for k in _qualifying(datasets, "phase_diagram", phase_change.problems)
          if k not in many_seeds]),
        ("phase_basins", phase_basins, [k for k in datasets if k in many_seeds]),
    ]:
        by_shape: dict[tuple[int, int], list[str]] = {}
        for name in names:
            model = model_config(datasets[name])
            by_shape.setdefault((model["n_features"], model["d_hidden"]), []).append(name)
        for (n, m), group in sorted(by_shape.items()):
            for name, file in _files(f"{stem}_{n}_{m}", group):
                plan.append((file, figure, (datasets[name],)))

    each("training_dynamics", dynamics.problems, training_dynamics)
    together("double_descent", memorization.problems, double_descent)
    each("memorization_geometry", memorization.geometry_problems, memorization_geometry)
    each("memorization_width", memorization.width_problems, memorization_width)

    together("neuron_polysemanticity", neurons.problems, neuron_polysemanticity)

    each("monosemanticity", monosemanticity.problems, monosemanticity_sweep)
    together("monosemanticity_vs_loss", monosemanticity.loss_problems, monosemanticity_vs_loss)

    each("sae_recovery", sae.recovery_problems, sae_recovery)
    each("latent_density", sae.density_problems, latent_density)
    together("sae_toy_directions", sae.toy_problems, sae_toy_directions)
    each("universality_similarity", universality.problems, universality_similarity)
    each("universality_vs_recovery", universality.problems, universality_vs_recovery)
    each("universality_feature_splits", universality.problems, feature_split_table, ext="csv")
    return plan


def write_figures(datasets: Mapping[str, xr.Dataset], out_dir: str | Path) -> list[Path]:
    """Draw every figure the datasets feed and save each as a PNG in `out_dir` (tables as CSV).

    Which dataset feeds which figure is read from its content (see the module docstring); a
    dataset that feeds none is skipped (logged at DEBUG level with the reasons).

    Args:
      datasets: name → sweep result (`toymodels.sweep` or `toymodels.load_results`). Names
        suffix the file names when several datasets feed one figure.
      out_dir: the folder to write into; created if missing.

    Returns:
      The paths written, in drawing order.
    """
    plan = figure_plan(datasets)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for file, figure, args in plan:
        log.info("drawing %s", file)
        drawn = figure(*args)
        path = out_dir / file
        if isinstance(drawn, pd.DataFrame):
            drawn.to_csv(path, index=False, float_format="%.4g")
        else:
            drawn.savefig(path, dpi=style.DPI)
        paths.append(path)
    return paths
