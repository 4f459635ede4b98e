"""Stitching SAEs of different sizes (Leask, Bussmann, Bloom, Nanda et al. 2024).

A wider SAE trained on the same activations as a narrower one has two kinds of latents: those
whose decoder direction the narrow SAE already has (reconstruction latents, max cosine with a
narrow decoder row ≥ 0.7 in the paper) and *novel* ones, directions the narrow SAE lacks. Adding
the novel latents to the narrow SAE, one at a time, gives a family of SAEs between the two; its
(L0, MSE) curve says how much of the wide SAE's gain the novel latents carry.

An added latent keeps its own encoder column, encoder biases (and threshold) and decoder row, so
it must be encoded on its own: per-latent architectures only (standard, jumprelu, gated, and
batchtopk / matryoshka_batchtopk, which infer as jumprelu with a per-latent threshold). A topk
SAE's latents compete for k places, so adding one changes which others fire: `stitch` refuses
it rather than report a curve that is no interpolation. Where the two SAEs subtract different
b_dec from their inputs, the added latents' encoder biases absorb the difference, so that each
added latent fires in the stitched SAE exactly as in the wide one.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from toymodels.analysis._checks import check_in_range
from toymodels.analysis._cosines import max_cosines
from toymodels.sae import architectures as arch
from toymodels.sae.model import SAE

__all__ = ["NOVELTY_THRESHOLD", "novel_features", "novel_latents", "stitch", "stitch_curve"]

#: the paper's threshold: a wide latent is novel when no narrow decoder row has cosine ≥ it.
NOVELTY_THRESHOLD = 0.7

#: how each per-latent architecture encodes at inference (batchtopk exports as jumprelu); topk
#: is absent: its latents are not encoded independently.
_INFERENCE = {"standard": "standard", "jumprelu": "jumprelu", "batchtopk": "jumprelu",
              "matryoshka_batchtopk": "jumprelu", "gated": "gated"}


def novel_latents(W_dec_narrow, W_dec_wide,
                  threshold: float = NOVELTY_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    r"""Which latents of the wide SAE are novel: m_k = max_i cos(W_dec_wide[k], W_dec_narrow[i])
    (signed) below `threshold`; the others are reconstruction latents.

    Args:
      W_dec_narrow: (d_narrow, d) the narrow SAE's decoder.
      W_dec_wide: (d_wide, d) the wide SAE's decoder.
      threshold: in [−1, 1]; the paper's 0.7 by default.

    Returns:
      (novel (d_wide,) bool, m (d_wide,) float64).
    """
    check_in_range("novel_latents", "threshold", threshold, -1, 1)
    narrow, wide = np.asarray(W_dec_narrow), np.asarray(W_dec_wide)
    if narrow.ndim != 2 or wide.ndim != 2 or narrow.shape[1] != wide.shape[1]:
        raise ValueError(
            "novel_latents: the decoders must be (d_narrow, d) and (d_wide, d) with the same d, "
            f"got shapes {narrow.shape} and {wide.shape}")
    m = np.asarray(max_cosines(wide, narrow)[0], np.float64)
    return m < threshold, m


def _inference(sae: SAE, which: str) -> str:
    form = _INFERENCE.get(sae.architecture)
    if form is None:
        raise ValueError(
            f"stitch: {which} is a {sae.architecture!r} SAE, whose latents compete for k places: "
            f"adding latents would change which fire. Stitching takes per-latent architectures: "
            f"{', '.join(_INFERENCE)}")
    return form


def _check_pair(narrow: SAE, wide: SAE) -> str:
    """The shared inference form of two SAEs that can be stitched; a ValueError otherwise."""
    forms = _inference(narrow, "narrow"), _inference(wide, "wide")
    if forms[0] != forms[1]:
        raise ValueError(
            f"stitch: the narrow SAE encodes as {forms[0]} ({narrow.architecture!r}) and the "
            f"wide one as {forms[1]} ({wide.architecture!r}); both must encode alike")
    a, b = narrow.config, wide.config
    for name, left, right in (("d_in", a.d_in, b.d_in), ("output width", a.output_width,
                              b.output_width), ("apply_b_dec_to_input", a.subtracts_b_dec,
                              b.subtracts_b_dec), ("n_output_sites", a.n_output_sites,
                              b.n_output_sites)):
        if left != right:
            raise ValueError(f"stitch: the two SAEs must share {name}, got {left} and {right}")
    return forms[0]


def _added_params(narrow: SAE, wide: SAE, latents: np.ndarray) -> dict[str, np.ndarray]:
    """The wide SAE's parameters of `latents`, their biases shifted so that they see the input
    as in the wide SAE: (x − b_dec_n) W + b' = (x − b_dec_w) W + b ⇔ b' = b + (b_dec_n − b_dec_w) W."""
    p = {name: value[..., latents] if name == "W_enc" else value[latents]
         for name, value in wide.params.items() if name not in ("b_dec",)}
    if narrow.config.subtracts_b_dec:
        shift = (narrow.params["b_dec"] - wide.params["b_dec"]).astype(np.float64)
        W_enc = p["W_enc"].astype(np.float64)
        if "b_gate" in p:  # gated: the gate reads W_enc, the magnitude W_enc ⊙ e^r_mag
            p["b_gate"] = p["b_gate"] + shift @ W_enc
            p["b_mag"] = p["b_mag"] + shift @ (W_enc * np.exp(p["r_mag"]))
        else:
            p["b_enc"] = p["b_enc"] + shift @ W_enc
    return p


def stitch(narrow: SAE, wide: SAE, latents) -> SAE:
    """The narrow SAE with the wide SAE's `latents` appended, in that order: their encoder
    columns, encoder biases (and threshold, or gated's b_gate, r_mag, b_mag) and decoder rows;
    b_dec stays the narrow SAE's (the added biases absorb the difference, so each added latent's
    activation is its activation in the wide SAE).

    The result has architecture standard, jumprelu (also for batchtopk, as its inference) or
    gated, d_sae = narrow.d_sae + len(latents), and the narrow SAE's other settings and metadata.
    A topk SAE, or two SAEs that encode differently, raise ValueError.
    """
    form = _check_pair(narrow, wide)
    latents = np.asarray(latents, np.int64).reshape(-1)
    if latents.size and (latents.min() < 0 or latents.max() >= wide.d_sae):
        raise ValueError(f"stitch: latents must index the wide SAE's d_sae={wide.d_sae} "
                         f"latents, got {latents.tolist()}")
    config = dataclasses.replace(narrow.config, architecture=form,
                                 d_sae=narrow.d_sae + len(latents), k=None,
                                 matryoshka_widths=None, use_matryoshka_aux_loss=False)
    added, dims = _added_params(narrow, wide, latents), arch.param_dims(config)
    params = {}
    for name in arch.param_names(form):  # the same names in both: they encode alike
        if "latent" in dims[name]:
            params[name] = np.concatenate([narrow.params[name], added[name]],
                                          axis=dims[name].index("latent"))
        else:
            params[name] = narrow.params[name]
    return SAE(config, params, dict(narrow.metadata))


def _density(feature_acts) -> np.ndarray:
    """(d_sae,) the fraction of examples each latent fires on; their sum is the L0."""
    return np.asarray(jnp.mean(feature_acts != 0, axis=0), np.float64)


@jax.jit
def _curve(residual, acts, rows):
    """mean_b ‖r_j‖² for r_j = r_{j−1} − f_j ⊗ W_j, the residual after each added latent."""
    def add(r, latent):
        f, w = latent
        r = r - f[:, None] * w[None, :]
        return r, jnp.mean(jnp.sum(r * r, axis=-1))
    return jax.lax.scan(add, residual, (acts.T, rows))[1]


def stitch_curve(narrow: SAE, wide: SAE, x, threshold: float = NOVELTY_THRESHOLD, *,
                 target=None) -> xr.Dataset:
    r"""(L0, MSE) of the narrow SAE with the wide SAE's novel latents added one at a time.

    Member n of the family is `stitch(narrow, wide, novel[:n])`, n = 0 … len(novel), with the
    novel latents (`novel_latents`, signed max cosine below `threshold`) in the wide SAE's order.
    On inputs x (targets y = x unless a transcoder's `target` is given):

        l0_n  = (1/B) Σ_b #{i : f_bi ≠ 0}        mse_n = (1/B) Σ_b ‖y_b − x̂_b‖²

    computed from one encoding of x by each SAE (an added latent's activation is its
    activation in the wide SAE), so a family of many members costs one residual update each.
    Adding a latent can raise the MSE as well as lower it (its decoder row may overshoot).

    Args:
      narrow: the narrower `tm.SAE` (per-latent architecture, see `stitch`).
      wide: the wider `tm.SAE`, on the same input (and output) space.
      x: (..., d_in) activations, flattened to (B, d_in).
      threshold: the novelty threshold, in [−1, 1].
      target: (..., d_out) what is reconstructed, for a transcoder; None: x.

    Returns:
      A Dataset with `l0`, `mse` and `added_latent` (the wide latent added last, −1 at n = 0)
      over "n_added" (0 … len(novel)); `novel` (the wide SAE's novel latents, in the order
      added) over "novel_latent"; `max_cos` (each wide latent's max cosine with the narrow
      decoder) over "wide_latent"; attrs threshold, and wide_l0, wide_mse of the wide SAE on x.
    """
    _check_pair(narrow, wide)
    novel, max_cos = novel_latents(narrow.W_dec, wide.W_dec, threshold)
    novel = np.flatnonzero(novel)
    x = np.asarray(x, np.float32)
    if x.ndim < 1 or x.shape[-1] != narrow.d_in:
        raise ValueError(f"stitch_curve: x must have shape (..., d_in={narrow.d_in}), got "
                         f"{x.shape}")
    x = x.reshape(-1, narrow.d_in)
    y = x if target is None else np.asarray(target, np.float32).reshape(len(x), -1)
    if y.shape[1] != narrow.config.output_width:
        raise ValueError(f"stitch_curve: target must have shape (..., "
                         f"{narrow.config.output_width}) and one row per row of x, got "
                         f"{np.shape(target)}")
    f_narrow, f_wide = narrow.encode(x), wide.encode(x)
    added = f_wide[:, novel]
    residual = jnp.asarray(y) - narrow.decode(f_narrow)
    mse = np.concatenate([[float(jnp.mean(jnp.sum(residual**2, axis=-1)))],
                          np.asarray(_curve(residual, added, jnp.asarray(wide.W_dec[novel])))])
    l0 = _density(f_narrow).sum() + np.concatenate([[0.0], np.cumsum(_density(added))])
    wide_residual = jnp.asarray(y) - wide.decode(f_wide)
    return xr.Dataset(
        {"l0": ("n_added", l0), "mse": ("n_added", mse),
         "added_latent": ("n_added", np.concatenate([[-1], novel])),
         "novel": ("novel_latent", novel), "max_cos": ("wide_latent", max_cos)},
        coords={"n_added": np.arange(len(novel) + 1)},
        attrs={"threshold": float(threshold), "wide_l0": float(_density(f_wide).sum()),
               "wide_mse": float(jnp.mean(jnp.sum(wide_residual**2, axis=-1)))})


def novel_features(wide, novel, dictionary) -> xr.Dataset:
    """Which true feature each novel latent is: the one whose direction has the largest |cos|
    with the latent's decoder row.

    Args:
      wide: the wide `tm.SAE`, or its W_dec (d_wide, d).
      novel: (n_novel,) indices of its latents (`stitch_curve(...).novel`).
      dictionary: (n_features, d) the true directions.

    Returns:
      A Dataset over "novel_latent" with `latent` (the indices given), `true_feature` and
      `abs_cos` (that |cos|, in [0, 1]).
    """
    W_dec = np.asarray(wide.W_dec if isinstance(wide, SAE) else wide, np.float64)
    dictionary = np.asarray(dictionary, np.float64)
    novel = np.asarray(novel, np.int64).reshape(-1)
    if W_dec.shape[1:] != dictionary.shape[1:]:
        raise ValueError(f"novel_features: the decoder and the dictionary must share d, got "
                         f"shapes {W_dec.shape} and {dictionary.shape}")
    cos = np.abs(_unit_rows(W_dec[novel]) @ _unit_rows(dictionary).T)  # (novel, feature)
    best = np.argmax(cos, axis=1)
    return xr.Dataset({"latent": ("novel_latent", novel),
                       "true_feature": ("novel_latent", best),
                       "abs_cos": ("novel_latent", cos[np.arange(len(novel)), best])})


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)
