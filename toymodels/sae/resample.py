"""Dead-latent resampling (ARENA 1.3.1, after Anthropic's "Towards Monosemanticity").

A pure function of the parameters, the optimizer state and a batch: it returns new ones, with
every dead latent re-initialised and its Adam moments zeroed. Two recipes:

- simple: a random unit direction d per dead latent: W_dec,i = d, W_enc[:, i] = ½ d, b_enc,i = 0.
- loss_weighted: inputs drawn with probability ∝ their squared reconstruction error ‖x̂ − x‖²,
  centred by b_dec and normalised: W_dec,i = v̂, W_enc[:, i] = v̂ · ½ · (mean encoder norm of the
  live latents), b_enc,i = 0.

For a transcoder (input and output spaces differ) the encoder direction is drawn separately in
the input space (simple) or is the sampled input itself (loss_weighted).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from toymodels.analysis._vectors import norm
from toymodels.sae.architectures import unit_rows

#: per-latent vectors reset to zero (log_threshold is kept: it is not a direction).
LATENT_VECTORS = ("b_enc", "b_gate", "r_mag", "b_mag")


def _keep_masks(params: dict, dead: jax.Array) -> dict:
    """1 where a parameter entry belongs to a live latent (or to none), 0 for dead latents."""
    keep = 1.0 - dead.astype(jnp.float32)
    masks = {}
    for name, p in params.items():
        if name == "W_enc":
            masks[name] = jnp.broadcast_to(keep[None, :], p.shape)
        elif name == "W_dec":
            masks[name] = jnp.broadcast_to(keep[:, None], p.shape)
        elif name in LATENT_VECTORS:
            masks[name] = keep
        else:
            masks[name] = jnp.ones_like(p)
    return masks


def resample(method: str, params: dict, opt_state, optimizer: optax.GradientTransformation,
             dead: jax.Array, key: jax.Array, X: jax.Array, T: jax.Array, X_hat: jax.Array,
             subtracts_b_dec: bool) -> tuple[dict, object]:
    """Re-initialise the dead latents: (params, opt_state) -> new (params, opt_state).

    Args:
      method: "simple" or "loss_weighted".
      params: {name: array} in the trainable form (W_enc (d_in, d_sae), W_dec (d_sae, d_out) …).
      opt_state: the optimizer's state for params; moments of resampled latents are zeroed.
      dead: (d_sae,) bool.
      key: PRNG key for the directions or the sampled inputs.
      X, T, X_hat: (batch, d_in), (batch, d_out), (batch, d_out) a batch, its targets and their
        reconstructions (training units).
      subtracts_b_dec: whether inputs are centred by b_dec before encoding (an SAE).
    """
    W_enc, W_dec = params["W_enc"], params["W_dec"]
    d_in, d_sae = W_enc.shape
    same_space = W_dec.shape[1] == d_in
    dir_key, enc_key = jax.random.split(key)
    if method == "simple":
        out_dir = unit_rows(jax.random.normal(dir_key, (d_sae, W_dec.shape[1])))
        in_dir = out_dir if same_space else unit_rows(jax.random.normal(enc_key, (d_sae, d_in)))
        enc_norm = 0.5
    else:
        err = jnp.sum((X_hat - T) ** 2, axis=-1)
        logits = jnp.log(jnp.maximum(err, 1e-30))
        index = jax.random.categorical(dir_key, logits, shape=(d_sae,))
        out_dir = unit_rows(T[index] - (params["b_dec"] if subtracts_b_dec else 0.0))
        in_dir = out_dir if same_space else unit_rows(X[index])
        alive = ~dead
        enc_norms = norm(W_enc.T)
        mean_alive = jnp.sum(enc_norms * alive) / jnp.maximum(jnp.sum(alive), 1)
        enc_norm = 0.5 * jnp.where(jnp.any(alive), mean_alive, 1.0)
    new = dict(params)
    new["W_dec"] = jnp.where(dead[:, None], out_dir, W_dec)
    new["W_enc"] = jnp.where(dead[None, :], (enc_norm * in_dir).T, W_enc)
    for name in LATENT_VECTORS:
        if name in new:
            new[name] = jnp.where(dead, 0.0, new[name])
    masks = _keep_masks(params, dead)
    opt_state = optax.tree_utils.tree_map_params(
        optimizer, lambda m, keep: m * keep, opt_state, masks,
        transform_non_params=lambda s: s)
    return new, opt_state
