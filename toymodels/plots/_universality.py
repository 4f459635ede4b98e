"""What the universality study's scores and figures share: which sweeps feed it, the sweep cut
into one part per width, its GroundTruth rebuilt to draw shared inputs from, and the sparse
latent correlations.

Activations are sparse (a few latents of thousands fire per input), so latent correlations are
computed from the sparse co-firing counts, E[f_i g_k] − E f_i E g_k: O(w_a w_b + N L0_a L0_b)
per pair of SAEs instead of the O(N w_a w_b) of a dense matrix product: all 300 pairs of a
6-width × 4-seed grid (up to 4,096 latents) on 8,192 inputs take under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json

import numpy as np
import scipy.sparse as sp
import xarray as xr

from toymodels.plots import _data
from toymodels.plots.sae import _is_sae, _only

WIDTH = "d_sae"
SEED = _data.SEED
#: A latent whose decoder has a cosine above this with a true feature has found it.
FOUND = 0.9
#: Shared inputs encoded for the activation scores (the rarest true features of a Sharkey-like
#: GroundTruth fire on ~0.03% of inputs: a few times in 8k).
N_INPUTS = 8192
#: Cosines held at once when reducing a correlation matrix (32 MiB of float64).
_BLOCK = 2**22


def problems(ds: xr.Dataset) -> list[str]:
    """What keeps `ds` from feeding the universality figures; empty if nothing does."""
    found = _is_sae(ds)
    if found:
        return found
    if "dictionary" not in ds or ds["dictionary"].dims != ("feature", "d_in"):
        found.append("needs one known dictionary (a GroundTruth sweep)")
    if json.loads(ds.attrs.get("data", "{}")).get("kind") != "ground_truth":
        found.append("needs GroundTruth data (the 'data' attr of kind ground_truth) to draw "
                     "shared inputs from")
    grid = _data.grid_dims(ds)
    for dim, what in ((WIDTH, "widths"), (SEED, "seeds")):
        if dim not in grid or ds.sizes[dim] < 2:
            found.append(f"needs a {dim!r} grid dim with at least 2 {what}")
    return found + _only(ds, {WIDTH, SEED})


def ground_truth_of(ds: xr.Dataset):
    """The sweep's GroundTruth, rebuilt from its `data` attr and checked against `dictionary`."""
    from toymodels.sources import GroundTruth

    fields = json.loads(ds.attrs["data"])
    fields.pop("kind")
    truth = GroundTruth(**fields)
    if not np.allclose(truth.dictionary, ds["dictionary"].values, atol=1e-6):
        raise ValueError("the dataset's 'data' attr does not rebuild its 'dictionary' (a "
                         "GroundTruth of another version?); cannot draw its inputs")
    return truth


def split_by_width(ds: xr.Dataset) -> dict[int, xr.Dataset]:
    """{d_sae: (seed, latent, …) Dataset, padding dropped}, narrowest first."""
    from toymodels.widths import split_widths

    ds = _data.squeeze_grid(ds, keep=(WIDTH, SEED))
    return {w: part.transpose(SEED, ...) for w, part in sorted(split_widths(ds).items())}


class Activations:
    """Activations on the shared inputs (one SAE's latents, or the true coefficients): a sparse
    (batch, d) matrix with each column's mean and spread."""

    def __init__(self, matrix: sp.spmatrix):
        self.matrix = sp.csc_matrix(matrix, dtype=np.float64)
        self.n = self.matrix.shape[0]
        self.mean = np.asarray(self.matrix.mean(axis=0)).ravel()
        square = np.asarray(self.matrix.multiply(self.matrix).mean(axis=0)).ravel()
        # Exact constancy (max = min, implicit zeros included), as
        # `analysis.max_activation_correlation` tests it: rounding would give a dead latent a
        # tiny spread, and so a direction.
        constant = (self.matrix.max(axis=0).toarray().ravel()
                    == self.matrix.min(axis=0).toarray().ravel())
        self.sd = np.where(constant, 0.0, np.sqrt(np.maximum(square - self.mean**2, 0.0)))
        self.alive = self.sd > 0

    @classmethod
    def encoded(cls, sae, x: np.ndarray, rows: int = 2048) -> "Activations":
        """`sae.encode(x)`, a block of rows at a time so that no dense (batch, d_sae) is held."""
        blocks = [sp.csr_matrix(np.asarray(sae.encode(x[i:i + rows])))
                  for i in range(0, len(x), rows)]
        return cls(sp.vstack(blocks))


def max_correlations(a: Activations, b: Activations) -> tuple[np.ndarray, np.ndarray]:
    r"""(max_k ρ_ik, max_i ρ_ik) with ρ_ik = corr(a_i, b_k) over the shared inputs.

    ρ_ik = (E[a_i b_k] − E a_i E b_k) / (σ_i σ_k), population moments; 0 when either latent is
    constant on the inputs (as in `analysis.max_activation_correlation`, which this equals).
    E[a_i b_k] comes from the sparse product aᵀ b; the rest is rank one, reduced in row blocks.
    """
    cross = (a.matrix.T @ b.matrix).tocsr()
    rows = max(1, _BLOCK // max(len(b.mean), 1))
    row_max = np.empty(len(a.mean))
    column_max = np.full(len(b.mean), -np.inf)
    inverse_b = np.divide(1.0, b.sd, out=np.zeros_like(b.sd), where=b.sd > 0)
    for start in range(0, len(a.mean), rows):
        block = slice(start, start + rows)
        inverse_a = np.divide(1.0, a.sd[block], out=np.zeros_like(a.sd[block]),
                              where=a.sd[block] > 0)
        cov = cross[block].toarray() / a.n - np.outer(a.mean[block], b.mean)
        rho = cov * inverse_a[:, None] * inverse_b[None, :]
        row_max[block] = rho.max(axis=1)
        column_max = np.maximum(column_max, rho.max(axis=0))
    return row_max, column_max


def alive_mean(values: np.ndarray, alive: np.ndarray) -> float:
    return float(values[alive].mean()) if alive.any() else np.nan


def distinct(pairs: xr.DataArray) -> xr.DataArray:
    """`pairs` (d_sae_a, seed_a, d_sae_b, seed_b) with each SAE against itself set to NaN."""
    same = (pairs[f"{WIDTH}_a"] == pairs[f"{WIDTH}_b"]) & (pairs[f"{SEED}_a"] == pairs[f"{SEED}_b"])
    return pairs.where(~same)


def by_width(pairs: xr.DataArray) -> xr.DataArray:
    """(d_sae_a, d_sae_b): the mean over seed pairs, each SAE against itself left out."""
    return distinct(pairs).mean([f"{SEED}_a", f"{SEED}_b"])


def per_sae(pairs: xr.DataArray) -> xr.Dataset:
    """Each SAE's mean score with the other seeds of its width and with the SAEs of other widths.

    Returns a Dataset (d_sae, seed) with `same_width` and `other_widths`.
    """
    pairs = distinct(pairs)
    same = pairs[f"{WIDTH}_a"] == pairs[f"{WIDTH}_b"]
    rename = {f"{WIDTH}_a": WIDTH, f"{SEED}_a": SEED}
    reduce = [f"{WIDTH}_b", f"{SEED}_b"]
    return xr.Dataset({"same_width": pairs.where(same).mean(reduce).rename(rename),
                       "other_widths": pairs.where(~same).mean(reduce).rename(rename)})

