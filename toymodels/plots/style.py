"""The look every figure shares: colours, colormaps, font sizes, and the density axis.

One colour per phase and per model kind, used by every figure, so a phase or a kind reads the same
wherever it appears. Figures are built on `matplotlib.figure.Figure` directly (no pyplot, no
global backend state) at a size that stays legible when a README shows the PNG ~800 px wide.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from toymodels.phase import PHASES

#: Resolution of saved PNGs.
DPI = 150
#: Width (inches) of a full-width figure: 1200 px at DPI, shown at ~800 px in a README.
WIDTH = 8.0

#: One colour per phase, in code order (`toymodels.phase.PHASES`: not represented, dedicated,
#: superposition): grey, sky blue, orange (Okabe–Ito).
PHASE_COLORS: dict[str, str] = dict(zip(PHASES, ["#BBBBBB", "#56B4E9", "#E69F00"], strict=True))
#: Discrete colormap and norm that map phase code k to PHASE_COLORS[PHASES[k]].
PHASE_CMAP = ListedColormap([PHASE_COLORS[p] for p in PHASES], name="phases")
PHASE_NORM = BoundaryNorm(np.arange(len(PHASES) + 1) - 0.5, len(PHASES))

#: One colour per model kind.
KIND_COLORS: dict[str, str] = {
    "relu_output": "#D55E00",
    "linear": "#0072B2",
    "hidden_relu": "#009E73",
    "abs": "#CC79A7",
}
#: How a kind is named in legends.
KIND_LABELS: dict[str, str] = {
    "relu_output": "ReLU output",
    "linear": "linear",
    "hidden_relu": "hidden ReLU",
    "abs": "abs (computation)",
}

#: W Wᵀ: red positive, blue negative, white zero (used with symmetric limits).
GRAM_CMAP = "RdBu_r"
#: The TMS bar colour, polysemanticity ‖interference_i‖: black = alone in its dimensions, through
#: red to yellow = shares them. Inferno without its near-white top, so bars stay visible on white.
POLYSEMANTICITY_CMAP = ListedColormap(mpl.colormaps["inferno"](np.linspace(0.0, 0.85, 256)),
                                      name="polysemanticity")
#: Neuron responses, zero white.
RESPONSE_CMAP = LinearSegmentedColormap.from_list("responses", ["#FFFFFF", "#009E73", "#00352A"])
#: Feature index in importance order (most important first).
FEATURE_CMAP = "viridis"

#: The fraction lines of D_i the geometry figures draw, with their labels and colours.
FRACTION_STYLE: dict[str, tuple[float, str, str]] = {
    "dedicated": (1.0, "1", "#000000"),
    "tetrahedron": (3 / 4, "3/4", "#0072B2"),
    "triangle": (2 / 3, "2/3", "#009E73"),
    "antipodal": (1 / 2, "1/2", "#D55E00"),
    "pentagon": (2 / 5, "2/5", "#CC79A7"),
    "square antiprism": (3 / 8, "3/8", "#E69F00"),
}

#: Axis labels in mathtext, shared so that a quantity is written one way everywhere.
LABEL_D = r"$D_i$"
LABEL_NORM = r"$\|W_i\|$"
LABEL_DSTAR = r"$D^* = m\,/\,\|W\|_F^2$"

RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "figure.titlesize": 11,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def styled(fn: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the package's rc settings (fonts are fixed when text is created)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def new_figure(width: float = WIDTH, height: float = 4.0) -> Figure:
    """A blank figure with constrained layout, not attached to pyplot (so no GUI backend)."""
    return Figure(figsize=(width, height), layout="constrained")


def density_axis(ax: Axes, densities) -> None:
    """x: feature density 1 − S on a log axis, inverted so that sparser is to the right."""
    d = np.asarray(densities, float)
    ax.set_xscale("log")
    lo, hi = d.min(), d.max()
    pad = (hi / lo) ** 0.05 if hi > lo else 2.0
    ax.set_xlim(hi * pad, lo / pad)
    ax.set_xlabel("feature density 1 − S  (sparser →)")


def phase_legend(fig: Figure, extra=(), **kwargs) -> None:
    """One legend entry per phase, in code order, then the `extra` handles."""
    handles = [Patch(facecolor=PHASE_COLORS[p], edgecolor="0.3", label=p) for p in PHASES]
    handles += list(extra)
    fig.legend(handles=handles, title="phase of the extra feature", **kwargs)


def log_edges(values) -> np.ndarray:
    """Cell edges for pcolormesh on a log axis: geometric midpoints, the end cells mirrored."""
    v = np.sort(np.asarray(values, float))
    if len(v) == 1:
        return np.array([v[0] / np.sqrt(10), v[0] * np.sqrt(10)])
    mid = np.sqrt(v[1:] * v[:-1])
    return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def fmt_density(p: float) -> str:
    """A density like 0.01 as '0.01', 1.0 as '1'."""
    return f"{p:.3g}"
