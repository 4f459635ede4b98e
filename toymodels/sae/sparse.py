"""Sparse decoding for the TopK family: the selected latents of a batch, and decoding from them.

A TopK SAE keeps k of d_sae latents per example, so three of the five matmuls of a dense training
step — decoding F W_dec, ∂W_dec and ∂F — need only the k selected latents (Gao et al. 2024).
`SparseActs` holds a feature-major batch's selected latents as (latent, value) pairs:

- *rows* (topk: exactly k per example): `values`, `latent` (batch, k);
- *pairs* (batchtopk, matryoshka_batchtopk: k·batch over the whole batch): `values`, `latent`,
  `sample` (k·batch,).

Decoding gathers the selected rows of W_dec, x̂_b = Σ_j v_bj W_dec[latent_bj] (rows: a batched
product; pairs: a segment sum over the samples), and autodiff turns the gather into a scatter-add
for ∂W_dec and ∂v. The gradient reaching the pre-activations is scattered into a dense (batch,
d_sae) array, so ∂W_enc stays one dense matmul: on XLA's CPU backend a custom VJP scattering the
k·batch input rows instead measured only 6 % faster at d_sae = 16,384 (205 against 217 ms a
step, one SAE on both cores), not worth a second gradient to keep right.

`SAEConfig.decoding` chooses: "dense", "sparse", or "auto": sparse where d_sae ≥ `MIN_RATIO` · k.
XLA's CPU gathers and scatters cost far more per float than its matmuls, so sparse pays only
once d_sae/k is large. Measured on the 2-core CPU machine (2 SAEs, d_in = 512, k = 32, per
SAE-step, dense against sparse, both paths as they are now): topk 89/91 ms at d_sae = 4096
(ratio 128, even), 166/126 ms at 8192; batchtopk 104/107 at 4096, 179/154 at 8192; and 16 small
SAEs (d_in = 64, d_sae = 512, k = 4, ratio 128): topk 8/5 ms, batchtopk 8/6, matryoshka 8/6. So
at 128 k sparse breaks even for wide inputs and wins for narrow ones.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

#: "auto" decodes sparsely where d_sae ≥ MIN_RATIO · k (k_aux for AuxK's reconstruction).
MIN_RATIO = 128


def chooses_sparse(decoding: str, d_sae: int, k: int) -> bool:
    """Whether `decoding` ("auto", "dense" or "sparse") decodes k of d_sae latents sparsely."""
    if decoding == "auto":
        return d_sae >= MIN_RATIO * k
    return decoding == "sparse"


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
    def top_k_rows(cls, pre_rows: jax.Array, k: int) -> "SparseActs":
        """ReLU of each example's k largest pre-activations: pre_rows (batch, d_sae)."""
        values, latent = jax.lax.top_k(pre_rows, k)
        return cls(jax.nn.relu(values), latent, None, pre_rows.shape[1], pre_rows.shape[0])

    @classmethod
    def top_k_pairs(cls, acts_rows: jax.Array, keep: int) -> "SparseActs":
        """The `keep` largest entries of the whole (batch, d_sae) array `acts_rows` (batchtopk)."""
        batch, d_sae = acts_rows.shape
        values, flat = jax.lax.top_k(acts_rows.reshape(-1), keep)
        return cls(values, flat % d_sae, flat // d_sae, d_sae, batch)

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
        if self.sample is None:
            return decode_top_k_rows(self.values, self.latent, W_dec).T
        return self.group_decodes(W_dec, ((0, self.d_sae),))[0]

    def group_decodes(self, W_dec: jax.Array, bounds: tuple[tuple[int, int], ...]) -> jax.Array:
        """W_dec[g]ᵀ F[g] of each latent group g = [start, stop) of `bounds` (Matryoshka groups,
        covering all latents in order): (G, d_out, batch), from one gather and one segment sum."""
        starts = jnp.asarray([start for start, _ in bounds])
        group = jnp.searchsorted(starts, self.latent, side="right") - 1
        weighted = self.values.reshape(-1, 1) * W_dec[self.latent.reshape(-1)]
        segment = (group * self.batch + self.samples).reshape(-1)
        sums = jax.ops.segment_sum(weighted, segment, len(bounds) * self.batch)
        return jnp.swapaxes(sums.reshape(len(bounds), self.batch, -1), 1, 2)


def decode_top_k_rows(values: jax.Array, latent: jax.Array, W_dec: jax.Array) -> jax.Array:
    """Σ_j values[b, j] W_dec[latent[b, j]] for each row b: (batch, k) -> (batch, d_out)."""
    return jnp.einsum("bk,bkd->bd", values, W_dec[latent])
