"""Sparse training for the TopK family: the selected latents of a batch, and the two products
of a step that need only them.

A TopK SAE keeps k of d_sae latents per example, so four of the five matmuls of a dense training
step need only the k selected latents (Gao et al. 2024): decoding F W_dec, ∂W_dec and ∂F, and
∂W_enc, since the gradient reaching the pre-activations is zero off the selected ones. Only the
encoder's forward pass, which chooses them, is dense. `SparseActs` holds a batch's selected
latents as (latent, value) pairs:

- *rows* (topk: exactly k per example): `values`, `latent` (batch, k);
- *pairs* (batchtopk, matryoshka_batchtopk: k·batch over the whole batch): `values`, `latent`,
  `sample` (k·batch,).

Two custom VJPs carry the gradient through them without a dense (batch, d_sae) array:

- `gather_decode`: x̂_b = Σ_j v_bj W_dec[latent_bj] from the gathered rows of W_dec (summed per
  example, or per (Matryoshka group, example)); ∂v_bj = W_dec[latent_bj] · ∂x̂_b, and ∂W_dec a
  scatter-add of the rows v_bj ∂x̂_b.
- `pre_at`: the selected pre-activations π_bj of the encoder's map π = x W_enc + bias (an
  `EncoderMap`), read from the dense pre-activations that chose them; ∂W_encᵀ a scatter-add of
  the rows ∂π_bj x_b, ∂bias a scatter-add of ∂π_bj. AuxK's k_aux = d_in // 2 dead latents per
  example are many more (256 at d_in = 512, against k = 32 in `benchmarks/sae_speed.py` (c)),
  so its `pre_at` scatters ∂π into a dense array and takes one matmul (`dense_grad`; chosen
  without measuring, as one matmul against a scatter of k_aux · batch rows), inside AuxK's
  branch, which an SAE trained unbatched (one per device, or in turn) runs only while a latent
  is dead.

`SAEConfig.decoding` chooses: "dense", "sparse", or "auto": sparse where d_sae ≥ `MIN_RATIO` · k.
XLA's CPU gathers and scatters cost far more per float than its matmuls, so sparse pays only
once d_sae/k is large. Measured on the 2-core CPU machine with ∂W_enc sparse (December 2026;
steady state per SAE-step, (t₄₀ − t₁₀)/30 of `tm.sweep` runs, dense against sparse): 2 SAEs of
d_in = 512, k = 32: topk 137/83 ms at d_sae = 4096 (ratio 128), 261/120 at 8192; batchtopk
161/89 at 4096, 290/147 at 8192; 16 SAEs of d_in = 64, d_sae = 512, k = 4 (ratio 128): topk
9.2/6.3 ms, batchtopk 10.5/7.4, matryoshka 11.0/8.6. Sparse wins at 128 k by 1.3–1.8×; below
128 k it was not measured again (before ∂W_enc was sparse, 128 k was where the two broke even
for d_in = 512), so the rule stays.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

#: "auto" decodes sparsely where d_sae ≥ MIN_RATIO · k (k_aux for AuxK's reconstruction).
MIN_RATIO = 128


def chooses_sparse(decoding: str, d_sae: int, k: int) -> bool:
    """Whether `decoding` ("auto", "dense" or "sparse") decodes k of d_sae latents sparsely."""
    if decoding == "auto":
        return d_sae >= MIN_RATIO * k
    return decoding == "sparse"


class EncoderMap(NamedTuple):
    """The encoder's affine map of a feature-major batch, Πᵀ = Xᵀ W_enc + bias, one row per
    example: X (d_in, batch), W_enc (d_in, d_sae), bias (d_sae,) (b_enc, with b_dec folded in
    where the SAE subtracts it from its input)."""

    X: jax.Array
    W_enc: jax.Array
    bias: jax.Array

    def pre(self) -> jax.Array:
        """The dense pre-activations, (batch, d_sae)."""
        return self.X.T @ self.W_enc + self.bias

    def latents(self, start: int, stop: int) -> "EncoderMap":
        """The map onto latents [start, stop) alone: W_enc (d_in, stop − start), bias likewise."""
        return EncoderMap(self.X, self.W_enc[:, start:stop], self.bias[start:stop])


def blocked_transpose(x: jax.Array, block: int = 32) -> jax.Array:
    """xᵀ of a 2-d array, written out in blocks of `block` rows by a loop.

    XLA's CPU backend fuses a plain transpose into the ops that read it, which then read the
    source with a stride for every element: a (d_in, batch) input broadcast over k latents and
    read so cost 50 ms a step at batch 1024, k 32 (4× the same product from contiguous rows).
    A loop is not fused, so the transpose is materialised once, each block's source in cache:
    the (d_sae, d_in) → (d_in, d_sae) ∂W_enc at d_sae 16,384, d_in 512 took 16 ms on one core in
    blocks of 32 rows, 26 ms in blocks of 128, and about 45 ms as XLA's plain transpose.
    """
    n, m = x.shape
    if n % block or n == block:
        return x.T

    def write(i, out):
        rows = jax.lax.dynamic_slice_in_dim(x, i * block, block, 0)
        return jax.lax.dynamic_update_slice_in_dim(out, rows.T, i * block, 1)

    return jax.lax.fori_loop(0, n // block, write, jnp.zeros((m, n), x.dtype))


@functools.partial(jax.tree_util.register_dataclass, data_fields=["values", "latent", "sample"],
                   meta_fields=["d_sae", "batch"])
@dataclasses.dataclass(frozen=True)
class SparseActs:
    """The selected latents of a feature-major batch of `batch` examples over `d_sae` latents.

    values: (batch, k) or (K,) the selected feature_acts (ReLU'd; a value may be 0);
    latent: the same shape, int32, which latent each value is;
    sample: None (rows: row b is example b), or (K,) int32 the example of each pair.
    """

    values: jax.Array
    latent: jax.Array
    sample: jax.Array | None
    d_sae: int
    batch: int

    @classmethod
    def top_k_rows(cls, pre_rows: jax.Array, k: int, encoder: EncoderMap | None = None
                   ) -> "SparseActs":
        """ReLU of each example's k largest pre-activations: pre_rows (batch, d_sae). With the
        `encoder` that computed them, their gradient reaches it sparsely (`pre_at`); without,
        through top_k's dense one."""
        values, latent = jax.lax.top_k(pre_rows, k)
        if encoder is not None:
            values = pre_at(pre_rows, encoder, latent, None)
        return cls(jax.nn.relu(values), latent, None, pre_rows.shape[1], pre_rows.shape[0])

    @classmethod
    def top_k_pairs(cls, pre_rows: jax.Array, keep: int, encoder: EncoderMap | None = None
                    ) -> "SparseActs":
        """The `keep` largest entries of the whole (batch, d_sae) ReLU(pre_rows) (batchtopk);
        `encoder` as in `top_k_rows`."""
        batch, d_sae = pre_rows.shape
        acts = jax.nn.relu(pre_rows)
        values, flat = jax.lax.top_k(acts.reshape(-1), keep)
        latent, sample = flat % d_sae, flat // d_sae
        if encoder is not None:
            values = jax.nn.relu(pre_at(pre_rows, encoder, latent, sample))
        return cls(values, latent, sample, d_sae, batch)

    @property
    def samples(self) -> jax.Array:
        """The example of every value, in `values`' shape."""
        if self.sample is not None:
            return self.sample
        return jnp.broadcast_to(jnp.arange(self.batch)[:, None], self.values.shape)

    def dense(self) -> jax.Array:
        """The (d_sae, batch) feature_acts, zero off the selected latents."""
        out = jnp.zeros((self.d_sae, self.batch), self.values.dtype)
        return out.at[self.latent.reshape(-1), self.samples.reshape(-1)].set(self.values.reshape(-1))

    def firing_counts(self) -> jax.Array:
        """(d_sae,) float32: in how many examples each latent fired (value > 0)."""
        fired = (self.values > 0).astype(jnp.float32).reshape(-1)
        return jnp.zeros((self.d_sae,), jnp.float32).at[self.latent.reshape(-1)].add(fired)

    def decode(self, W_dec: jax.Array) -> jax.Array:
        """W_decᵀ F without the bias: (d_sae, d_out) -> (d_out, batch)."""
        return self.group_decodes(W_dec, ((0, self.d_sae),))[0]

    def group_decodes(self, W_dec: jax.Array, bounds: tuple[tuple[int, int], ...]) -> jax.Array:
        """W_dec[g]ᵀ F[g] of each latent group g = [start, stop) of `bounds` (Matryoshka groups,
        covering all latents in order): (G, d_out, batch), from one gather and one segment sum."""
        if len(bounds) == 1 and self.sample is None:
            return gather_decode(self.values, self.latent, None, self.batch, W_dec)[None]
        starts = jnp.asarray([start for start, _ in bounds])
        group = jnp.searchsorted(starts, self.latent, side="right") - 1
        segment = (group * self.batch + self.samples).reshape(-1)
        sums = gather_decode(self.values.reshape(-1), self.latent.reshape(-1), segment,
                             len(bounds) * self.batch, W_dec)
        return jnp.swapaxes(sums.reshape(-1, len(bounds), self.batch), 0, 1)


# --- decoding: x̂ from the gathered rows of W_dec --------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def gather_decode(values: jax.Array, latent: jax.Array, segment: jax.Array | None,
                  n_segments: int, W_dec: jax.Array) -> jax.Array:
    """Σ v_j W_dec[latent_j] over the pairs j of each segment, feature-major: (d_out, n_segments).

    values, latent (K,) with segment (K,) the output column of each pair; or values, latent
    (batch, k) with segment None, column b summing its k pairs. Backward: ∂v_j = W_dec[latent_j]
    · ∂out[:, segment_j] and ∂W_dec = scatter-add over latent_j of v_j ∂out[:, segment_j], no
    dense (d_sae, batch) array.
    """
    rows = W_dec[latent]
    if segment is None:
        return jnp.einsum("bk,bkd->db", values, rows)
    return jax.ops.segment_sum(values[:, None] * rows, segment, n_segments).T


def _gather_decode_fwd(values, latent, segment, n_segments, W_dec):
    return gather_decode(values, latent, segment, n_segments, W_dec), (values, latent, segment,
                                                                         W_dec)


def _gather_decode_bwd(n_segments, res, g):
    values, latent, segment, W_dec = res
    g = blocked_transpose(g)  # (n_segments, d_out), one contiguous row per segment
    if segment is None:
        d_values = jnp.einsum("bkd,bd->bk", W_dec[latent], g)
        updates = values[..., None] * g[:, None, :]
    else:
        g_pairs = g[segment]  # ∂out of each pair's segment
        d_values = jnp.sum(W_dec[latent] * g_pairs, axis=-1)
        updates = values[:, None] * g_pairs
    d_W_dec = jnp.zeros_like(W_dec).at[latent.reshape(-1)].add(
        updates.reshape(-1, W_dec.shape[1]))
    return d_values, None, None, d_W_dec


gather_decode.defvjp(_gather_decode_fwd, _gather_decode_bwd)


# --- encoding: the selected pre-activations and their sparse gradient -----------------------


def pre_at(pre_rows: jax.Array, encoder: EncoderMap, latent: jax.Array,
           sample: jax.Array | None, dense_grad: bool = False) -> jax.Array:
    """The pre-activations π[sample, latent] that `encoder` computed as `pre_rows` (batch, d_sae),
    differentiable in the encoder's X, W_enc and bias, not in pre_rows (which must be
    `encoder.pre()`: it is read, not recomputed).

    latent (batch, k) with sample None (row b's k latents), or latent, sample (K,). The gradient
    reaches W_enc as a scatter-add of the K rows ∂π x_sample into W_encᵀ, or, with `dense_grad`,
    as one matmul X ∂Π of ∂π scattered into a dense (batch, d_sae) ∂Π.
    """
    return _pre_at(jax.lax.stop_gradient(pre_rows), encoder, latent, sample, dense_grad)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _pre_at(pre_rows, encoder, latent, sample, dense_grad):
    if sample is None:
        return jnp.take_along_axis(pre_rows, latent, axis=1)
    return pre_rows[sample, latent]


def _pre_at_fwd(pre_rows, encoder, latent, sample, dense_grad):
    return _pre_at(pre_rows, encoder, latent, sample, dense_grad), (encoder, latent, sample)


def _pre_at_bwd(dense_grad, res, g):
    (X, W_enc, bias), latent, sample = res
    (d_in, batch), d_sae = X.shape, W_enc.shape[1]
    if dense_grad:
        rows = jnp.arange(batch)[:, None] if sample is None else sample
        d_pre = jnp.zeros((batch, d_sae), g.dtype).at[rows, latent].add(g)
        d_encoder = EncoderMap(W_enc @ d_pre.T, X @ d_pre, jnp.sum(d_pre, axis=0))
        return None, d_encoder, None, None
    flat = latent.reshape(-1)
    X_rows = blocked_transpose(X)  # (batch, d_in), one contiguous row per example
    # ∂π_j x_sample(j), one row per pair; rows form: example b's row k times, no gather
    x = X_rows[:, None, :] if sample is None else X_rows[sample]
    updates = (g[..., None] * x).reshape(-1, d_in)
    d_W_enc = blocked_transpose(jnp.zeros((d_sae, d_in), g.dtype).at[flat].add(updates))
    d_bias = jnp.zeros((d_sae,), g.dtype).at[flat].add(g.reshape(-1))
    # ∂X: the encoder's input is data in training, where this is unused and XLA drops it
    W_rows = W_enc.T[latent]
    d_X = (jnp.einsum("bk,bkd->db", g, W_rows) if sample is None else
           jnp.zeros((batch, d_in), g.dtype).at[sample].add(g[:, None] * W_rows).T)
    return None, EncoderMap(d_X, d_W_enc, d_bias), None, None


_pre_at.defvjp(_pre_at_fwd, _pre_at_bwd)
