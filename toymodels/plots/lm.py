"""Figures of an SAE's latents on a language model (`toymodels.lm.features`).

- `token_latent_heatmap`: a prompt's tokens × the latents most active on them.
- `latent_contexts`: a latent's max-activating contexts from the store, aligned at the chosen
  token, each token shaded by the latent's activation on it.
- `contrast_strips`: the per-prompt activations of the latents that best separate prompt sets.

Each takes the arrays and tables `toymodels.lm.features` computes (no model, no torch) and returns
a `matplotlib.figure.Figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from toymodels.plots import style

__all__ = ["contrast_strips", "latent_contexts", "token_latent_heatmap"]

#: Activations: white at zero, through orange to dark red.
ACTIVATION_CMAP = LinearSegmentedColormap.from_list("activation",
                                                    ["#FFFFFF", "#E69F00", "#8B1A00"])
#: One colour per prompt set, in the order given (Okabe–Ito).
SET_COLORS = ["#009E73", "#D55E00", "#0072B2", "#CC79A7", "#E69F00", "#56B4E9"]


def _label(token: str, width: int = 10) -> str:
    """A token as a tick label: control characters escaped ("\\n"), `$` not read as mathtext."""
    token = "".join(c if c.isprintable() else repr(c)[1:-1] for c in token).replace("$", r"\$")
    return token if len(token) <= width else token[:width - 1] + "…"


def heatmap_latents(feature_acts: np.ndarray, k: int = 3, max_latents: int = 24) -> np.ndarray:
    """The latents a heatmap shows: every latent among some token's k largest (and firing), the
    `max_latents` largest of them, ordered by the token where each peaks (then largest first)."""
    f = np.asarray(feature_acts)
    top = np.argsort(-f, axis=1)[:, :k]
    chosen = np.unique(top[np.take_along_axis(f, top, axis=1) > 0])
    if len(chosen) > max_latents:
        chosen = chosen[np.argsort(-f[:, chosen].max(0), kind="stable")[:max_latents]]
    peak = np.argmax(f[:, chosen], axis=0)
    return chosen[np.lexsort((-f[:, chosen].max(0), peak))]


@style.styled
def token_latent_heatmap(tokens: Sequence[str], feature_acts: np.ndarray, *,
                         latents: Sequence[int] | None = None, k: int = 3, max_latents: int = 24,
                         title: str | None = None) -> Figure:
    """Tokens (x) × latents (y), coloured by activation.

    Args:
      tokens: the prompt's tokens (seq,).
      feature_acts: (seq, d_sae) the SAE's latents on them (`lm.text_latents`).
      latents: which latents to show; default `heatmap_latents(feature_acts, k, max_latents)`.
    """
    f = np.asarray(feature_acts, float)
    if f.ndim != 2 or f.shape[0] != len(tokens):
        raise ValueError(f"feature_acts: expected (seq={len(tokens)}, d_sae), got {f.shape}")
    latents = heatmap_latents(f, k, max_latents) if latents is None else np.asarray(latents)
    if len(latents) == 0:
        raise ValueError("no latent fires on this prompt: nothing to draw")
    values = f[:, latents].T
    height = min(10.0, 1.4 + 0.18 * len(latents))
    fig = style.new_figure(min(style.WIDTH, 1.8 + 0.42 * len(tokens)), height)
    ax = fig.add_subplot()
    image = ax.imshow(values, aspect="auto", cmap=ACTIVATION_CMAP, vmin=0,
                      vmax=max(values.max(), 1e-12), interpolation="nearest")
    ax.set_xticks(range(len(tokens)), [_label(t) for t in tokens], rotation=60, ha="right")
    ax.set_yticks(range(len(latents)), [str(i) for i in latents])
    ax.set_ylabel("latent")
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    fig.colorbar(image, ax=ax, label="activation", shrink=0.8)
    ax.set_title(title or "SAE latents per token")
    return fig


@style.styled
def latent_contexts(contexts: Sequence, latent: int, *, density: float | None = None,
                    promoted: Sequence[tuple[str, float]] | None = None,
                    title: str | None = None) -> Figure:
    """A latent's max-activating contexts (`lm.max_activating_contexts`), one per row, aligned at
    the token each was chosen for (boxed), every token shaded by the latent's activation."""
    if not contexts:
        raise ValueError(f"latent {latent} has no contexts (it never fires in the store)")
    left = max(c.index for c in contexts)
    right = max(len(c.tokens) - c.index for c in contexts)
    columns = left + right
    values = np.full((len(contexts), columns), np.nan)
    for r, c in enumerate(contexts):
        shift = left - c.index
        values[r, shift:shift + len(c.tokens)] = c.feature_acts
    fig = style.new_figure(style.WIDTH, 0.9 + 0.32 * len(contexts))
    ax = fig.add_subplot()
    top = np.nanmax(values) if np.isfinite(values).any() else 1.0
    ax.imshow(values, aspect="auto", cmap=ACTIVATION_CMAP, vmin=0, vmax=max(top, 1e-12),
              interpolation="nearest")
    for r, c in enumerate(contexts):
        shift = left - c.index
        for i, token in enumerate(c.tokens):
            ax.text(shift + i, r, _label(token, 9), ha="center", va="center", fontsize=6.5,
                    fontweight="bold" if i == c.index else "normal")
        ax.add_patch(_box(left, r))
    ax.set_xticks([])
    ax.set_yticks(range(len(contexts)), [f"{c.value:.2f}" for c in contexts])
    ax.set_ylabel("activation on the boxed token")
    for side in ax.spines.values():
        side.set_visible(False)
    parts = [f"latent {latent}"]
    if density is not None:
        parts.append(f"fires on {100 * density:.3g} % of tokens")
    if promoted:
        parts.append("promotes " + ", ".join(_label(t) for t, _ in promoted[:6]))
    ax.set_title(title or " · ".join(parts))
    return fig


def _box(x: int, y: int):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="0.15", linewidth=1.0)


def strip_latents(table: pd.DataFrame, n: int = 6) -> pd.DataFrame:
    """The rows `contrast_strips` draws: the `n` significant latents of largest |effect|, one row
    each (the comparison where it separates most)."""
    significant = table[table["significant"]]
    order = significant.assign(_abs=-significant["effect"].abs()).sort_values("_abs", kind="stable")
    return order.drop_duplicates("latent").head(n).drop(columns="_abs")


@style.styled
def contrast_strips(table: pd.DataFrame, activations: Mapping[str, np.ndarray], *, n: int = 6,
                    statistic: str = "max", title: str | None = None) -> Figure:
    """Per-prompt activations, set by set, of the latents that best separate the sets.

    Args:
      table: `lm.contrast_latents`'s table.
      activations: {set: (prompts, d_sae)} the per-prompt activations it tested.
      n: how many latents (panels): the significant ones of largest |effect|.
    """
    rows = strip_latents(table, n)
    if rows.empty:
        raise ValueError("no latent separates the sets at the chosen false-discovery rate")
    names = list(activations)
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig = style.new_figure(style.WIDTH, 0.5 + 2.4 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, (_, row) in zip(axes.flat, rows.iterrows()):
        latent = int(row["latent"])
        for j, name in enumerate(names):
            y = np.asarray(activations[name])[:, latent]
            x = j + rng.uniform(-0.18, 0.18, len(y))
            color = SET_COLORS[j % len(SET_COLORS)]
            ax.scatter(x, y, s=7, color=color, alpha=0.7, linewidths=0)
            ax.hlines(y.mean(), j - 0.3, j + 0.3, color="0.1", linewidth=1.2)
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"latent {latent}\n{row['set']} {'↑' if row['effect'] > 0 else '↓'}  "
                     f"r = {row['effect']:+.2f}, q = {row['q']:.1g}", fontsize=8.5)
        ax.set_ylabel(f"per-prompt {statistic}" if ax in axes[:, 0] else "")
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.suptitle(title or "Latents that separate the prompt sets (Mann–Whitney U, BH)")
    return fig
