"""Every SAE of a sweep measured on fresh samples of its ground truth, in one pass.

SAEBench's advice is to compare SAEs at matched L0, so a study of architectures needs the
sparsity, the reconstruction and the recovery of each SAE side by side, measured on the same
inputs: `evaluate_on_truth(ds, truth)` encodes one batch drawn from the truth (a key the training
streams never use) with every SAE of the sweep and returns, over the sweep's grid,

- `l0`: mean number of non-zero latents per sample;
- `mse`: mean over samples of ‖x̂ − x‖²; `fvu`: Σ‖x̂ − x‖² / Σ‖x − x̄‖²;
- `dead_fraction`: the share of latents that never fire on the batch;
- `mcc`: the one-to-one match of decoder rows to the true directions (`mcc`);

and, where the truth has a feature tree, the summaries of absorption over its children
(`absorption_from_acts`, `absorption_directions`): `absorption`, the mean firing-view
absorption; `absorbed_children`, the share of children with absorption > 1/2; and
`decoder_parent_cos`, the mean cosine of a child's latent's decoder with its parent's direction.
This module sits above `toymodels.sae` (it encodes with `tm.SAE`), as `absorption` does.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import xarray as xr

from toymodels.analysis._sweep import check_sae_sweep, points
from toymodels.analysis.absorption import absorption_directions, absorption_from_acts
from toymodels.analysis.reconstruction import fraction_of_variance_unexplained, mse
from toymodels.analysis.recovery import match_latents, mcc
from toymodels.analysis.sparsity import dead_fraction, l0
from toymodels.sae.model import SAE

__all__ = ["EVAL_SAMPLES", "evaluate_on_truth"]

#: samples of the evaluation batch.
EVAL_SAMPLES = 1 << 14


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def evaluate_on_truth(ds: xr.Dataset, truth: Any, *, n_samples: int = EVAL_SAMPLES,
                      seed: int = 12_345) -> xr.Dataset:
    """(*grid) L0, MSE, FVU, dead fraction and MCC of every SAE of a sweep on `n_samples` fresh
    samples of `truth` (a `GroundTruth`), and its absorption summaries where the truth is a
    tree (see the module docstring). Every SAE sees the same samples, drawn with `seed`."""
    if not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"evaluate_on_truth: n_samples must be an integer ≥ 2; got {n_samples!r}")
    if getattr(truth, "d_out", None) is not None:
        raise ValueError("evaluate_on_truth: truth has d_out set (a transcoder's truth); it "
                         "measures SAEs, which reconstruct their input")
    dictionary = np.asarray(truth.dictionary)
    grid = check_sae_sweep("evaluate_on_truth", ds, dictionary)
    parents = np.asarray(truth.parents)
    tree = bool((parents >= 0).any())
    c = np.asarray(truth.coefficients(jax.random.key(seed), n_samples))
    x = c @ dictionary
    names = ["l0", "mse", "fvu", "dead_fraction", "mcc"]
    if tree:
        names += ["absorption", "absorbed_children", "decoder_parent_cos"]
    rows: dict[str, list[float]] = {name: [] for name in names}
    for point in points(ds, grid):
        sae = SAE.from_results(point)
        f = np.asarray(sae.encode(x))
        x_hat = np.asarray(sae.decode(f))
        rows["l0"].append(float(l0(f)))
        rows["mse"].append(float(mse(x, x_hat)))
        rows["fvu"].append(float(fraction_of_variance_unexplained(x, x_hat)))
        rows["dead_fraction"].append(float(dead_fraction(f)))
        W_dec = np.asarray(sae.params["W_dec"])
        rows["mcc"].append(float(mcc(W_dec, dictionary)))
        if tree:
            latent_of = match_latents(W_dec, dictionary)
            a = absorption_from_acts(f, c, parents, latent_of)
            decoder_cos, _ = absorption_directions(sae.params["W_enc"], W_dec, dictionary,
                                                   parents, latent_of)
            defined = a[~np.isnan(a)]
            rows["absorption"].append(_nanmean(a))
            rows["absorbed_children"].append(float((defined > 0.5).mean()) if defined.size
                                             else float("nan"))
            rows["decoder_parent_cos"].append(_nanmean(decoder_cos))
    shape = [ds.sizes[d] for d in grid]
    coords = {d: ds[d] for d in grid if d in ds.coords}
    out = xr.Dataset({name: xr.DataArray(np.reshape(values, shape), dims=grid, coords=coords)
                      for name, values in rows.items()})
    out.attrs["true_l0"] = float((c > 0).sum(-1).mean())
    out.attrs["n_samples"] = n_samples
    return out
