"""Feature splitting: which latents of a wider SAE divide up one latent of a narrower SAE.

Bricken et al. (2023, "Towards Monosemanticity") saw a feature of a small dictionary reappear in a
larger one as several more specific features, with nearby decoder directions and firing on
subsets of its inputs. `feature_splits` lists those candidate children: every (narrow, wide)
pair of latents whose decoder directions are close and, given activations on shared inputs,
where the narrow latent fires on most of the wide latent's firings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toymodels.analysis._checks import check_in_range
from toymodels.analysis._cosines import BLOCK_ELEMENTS, pairs_above

__all__ = ["feature_splits"]


def _matrix(name: str, value, columns: int | None = None) -> np.ndarray:
    value = np.asarray(value)
    if value.ndim != 2:
        raise ValueError(
            f"feature_splits: {name} must be 2-D for one SAE (select one grid point with "
            f".isel/.sel first), got shape {value.shape}"
        )
    if columns is not None and value.shape[1] != columns:
        raise ValueError(
            f"feature_splits: {name} must have {columns} columns, one per latent, got shape "
            f"{value.shape}"
        )
    return value


def _coactivation(fires_narrow, fires_wide, narrow, wide):
    """#{b : both fire} / #{b : the wide latent fires} for each listed pair; 0 if it never fires."""
    out = np.zeros(len(narrow), np.float64)
    wide_count = fires_wide.sum(axis=0)
    per_chunk = max(1, BLOCK_ELEMENTS // max(fires_narrow.shape[0], 1))
    for start in range(0, len(narrow), per_chunk):
        i, k = narrow[start : start + per_chunk], wide[start : start + per_chunk]
        both = np.sum(fires_narrow[:, i] & fires_wide[:, k], axis=0)
        out[start : start + per_chunk] = both / np.maximum(wide_count[k], 1)
    return out


def feature_splits(
    W_dec_narrow,
    W_dec_wide,
    acts_narrow=None,
    acts_wide=None,
    *,
    cos_threshold: float = 0.7,
    coact_threshold: float = 0.5,
) -> pd.DataFrame:
    r"""For each latent of the narrow SAE, the latents of the wide SAE that split it.

    Wide latent k is a child of narrow latent i when cos(W_dec_narrow[i], W_dec_wide[k]) >
    cos_threshold and, if activations on shared inputs are given, the narrow latent fires on
    more than coact_threshold of the wide latent's firings:
    coactivation_ik = #{b : f^N_bi ≠ 0 and f^W_bk ≠ 0} / #{b : f^W_bk ≠ 0} (0 for a wide latent
    that never fires). A narrow latent with two or more children has split; with one it was kept.
    The defaults are conventions, not published constants: choose cos_threshold well above the
    chance level `random_baseline(d_wide, d_narrow, d_in, similarity=mmcs)`.

    Not jittable (NumPy, for one pair of SAEs; the cosines are computed in blocks).

    Args:
      W_dec_narrow: (d_narrow, d_in) decoder of the narrower SAE, one latent per row.
      W_dec_wide: (d_wide, d_in) decoder of the wider SAE.
      acts_narrow: (batch, d_narrow) latent activations of the narrow SAE, or None.
      acts_wide: (batch, d_wide) activations of the wide SAE on the same inputs, or None; give
        both or neither.
      cos_threshold: the decoder cosine a child exceeds, in [−1, 1).
      coact_threshold: the coactivation a child exceeds, in [0, 1), used with activations.

    Returns:
      A pandas DataFrame, one row per (narrow, wide) pair found, sorted by narrow_latent then
      by decreasing cosine, with columns narrow_latent, wide_latent (row indices into the
      decoders), cosine, coactivation (only with activations) and n_split (the number of
      children of that narrow latent). `table.groupby("narrow_latent")` lists each latent's
      children; `table[table.n_split >= 2]` the latents that split.
    """
    narrow = _matrix("W_dec_narrow", W_dec_narrow)
    wide = _matrix("W_dec_wide", W_dec_wide, columns=narrow.shape[1])
    check_in_range("feature_splits", "cos_threshold", cos_threshold, -1, 1, closed="left")
    check_in_range("feature_splits", "coact_threshold", coact_threshold, 0, 1, closed="left")
    if (acts_narrow is None) != (acts_wide is None):
        raise ValueError("feature_splits: give both acts_narrow and acts_wide, or neither")

    i, k, cosine = pairs_above(narrow, wide, cos_threshold)
    columns = {"narrow_latent": i, "wide_latent": k, "cosine": cosine.astype(np.float64)}
    if acts_narrow is not None:
        fires_narrow = _matrix("acts_narrow", acts_narrow, columns=narrow.shape[0]) != 0
        fires_wide = _matrix("acts_wide", acts_wide, columns=wide.shape[0]) != 0
        if fires_narrow.shape[0] != fires_wide.shape[0]:
            raise ValueError(
                "feature_splits: acts_narrow and acts_wide must be taken on the same batch, got "
                f"{fires_narrow.shape[0]} and {fires_wide.shape[0]} examples"
            )
        coactivation = _coactivation(fires_narrow, fires_wide, i, k)
        keep = coactivation > coact_threshold
        columns = {name: column[keep] for name, column in columns.items()}
        columns["coactivation"] = coactivation[keep]
    table = pd.DataFrame(columns)
    table["n_split"] = table.groupby("narrow_latent")["wide_latent"].transform("size")
    table = table.sort_values(["narrow_latent", "cosine"], ascending=[True, False])
    return table.reset_index(drop=True)
