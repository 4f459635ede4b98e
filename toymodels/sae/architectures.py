"""The SAE architectures: activation functions, inference, and the trainable NNX modules.

Every architecture shares the affine maps of SAELens (x a row vector of one example):

    π = (x − b_dec·[apply_b_dec_to_input]) W_enc + b_enc      hidden_pre   (d_sae,)
    f = σ(π)                                                   feature_acts (d_sae,)
    x̂ = f W_dec + b_dec                                        reconstruction

and differs in σ and in its training terms:

| architecture | σ at inference | parameters beyond W_enc, b_enc, W_dec, b_dec |
|---|---|---|
| standard | ReLU(π) | |
| topk | ReLU of the k largest π_i, 0 elsewhere | |
| batchtopk | trained on the top k·B of the batch; infers as jumprelu with its running threshold | threshold |
| jumprelu | π · H(π − θ) (ReLU first, as SAELens) | threshold θ (trained as log θ) |
| gated | H(π_gate) · ReLU(π_mag), π_gate = x̃ W_enc + b_gate, π_mag = x̃ (W_enc ⊙ e^r_mag) + b_mag | b_gate, r_mag, b_mag (no b_enc) |
| matryoshka_batchtopk | as batchtopk; trained to reconstruct from every prefix of `matryoshka_widths` too | threshold |

A Matryoshka SAE (Bussmann et al. 2025; SAELens's `matryoshka_batchtopk`) is a batchtopk SAE
whose loss adds, for each inner prefix width w, the error of b_dec + Σ_{i<w} f_i W_dec,i; the
groups of latents between consecutive widths are decoded once, accumulating, so the G prefix
reconstructions cost one decode. A standard SAE given `matryoshka_widths` adds the same terms.

`encode` / `decode` here take a dict of arrays in SAELens's published form (a trained SAE's
`outputs`, or a SAELens file) and one example; `tm.SAE` maps them over batches. The NNX modules
hold the trainable form (jumprelu's log θ) and give the training forward pass for a batch.

Training batches are feature-major: X (d_in, batch), T (d_out, batch), and the pre-activations
and feature_acts (d_sae, batch), one column per example, so that the batch is the minor axis of
every array. The math is the row form above transposed (Π = W_encᵀ X̃ + b_enc, X̂ = W_decᵀ F +
b_dec). For small SAEs (d_in = 2, d_sae = 10) XLA's CPU code runs about 3× faster this way: with
rows, the minor axis of every elementwise op and reduction is 2 or 10 wide.

The TopK family is the exception for its pre-activations, which it computes rows-major, Πᵀ
(batch, d_sae) (`encoder_map`): top_k selects along the latents, and at d_sae = 16,384 the
transpose of a (d_sae, batch) Π cost more than a matmul. Its feature_acts are feature-major as
everyone's, scattered into (d_sae, batch) from the selected latents; with sparse decoding
(`SAEConfig.decoding`; `toymodels.sae.sparse`) they stay a `SparseActs` of the selected latents,
and `decode`, the Matryoshka prefixes and AuxK's reconstruction gather their rows of W_dec;
the gradient reaches W_enc from the selected pre-activations alone (`sparse.pre_at`), so that
only the encoder's forward pass is a dense (batch, d_sae) product.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from toymodels.analysis._vectors import norm
from toymodels.sae.config import SAEConfig
from toymodels.sae.sparse import EncoderMap, SparseActs, chooses_sparse, gather_decode, pre_at

Params = dict[str, jax.Array]


def rectangle(u: jax.Array) -> jax.Array:
    """The rectangle kernel K(u) = 1[−½ < u < ½]."""
    return ((u > -0.5) & (u < 0.5)).astype(u.dtype)


def _sum_to(g: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Sum a cotangent down to the `shape` it was broadcast from (a threshold (d_sae,) against
    (batch, d_sae), or (d_sae, 1) against (d_sae, batch)): over the leading axes it has beyond
    `shape`, and over the axes where `shape` is 1."""
    if g.ndim > len(shape):
        g = jnp.sum(g, axis=tuple(range(g.ndim - len(shape))))
    ones = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(g, axis=ones, keepdims=True) if ones else g


@jax.custom_vjp
def jumprelu(x: jax.Array, threshold: jax.Array, bandwidth: jax.Array) -> jax.Array:
    r"""JumpReLU_θ(x) = x · H(x − θ), with straight-through gradients (Rajamanoharan et al. 2024).

    ∂/∂x = H(x − θ) (no estimator on x); ∂/∂θ = −(θ/ε) K((x − θ)/ε), K the rectangle kernel of
    bandwidth ε. Example: x = [1, 1.4, 1.6, 2], θ = 1.5, ε = 0.5 → [0, 0, 1.6, 2] and
    ∂/∂θ = [0, −3, −3, 0].
    """
    return x * (x > threshold)


def _jumprelu_fwd(x, threshold, bandwidth):
    return jumprelu(x, threshold, bandwidth), (x, threshold, bandwidth)


def _jumprelu_bwd(res, g):
    x, threshold, bandwidth = res
    x_grad = (x > threshold) * g
    threshold_grad = -(threshold / bandwidth) * rectangle((x - threshold) / bandwidth) * g
    return x_grad, _sum_to(threshold_grad, jnp.shape(threshold)), jnp.zeros_like(bandwidth)


jumprelu.defvjp(_jumprelu_fwd, _jumprelu_bwd)


@jax.custom_vjp
def step(x: jax.Array, threshold: jax.Array, bandwidth: jax.Array) -> jax.Array:
    r"""H(x − θ), with ∂/∂x = 0 and ∂/∂θ = −(1/ε) K((x − θ)/ε): the L0 of a JumpReLU SAE.

    Example: x = [1, 1.4, 1.6, 2], θ = 1.5, ε = 0.5 → [0, 0, 1, 1], ∂/∂θ = [0, −2, −2, 0].
    """
    return (x > threshold).astype(x.dtype)


def _step_fwd(x, threshold, bandwidth):
    return step(x, threshold, bandwidth), (x, threshold, bandwidth)


def _step_bwd(res, g):
    x, threshold, bandwidth = res
    threshold_grad = -(1.0 / bandwidth) * rectangle((x - threshold) / bandwidth) * g
    return jnp.zeros_like(x), _sum_to(threshold_grad, jnp.shape(threshold)), jnp.zeros_like(bandwidth)


step.defvjp(_step_fwd, _step_bwd)


def topk_relu(pre: jax.Array, k: int) -> jax.Array:
    """ReLU of the k largest entries of the last axis, 0 elsewhere (SAELens's TopK)."""
    values, index = jax.lax.top_k(pre, k)
    return _scatter_last(jnp.zeros_like(pre), index, jax.nn.relu(values))


def _scatter_last(base: jax.Array, index: jax.Array, values: jax.Array) -> jax.Array:
    """base with base[..., index[..., j]] = values[..., j] along the last axis."""
    if base.ndim == 1:
        return base.at[index].set(values)
    return jax.vmap(_scatter_last)(base, index, values)


def decoder_norms(W_dec: jax.Array, n_sites: int = 1) -> jax.Array:
    """Σ_s ‖W_dec[i, site s]‖ for each latent i: (d_sae, d_out) -> (d_sae,).

    With one site, the row norms ‖W_dec,i‖ that weight the standard penalty.
    """
    return jnp.sum(norm(W_dec.reshape(W_dec.shape[0], n_sites, -1)), axis=-1)


# --- inference, on SAELens-form parameters, one example --------------------------------------


def sae_in(params: Params, x: jax.Array, apply_b_dec_to_input: bool) -> jax.Array:
    return x - params["b_dec"] if apply_b_dec_to_input else x


def encode(params: Params, x: jax.Array, architecture: str, *, k: int | None = None,
           apply_b_dec_to_input: bool = True) -> jax.Array:
    """feature_acts f of one example x: (d_in,) -> (d_sae,), as SAELens's `encode`.

    `batchtopk` and `matryoshka_batchtopk` SAEs infer as the jumprelu SAELens makes of them
    (their `threshold`).
    """
    xin = sae_in(params, x, apply_b_dec_to_input)
    if architecture == "gated":
        gate = xin @ params["W_enc"] + params["b_gate"]
        magnitude = xin @ (params["W_enc"] * jnp.exp(params["r_mag"])) + params["b_mag"]
        return (gate > 0) * jax.nn.relu(magnitude)
    pre = xin @ params["W_enc"] + params["b_enc"]
    if architecture == "standard":
        return jax.nn.relu(pre)
    if architecture == "topk":
        return topk_relu(pre, k)
    # jumprelu, and (matryoshka_)batchtopk as its jumprelu export
    return jax.nn.relu(pre) * (pre > params["threshold"])


def decode(params: Params, f: jax.Array) -> jax.Array:
    """x̂ = f W_dec + b_dec: (d_sae,) -> (d_out,)."""
    return f @ params["W_dec"] + params["b_dec"]


# --- the trainable modules ------------------------------------------------------------------


class Context(NamedTuple):
    """What a training step hands the architecture besides the batch."""

    l1_coefficient: jax.Array  # () the swept coefficients, sparsity ones already warmed up
    l0_coefficient: jax.Array
    aux_loss_coefficient: jax.Array
    pre_act_loss_coefficient: jax.Array
    jumprelu_bandwidth: jax.Array
    jumprelu_tanh_scale: jax.Array
    dead: jax.Array  # (d_sae,) bool: latents that have not fired for more than dead_feature_window steps
    threshold: jax.Array  # () batchtopk's running threshold


def _kaiming_uniform(key, shape: tuple[int, int], fan_in: int) -> jax.Array:
    bound = jnp.sqrt(6.0 / fan_in)  # torch's kaiming_uniform_ with its default gain √2
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)


def unit_rows(W: jax.Array) -> jax.Array:
    """Each row of W scaled to norm 1; zero rows stay zero."""
    n = norm(W, keepdims=True)
    return W / jnp.where(n > 0, n, 1.0)


class Standard(nnx.Module):
    """ReLU SAE. Initialised as SAELens: W_dec rows Kaiming-uniform rescaled to
    `decoder_init_norm` (1 for unit-norm decoders), W_enc = W_decᵀ, zero biases."""

    #: the parameters of the published form, beyond W_enc, b_enc, W_dec, b_dec.
    extra_params: ClassVar[tuple[str, ...]] = ()
    #: whether training keeps batchtopk's running threshold (θ ← (1 − lr) θ + lr · min kept).
    running_threshold: ClassVar[bool] = False

    def __init__(self, cfg: SAEConfig, *, decoder_init_norm, jumprelu_init_threshold,
                 rngs: nnx.Rngs):
        self.cfg = cfg
        d_out = cfg.output_width
        init_norm = 1.0 if cfg.has_unit_norm_decoder else decoder_init_norm
        W_dec = init_norm * unit_rows(_kaiming_uniform(rngs.params(), (cfg.d_sae, d_out), d_out))
        if d_out == cfg.d_in:
            W_enc = W_dec.T
        else:  # a transcoder: the encoder reads another space; same norms, its own directions
            W_enc = init_norm * unit_rows(
                _kaiming_uniform(rngs.params(), (cfg.d_sae, cfg.d_in), cfg.d_in)).T
        self.W_enc = nnx.Param(W_enc)
        self.W_dec = nnx.Param(W_dec)
        self.b_dec = nnx.Param(jnp.zeros((d_out,)))
        self._init_latent_params(jumprelu_init_threshold)

    def _init_latent_params(self, jumprelu_init_threshold):
        self.b_enc = nnx.Param(jnp.zeros((self.cfg.d_sae,)))

    # A batch, feature-major: X (d_in, batch), T (d_out, batch), F (d_sae, batch).
    def _folded_bias(self, W: jax.Array, b: jax.Array) -> jax.Array:
        """b − b_dec W where the input has b_dec subtracted (else b): Wᵀ (X − b_dec) + b written
        Wᵀ X + (b − b_dec W), the same map, but b_dec's gradient needs no (d_sae, d_in) ×
        (d_in, batch) product."""
        return b - self.b_dec[...] @ W if self.cfg.subtracts_b_dec else b

    def _encoder(self, X: jax.Array, W: jax.Array, b: jax.Array) -> jax.Array:
        """Wᵀ (X − b_dec·[apply]) + b: (d_in, batch) -> (d_sae, batch)."""
        return W.T @ X + self._folded_bias(W, b)[:, None]

    def hidden_pre(self, X: jax.Array) -> jax.Array:
        """Π = W_encᵀ X̃ + b_enc: (d_in, batch) -> (d_sae, batch)."""
        return self._encoder(X, self.W_enc[...], self.b_enc[...])

    def encoder_map(self, X: jax.Array) -> EncoderMap:
        """The encoder's map Πᵀ = Xᵀ W_enc + (b_enc − b_dec W_enc·[apply]) of X (d_in, batch),
        one row per example: `.pre()` is (batch, d_sae), and `toymodels.sae.sparse.pre_at`
        differentiates its selected outputs sparsely. The TopK family selects along the latents,
        which top_k wants as the minor axis: computed in this layout, a large SAE's (d_sae,
        batch) Π is never transposed (at d_sae = 16,384 that copy cost more than a matmul)."""
        W = self.W_enc[...]
        return EncoderMap(X, W, self._folded_bias(W, self.b_enc[...]))

    def decode(self, F: jax.Array | SparseActs) -> jax.Array:
        """X̂ = W_decᵀ F + b_dec: (d_sae, batch) -> (d_out, batch)."""
        if isinstance(F, SparseActs):
            if self.cfg.matryoshka_widths is not None:
                return self._sparse_prefixes(F)[-1]
            return F.decode(self.W_dec[...]) + self.b_dec[...][:, None]
        return self.W_dec[...].T @ F + self.b_dec[...][:, None]

    def _sparse_prefixes(self, F: SparseActs) -> jax.Array:
        """b_dec + W_dec[:w]ᵀ F[:w] for every width w of matryoshka_widths, d_sae included:
        (G, d_out, batch). `decode` and `inner_reconstructions` trace the same ops, which XLA
        computes once."""
        groups = F.group_decodes(self.W_dec[...], self.cfg.group_bounds)
        return self.b_dec[...][None, :, None] + jnp.cumsum(groups, axis=0)

    def penalty_weights(self) -> jax.Array:
        """(d_sae,) ‖W_dec,i‖ summed over output sites; 1 for unit-norm decoders."""
        if self.cfg.has_unit_norm_decoder:
            return jnp.ones((self.cfg.d_sae,))
        return decoder_norms(self.W_dec[...], self.cfg.n_output_sites)

    def train_encode(self, X: jax.Array, ctx: Context) -> tuple[jax.Array, dict]:
        """(feature_acts (d_sae, batch), anything the penalties need)."""
        pre = self.hidden_pre(X)
        return jax.nn.relu(pre), {"pre": pre}

    def mean_weighted_l1(self, F: jax.Array) -> jax.Array:
        """mean_b Σ_i w_i f_ib, w = `penalty_weights`: (d_sae, batch) -> ().

        Each latent's row is averaged over the batch first, then weighted, Σ_i w_i mean_b f_ib:
        weighting the (d_sae, batch) array first made XLA write the broadcast weights and their
        cotangent as two more (d_sae, batch) arrays every step."""
        return jnp.dot(self.penalty_weights(), jnp.mean(F, axis=1))

    def penalties(self, X, T, F, X_hat, extras, ctx: Context) -> dict[str, jax.Array]:
        """The architecture's loss terms beside the reconstruction, each a batch mean."""
        return {"l1": ctx.l1_coefficient * self.mean_weighted_l1(F)} | (
            self.matryoshka_terms(T, F))

    def inner_reconstructions(self, F: jax.Array) -> list[jax.Array]:
        """X̂_w = b_dec + W_dec[:w]ᵀ F[:w] for each inner width w of matryoshka_widths (all but
        d_sae, whose X̂ the loss has already), each (d_out, batch), accumulated group by group."""
        if isinstance(F, SparseActs):
            return list(self._sparse_prefixes(F)[:-1])
        W_dec = self.W_dec[...]
        out, partial = [], self.b_dec[...][:, None]
        for start, stop in self.cfg.group_bounds[:-1]:
            partial = partial + W_dec[start:stop].T @ F[start:stop]
            out.append(partial)
        return out

    def matryoshka_terms(self, T: jax.Array, F: jax.Array) -> dict[str, jax.Array]:
        """{inner_mse_<w>: mean_b ‖x̂_w − t‖²} for every inner width w of matryoshka_widths (the
        full width is the mse term), as SAELens's inner_mse_loss_<w>; {} without widths."""
        if self.cfg.matryoshka_widths is None:
            return {}
        return {f"inner_mse_{w}": jnp.mean(jnp.sum((x_hat - T) ** 2, axis=0))
                for w, x_hat in zip(self.cfg.matryoshka_widths, self.inner_reconstructions(F))}

    def published(self, threshold: jax.Array) -> Params:
        """The parameters in SAELens's form (before any activation-scale folding); `threshold`
        is batchtopk's running threshold, which its published form carries per latent."""
        return {name: self.__dict__[name][...] for name in ("W_enc", "b_enc", "W_dec", "b_dec")}


def auxk_loss(pre_rows: jax.Array, residual: jax.Array, W_dec: jax.Array, dead: jax.Array,
              k_aux: int, sparse: bool = False, encoder: EncoderMap | None = None) -> jax.Array:
    """Gao et al.'s AuxK: the top k_aux dead latents reconstruct the residual.

    ê = W_decᵀ TopK_aux(π over dead latents) (no bias); loss = mean_b ‖ê − e‖² ·
    min(n_dead / k_aux, 1), with e = target − x̂ detached. 0 when no latent is dead. With fewer
    than k_aux latents (an undercomplete SAE) all dead ones reconstruct, and the scale keeps
    k_aux as its denominator (SAELens). pre_rows (batch, d_sae) (`encoder_map(X).pre()`), residual
    (d_out, batch), W_dec (d_sae, d_out), dead (d_sae,). `sparse`: ê from the k_aux gathered
    rows of W_dec. `encoder`, the `EncoderMap` that computed pre_rows: the gradient reaches it
    inside the branch (`toymodels.sae.sparse.pre_at`), not as a dense (batch, d_sae) ∂pre_rows
    that the cond would fill with zeros every step no latent is dead.

    A `lax.cond` on any latent being dead: an SAE trained unbatched (one per device, or large
    SAEs in turn, `toymodels.loop.over_models`) skips the reconstruction's matmuls until a
    latent dies.
    """
    # checkpointed: the branch keeps no residuals of its own for the backward pass, which the
    # cond would otherwise materialise (as zeros when no latent is dead) every step
    aux = jax.checkpoint(functools.partial(_auxk, k_aux=k_aux, sparse=sparse))
    if encoder is not None:
        pre_rows = jax.lax.stop_gradient(pre_rows)
    return jax.lax.cond(jnp.any(dead), aux, lambda *_: jnp.zeros((), pre_rows.dtype),
                        pre_rows, residual, W_dec, dead, encoder)


def _auxk(pre_rows, residual, W_dec, dead, encoder, *, k_aux: int, sparse: bool) -> jax.Array:
    masked = jnp.where(dead, pre_rows, -jnp.inf)  # (batch, d_sae): top_k runs along latents
    values, index = jax.lax.top_k(masked, min(k_aux, pre_rows.shape[1]))
    finite = jnp.isfinite(values)  # -inf where fewer than k_aux latents are dead
    if encoder is not None:  # the same values where finite, differentiated in the encoder
        values = pre_at(pre_rows, encoder, index, None, dense_grad=True)
    values = jnp.where(finite, jax.nn.relu(values), 0.0)
    residual = jax.lax.stop_gradient(residual)
    if sparse:  # feature-major, as the residual
        e_hat = gather_decode(values, index, None, values.shape[0], W_dec)
        err = jnp.sum((e_hat - residual) ** 2, axis=0)
    else:
        e_hat = _scatter_last(jnp.zeros_like(masked), index, values) @ W_dec
        err = jnp.sum((e_hat - residual.T) ** 2, axis=-1)
    scale = jnp.minimum(jnp.sum(dead) / k_aux, 1.0)
    return scale * jnp.mean(err)


class TopK(Standard):
    """TopK SAE (Gao et al. 2024): the k largest pre-activations, ReLU'd; AuxK for dead latents."""

    @property
    def sparse(self) -> bool:
        """Whether training decodes from the selected latents (`SAEConfig.decoding`)."""
        return chooses_sparse(self.cfg.decoding, self.cfg.d_sae, self.cfg.k)

    @property
    def k_aux(self) -> int:
        """AuxK's latents per example, d_in // 2 (SAELens)."""
        return max(1, self.cfg.d_in // 2)

    @property
    def sparse_aux(self) -> bool:
        """Whether AuxK reconstructs from its k_aux gathered rows (`SAEConfig.decoding`)."""
        return chooses_sparse(self.cfg.decoding, self.cfg.d_sae, self.k_aux)

    def activation(self, pre_rows: jax.Array, ctx: Context, encoder: EncoderMap | None = None
                   ) -> jax.Array | SparseActs:
        """pre_rows (batch, d_sae) -> feature_acts (d_sae, batch): each example's k largest.
        With the `encoder` that computed pre_rows (sparse decoding), their gradient reaches it
        from the selected latents alone."""
        acts = SparseActs.top_k_rows(pre_rows, self.cfg.k, encoder)
        # dense: scattered straight into the (d_sae, batch) layout (a transpose of the rows'
        # dense F cost 150 ms a step at d_sae = 16,384, where it met the firing counts)
        return acts if self.sparse else acts.dense()

    def train_encode(self, X, ctx):
        encoder = self.encoder_map(X)
        pre_rows = encoder.pre()
        encoder = encoder if self.sparse else None  # dense: the gradient goes through top_k
        return self.activation(pre_rows, ctx, encoder), {"pre_rows": pre_rows, "encoder": encoder}

    def penalties(self, X, T, F, X_hat, extras, ctx):
        aux = auxk_loss(extras["pre_rows"], T - X_hat, self.W_dec[...], ctx.dead, self.k_aux,
                        self.sparse_aux, extras["encoder"])
        return {"auxk": ctx.aux_loss_coefficient * aux}


class BatchTopK(TopK):
    """BatchTopK SAE: the top k·B activations of the whole batch; infers as a JumpReLU with a
    running estimate of the smallest activation kept (SAELens's `topk_threshold`)."""

    extra_params = ("threshold",)
    running_threshold = True

    def activation(self, pre_rows: jax.Array, ctx: Context, encoder: EncoderMap | None = None
                   ) -> jax.Array | SparseActs:
        keep = self.cfg.k * pre_rows.shape[0]
        if keep >= pre_rows.size:
            return jax.nn.relu(pre_rows).T
        selected = SparseActs.top_k_pairs(pre_rows, keep, encoder)
        return selected if self.sparse else selected.dense()

    def published(self, threshold):
        return super().published(threshold) | {
            "threshold": jnp.full((self.cfg.d_sae,), threshold, self.b_enc.dtype)}


class MatryoshkaBatchTopK(BatchTopK):
    """Matryoshka BatchTopK SAE (Bussmann et al. 2025; SAELens's MatryoshkaBatchTopKTrainingSAE):
    batchtopk selection and running threshold, and a reconstruction loss for every prefix of
    `matryoshka_widths`. AuxK as batchtopk's on the full residual or, with
    `use_matryoshka_aux_loss`, one per group g: its dead latents (at most k_aux = d_in // 2,
    scaled by min(n_dead,g / k_aux, 1)) reconstruct the residual of prefix w_g, summed."""

    def penalties(self, X, T, F, X_hat, extras, ctx):
        terms = self.matryoshka_terms(T, F)
        if not self.cfg.use_matryoshka_aux_loss:
            return super().penalties(X, T, F, X_hat, extras, ctx) | terms
        pre_rows, W_dec, encoder = extras["pre_rows"], self.W_dec[...], extras["encoder"]
        prefixes = self.inner_reconstructions(F) + [X_hat]
        aux = sum(auxk_loss(pre_rows[:, start:stop], T - x_hat, W_dec[start:stop],
                            ctx.dead[start:stop], self.k_aux, self.sparse_aux,
                            None if encoder is None else encoder.latents(start, stop))
                  for (start, stop), x_hat in zip(self.cfg.group_bounds, prefixes))
        return {"auxk": ctx.aux_loss_coefficient * aux} | terms


class JumpReLU(Standard):
    """JumpReLU SAE: f = π · H(π − θ), θ = exp(log_threshold) trained through the rectangle-kernel
    straight-through estimator; L0 (step) or tanh sparsity, optional pre-activation loss."""

    extra_params = ("threshold",)

    def _init_latent_params(self, jumprelu_init_threshold):
        super()._init_latent_params(jumprelu_init_threshold)
        self.log_threshold = nnx.Param(
            jnp.full((self.cfg.d_sae,), jnp.log(jumprelu_init_threshold)))

    def train_encode(self, X, ctx):
        pre = self.hidden_pre(X)
        threshold = jnp.exp(self.log_threshold[...])[:, None]  # (d_sae, 1) against the columns
        return jumprelu(pre, threshold, ctx.jumprelu_bandwidth), {"pre": pre,
                                                                   "threshold": threshold}

    def penalties(self, X, T, F, X_hat, extras, ctx):
        pre, threshold = extras["pre"], extras["threshold"]
        weights = self.penalty_weights()[:, None]
        if self.cfg.jumprelu_sparsity_loss_mode == "step":
            sparsity = jnp.sum(step(pre, threshold, ctx.jumprelu_bandwidth), axis=0)
        else:
            sparsity = jnp.sum(jnp.tanh(ctx.jumprelu_tanh_scale * F * weights), axis=0)
        pre_act = jnp.sum(jax.nn.relu(threshold - pre) * ctx.dead[:, None] * weights, axis=0)
        return {"l0": ctx.l0_coefficient * jnp.mean(sparsity),
                "pre_act": ctx.pre_act_loss_coefficient * jnp.mean(pre_act)}

    def published(self, threshold):
        return super().published(threshold) | {"threshold": jnp.exp(self.log_threshold[...])}


class Gated(Standard):
    """Gated SAE (Rajamanoharan et al. 2024): a gate path decides which latents fire, a magnitude
    path sharing W_enc (rescaled by e^r_mag) says how much."""

    extra_params = ("b_gate", "r_mag", "b_mag")

    def _init_latent_params(self, jumprelu_init_threshold):
        d_sae = self.cfg.d_sae
        self.b_gate = nnx.Param(jnp.zeros((d_sae,)))
        self.r_mag = nnx.Param(jnp.zeros((d_sae,)))
        self.b_mag = nnx.Param(jnp.zeros((d_sae,)))

    def gate_pre(self, X):
        return self._encoder(X, self.W_enc[...], self.b_gate[...])

    def hidden_pre(self, X):
        """Π_mag, the magnitude path (SAELens's hidden_pre of a gated SAE)."""
        return self._encoder(X, self.W_enc[...] * jnp.exp(self.r_mag[...]), self.b_mag[...])

    def train_encode(self, X, ctx):
        gate = self.gate_pre(X)
        magnitude = self.hidden_pre(X)
        F = jax.lax.stop_gradient((gate > 0).astype(X.dtype)) * jax.nn.relu(magnitude)
        return F, {"gate": gate, "pre": magnitude}

    def penalties(self, X, T, F, X_hat, extras, ctx):
        gate_acts = jax.nn.relu(extras["gate"])
        via_gate = jax.lax.stop_gradient(self.W_dec[...]).T @ gate_acts + jax.lax.stop_gradient(
            self.b_dec[...])[:, None]
        return {"l1": ctx.l1_coefficient * self.mean_weighted_l1(gate_acts),
                "aux": jnp.mean(jnp.sum((via_gate - T) ** 2, axis=0))}

    def published(self, threshold):
        out = {name: self.__dict__[name][...] for name in ("W_enc", "W_dec", "b_dec")}
        return out | {name: self.__dict__[name][...] for name in self.extra_params}


ARCHITECTURES: dict[str, type[Standard]] = {
    "standard": Standard,
    "topk": TopK,
    "batchtopk": BatchTopK,
    "jumprelu": JumpReLU,
    "gated": Gated,
    "matryoshka_batchtopk": MatryoshkaBatchTopK,
}


def param_names(architecture: str) -> tuple[str, ...]:
    """The published parameters of an architecture, in SAELens's names."""
    base = ("W_enc", "W_dec", "b_dec") if architecture == "gated" else (
        "W_enc", "b_enc", "W_dec", "b_dec")
    return base + ARCHITECTURES[architecture].extra_params


def param_dims(cfg: SAEConfig) -> dict[str, tuple[str, ...]]:
    """Dims of each published parameter: W_enc (d_in, latent), W_dec (latent, d_in | d_out) …"""
    out = "d_out" if cfg.is_transcoder else "d_in"
    dims: dict[str, Any] = {"W_enc": ("d_in", "latent"), "b_enc": ("latent",),
                            "W_dec": ("latent", out), "b_dec": (out,)}
    return {name: dims.get(name, ("latent",)) for name in param_names(cfg.architecture)}
