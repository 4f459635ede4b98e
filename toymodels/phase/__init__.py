"""Phase diagrams of superposition: classify trained weights, and compute the theory's diagram.

    from toymodels import phase
    theory = phase.theoretical_phase_diagram(np.logspace(-1, 1, 20), np.logspace(0, -2, 20))
    empirical = phase.classify_phase(phase.lowest_loss(ds, "seed").W)
    phase.agreement(empirical, theory.phase)
    phase.basin_fraction(phase.classify_phase(ds.W, ds.b), theory.phase)   # per point, over seeds

Modules: `classify` (phase codes from W, best-of-seeds selection, agreement), `exact` (the exact
expected loss of a ReLU-output model with ≤ 3 features), `theory` (candidate configurations,
their optimal losses, the theoretical diagram) and `basins` (the fraction of seeds that train
into the theory's phase).
"""

from toymodels.phase.basins import basin_fraction
from toymodels.phase.classify import PHASES, agreement, classify_phase, lowest_loss
from toymodels.phase.exact import exact_loss, loss_components
from toymodels.phase.theory import (
    Configuration,
    Optimum,
    configurations,
    expected_loss,
    importances,
    optimal_loss,
    optimize,
    theoretical_phase_diagram,
)

__all__ = [
    "PHASES",
    "Configuration",
    "Optimum",
    "agreement",
    "basin_fraction",
    "classify_phase",
    "configurations",
    "exact_loss",
    "expected_loss",
    "importances",
    "loss_components",
    "lowest_loss",
    "optimal_loss",
    "optimize",
    "theoretical_phase_diagram",
]
