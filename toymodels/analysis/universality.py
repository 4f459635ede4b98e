"""Do two SAEs learn the same features? Decoder and activation similarity, and their chance level.

For the question of SAE universality (under what conditions are learned features consistent
across seeds and dictionary sizes?) two SAEs A and B are compared by their decoder directions
(rows of W_dec) and by how their latents fire on the same inputs:

- `mean_max_cosine`: each latent's best decoder match in the other SAE, averaged both ways.
- `matched_similarity`: the one-to-one (Hungarian) matching of decoder directions.
- `max_activation_correlation`: each latent's best Pearson correlation with a latent of the other.
- `random_baseline`: what those scores are for independent random directions, exactly or sampled.
- `pairwise_similarity`: a similarity for every pair among many SAEs (seeds × widths) at once.

Decoder similarities use the signed cosine, as `mmcs` does: an SAE latent's activation is ≥ 0,
so a decoder direction and its negation are different features.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from scipy.integrate import quad
from scipy.special import betaincinv

from toymodels.analysis._cosines import matched_cosines, max_cosines
from toymodels.analysis._labeled import labeled
from toymodels.analysis.recovery import mcc, mmcs

__all__ = [
    "matched_similarity",
    "max_activation_correlation",
    "mean_max_activation_correlation",
    "mean_max_cosine",
    "pairwise_similarity",
    "random_baseline",
]


@labeled(("n_a", "d"), ("n_b", "d"), out=())
@jax.jit
def mean_max_cosine(a, b):
    r"""½ [(1/n_a) Σ_i max_k cos(a_i, b_k) + (1/n_b) Σ_k max_i cos(a_i, b_k)]: MMCS both ways.

    = ½ (mmcs(b, a) + mmcs(a, b)), with `mmcs(learned, truth)` the mean over truth of the best
    learned match; the two directional scores are those `mmcs` calls. Computed from one pass
    over the cosine matrix, in blocks (about 2²⁴ cosines at a time at most), so SAEs of tens of
    thousands of latents compare in bounded memory.

    Symmetric; 1 when every direction of each set appears (at a positive scale) in the other,
    in particular for identical sets and for a permutation of one set; unchanged by positive
    rescaling of any row, by the order of either set and by a rotation applied to both. In
    [−1, 1]; a zero row has cosine 0 with everything. Random sets score `random_baseline`.

    Args:
      a: (..., n_a, d) decoder directions of SAE A, one per row (W_dec).
      b: (..., n_b, d) decoder directions of SAE B.

    Returns:
      (...).
    """
    best_of_a, best_of_b = max_cosines(a, b)
    return 0.5 * (jnp.mean(best_of_a, axis=-1) + jnp.mean(best_of_b, axis=-1))


@labeled(("n_a", "d"), ("n_b", "d"), out=())
def matched_similarity(a, b, absolute: bool = False):
    r"""(1/m) max_π Σ_i cos(a_i, b_π(i)), m = min(n_a, n_b): the best one-to-one mean cosine.

    π ranges over injective pairings of the smaller set's rows with distinct rows of the larger
    one (Hungarian algorithm, as `mcc`, which is this with `absolute=True`). Unlike
    `mean_max_cosine`, two latents of A cannot both claim the same latent of B, so a wide SAE
    whose latents split one narrow latent scores lower than it does on mean max cosine. The mean
    is over the m matched pairs only: the unmatched rows of the larger set do not count.

    Symmetric; 1 for identical sets or a permutation of one; in [−1, 1] ([0, 1] with
    `absolute`). Not jittable (SciPy on the host, a Python loop over grid points,
    O(max(n_a, n_b)³) per pair); returns a NumPy array.

    Args:
      a: (..., n_a, d).
      b: (..., n_b, d).
      absolute: match on |cos|, so a direction and its negation count as the same.

    Returns:
      (...) float32.
    """
    return matched_cosines(a, b, absolute=absolute, caller="matched_similarity")


def _columns(acts):
    """(..., batch, d) -> (..., d, batch): latents' activations about their means, 0 if constant."""
    acts = jnp.asarray(acts)
    if acts.ndim < 2:
        raise ValueError(f"activations need shape (..., batch, d_sae), got {acts.shape}")
    acts = acts.astype(jnp.result_type(acts.dtype, jnp.float32))
    centred = acts - jnp.mean(acts, axis=-2, keepdims=True)
    # Rounding leaves a constant latent (a dead one) a tiny non-zero residue that `unit` would
    # blow up into a direction; test constancy exactly instead.
    constant = jnp.max(acts, axis=-2, keepdims=True) == jnp.min(acts, axis=-2, keepdims=True)
    return jnp.swapaxes(jnp.where(constant, 0.0, centred), -1, -2)


def _max_correlation(acts_a, acts_b):
    if jnp.shape(acts_a)[-2] != jnp.shape(acts_b)[-2]:
        raise ValueError(
            "max_activation_correlation: acts_a and acts_b must be taken on the same batch, got "
            f"shapes {jnp.shape(acts_a)} and {jnp.shape(acts_b)}"
        )
    return max_cosines(_columns(acts_a), _columns(acts_b))[0]


@labeled(("batch", "latent_a"), ("batch", "latent_b"), out=("latent_a",))
@jax.jit
def max_activation_correlation(acts_a, acts_b):
    r"""ρ_i = max_k corr(f^A_i, f^B_k): latent i of A's best Pearson correlation with a latent of B.

    corr is the Pearson correlation over the batch of shared inputs,
    corr(u, v) = Σ_b (u_b − ū)(v_b − v̄) / (‖u − ū‖ ‖v − v̄‖), i.e. the cosine of the centred
    activation columns. A latent that is constant on the batch (a dead latent) has correlation 0
    with everything, so a dead latent of A gets ρ_i = 0, never NaN. Unchanged by positive affine
    maps of any latent's activations and by the order of B's latents. Not symmetric: swap the
    arguments for B's latents.

    Args:
      acts_a: (..., batch, d_a) latent activations of SAE A (feature_acts).
      acts_b: (..., batch, d_b) activations of SAE B on the same inputs, in the same order.

    Returns:
      (..., d_a) in [−1, 1].
    """
    return _max_correlation(acts_a, acts_b)


@labeled(("batch", "latent_a"), ("batch", "latent_b"), out=())
@jax.jit
def mean_max_activation_correlation(acts_a, acts_b):
    r"""(1/d_a) Σ_i max_k corr(f^A_i, f^B_k): `max_activation_correlation` averaged over A.

    Dead latents of A count as 0 in the mean (mask them with `dead_latents` and average
    `max_activation_correlation` yourself to leave them out). Not symmetric.

    Args:
      acts_a: (..., batch, d_a).
      acts_b: (..., batch, d_b).

    Returns:
      (...) in [−1, 1].
    """
    return jnp.mean(_max_correlation(acts_a, acts_b), axis=-1)


def _expected_max_cosine(n: int, d: int) -> float:
    r"""E max_{k ≤ n} cos(u_k, v) for independent uniform unit vectors u_1 … u_n, v in R^d.

    Each cosine t has density ∝ (1 − t²)^((d−3)/2) on [−1, 1], i.e. (t + 1)/2 ~ Beta(α, α) with
    α = (d − 1)/2, and the n cosines with one v are independent. The max of n i.i.d. draws is
    Q(U^{1/n}) for U uniform and Q the quantile function, so E max = ∫₀¹ Q(u^{1/n}) du, with
    Q(p) = 1 − 2 I⁻¹_α,α(1 − p) by symmetry (accurate for p near 1). d = 1: cos = ±1.
    """
    if d == 1:
        return 1.0 - 2.0 ** (1 - n)
    alpha = (d - 1) / 2

    def quantile_of_max(u):
        return 1.0 - 2.0 * betaincinv(alpha, alpha, -np.expm1(np.log(u) / n))

    value, _ = quad(quantile_of_max, 0.0, 1.0, limit=200, epsabs=1e-10)
    return value


#: E[similarity(a, b)] for random a (n_a, d), b (n_b, d), in closed form (one quadrature).
_EXACT: dict[Callable, Callable[[int, int, int], float]] = {
    mmcs: lambda n_a, n_b, d: _expected_max_cosine(n_a, d),
    mean_max_cosine: lambda n_a, n_b, d: 0.5
    * (_expected_max_cosine(n_a, d) + _expected_max_cosine(n_b, d)),
}

#: Cosines drawn per call of the similarity when sampling.
_SAMPLE_ELEMENTS = 2**24


def _sampled(similarity, n_a, n_b, d, n_samples, seed):
    rng = np.random.default_rng(seed)
    per_call = max(1, min(n_samples, _SAMPLE_ELEMENTS // ((n_a + n_b) * d)))
    total, done = 0.0, 0
    while done < n_samples:
        k = min(per_call, n_samples - done)
        a = rng.standard_normal((k, n_a, d), dtype=np.float32)
        b = rng.standard_normal((k, n_b, d), dtype=np.float32)
        a /= np.linalg.norm(a, axis=-1, keepdims=True)
        b /= np.linalg.norm(b, axis=-1, keepdims=True)
        total += float(np.sum(np.asarray(similarity(a, b), np.float64)))
        done += k
    return total / n_samples


def random_baseline(
    n_a: int,
    n_b: int,
    d: int,
    *,
    similarity: Callable = mean_max_cosine,
    method: str = "exact",
    n_samples: int = 256,
    seed: int = 0,
) -> float:
    r"""E[similarity(a, b)] for independent dictionaries of uniformly random unit directions.

    a has n_a rows and b n_b rows, each drawn uniformly from the unit sphere in R^d: the score
    two SAEs of those shapes would get by chance. For `mmcs` (a as `learned`, b as `truth`) it is
    M(n_a, d) and for `mean_max_cosine` ½ (M(n_a, d) + M(n_b, d)), with M(n, d) the expected max
    of n i.i.d. cosines with a fixed direction, whose density is ∝ (1 − t²)^((d−3)/2); for large
    d, M(n, d) ≈ √(2 ln n / d). On 512-d activations M(n, 512) is 0.134 for n = 512, 0.151 for
    2048 and 0.174 for 16,384: the ≈ 0.15 random baseline of the SAE universality study.

    Args:
      n_a, n_b: the number of directions in each dictionary, ≥ 1.
      d: their width, ≥ 1.
      similarity: a function (..., n_a, d), (..., n_b, d) -> (...), e.g. `mean_max_cosine`,
        `mmcs`, `matched_similarity`, `mcc`.
      method: "exact" (by numerical integration; `mmcs` and `mean_max_cosine` only) or "sample"
        (the mean over `n_samples` random pairs, any similarity; its standard error is the
        score's spread over pairs / √n_samples).
      n_samples: random pairs drawn by "sample", ≥ 1.
      seed: seed of the NumPy generator "sample" draws with.

    Returns:
      The expected score, a float.
    """
    for name, value in (("n_a", n_a), ("n_b", n_b), ("d", d), ("n_samples", n_samples)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"random_baseline: {name} must be an integer ≥ 1, got {value!r}")
    if method == "exact":
        if similarity not in _EXACT:
            names = ", ".join(f.__name__ for f in _EXACT)
            raise ValueError(
                f"random_baseline: method='exact' is known for similarity in {{{names}}}, got "
                f"{getattr(similarity, '__name__', similarity)!r}; use method='sample'"
            )
        return float(_EXACT[similarity](int(n_a), int(n_b), int(d)))
    if method == "sample":
        return _sampled(similarity, int(n_a), int(n_b), int(d), int(n_samples), seed)
    raise ValueError(f"random_baseline: method must be 'exact' or 'sample', got {method!r}")


#: Similarities with f(a, b) = f(b, a): `pairwise_similarity` computes each unordered pair once.
_SYMMETRIC = frozenset({mean_max_cosine, matched_similarity, mcc})


def _as_group(name, decoder) -> xr.DataArray:
    if isinstance(decoder, xr.DataArray):
        if decoder.ndim < 2:
            raise ValueError(
                f"pairwise_similarity: decoders[{name!r}] needs dims (*grid, latent, d_in), got "
                f"{decoder.dims}"
            )
        return decoder
    decoder = np.asarray(decoder)
    if decoder.ndim != 2:
        raise ValueError(
            f"pairwise_similarity: decoders[{name!r}] must be a (d_sae, d_in) array or a "
            f"DataArray (*grid, latent, d_in), got shape {decoder.shape}"
        )
    return xr.DataArray(decoder, dims=("latent", "d_in"))


def _groups(decoders) -> dict:
    """label -> DataArray (*grid, latent, d_in), checked to share d_in and the grid."""
    if isinstance(decoders, xr.DataArray):
        groups = {None: decoders}
    elif isinstance(decoders, Mapping):
        groups = dict(decoders)
    elif isinstance(decoders, Sequence) and not isinstance(decoders, str):
        groups = dict(enumerate(decoders))
    else:
        raise ValueError(
            "pairwise_similarity: decoders must be a DataArray, a mapping or a sequence, got "
            f"{type(decoders).__name__}"
        )
    if not groups:
        raise ValueError("pairwise_similarity: decoders is empty")
    groups = {label: _as_group(label, decoder) for label, decoder in groups.items()}
    widths = {label: g.shape[-1] for label, g in groups.items()}
    if len(set(widths.values())) > 1:
        raise ValueError(f"pairwise_similarity: decoders must share d_in, got widths {widths}")
    grids = {
        label: g.isel({g.dims[-2]: 0, g.dims[-1]: 0}, drop=True) for label, g in groups.items()
    }
    first_label, first = next(iter(grids.items()))
    for label, g in grids.items():
        if g.dims != first.dims:
            raise ValueError(
                f"pairwise_similarity: decoders[{label!r}] has grid dims {g.dims}, but "
                f"decoders[{first_label!r}] has {first.dims}; every group needs the same grid"
            )
    try:
        xr.align(*[g.reset_coords(drop=True) for g in grids.values()], join="exact")
    except ValueError as error:
        raise ValueError(
            f"pairwise_similarity: every group needs the same grid coordinates ({error})"
        ) from None
    return groups


def pairwise_similarity(
    decoders: xr.DataArray | Mapping | Sequence,
    *,
    dim: str = "model",
    similarity: Callable = mean_max_cosine,
) -> xr.DataArray:
    r"""similarity(W_dec of model a, W_dec of model b) for every ordered pair of models at once.

    Models come in groups of one width each: `decoders` maps a label (the dictionary ratio, a
    width, a name) to the decoders of that group, either a (d_sae, d_in) array (one model) or a
    DataArray (*grid, latent, d_in) with one model per grid point, e.g. a sweep's `ds.W_dec`
    over seeds. Different widths are never padded: each group keeps its own d_sae, and groups
    are compared group by group, each pair of groups in one batched call over all their grid
    points (jitted, and in bounded memory, for `mean_max_cosine`). All groups must share d_in
    and their grid (the same dims, sizes and coordinates). A single DataArray (or one group)
    gives the pairs among its own grid points. A sequence is labeled 0, 1, ….

    The result has dims (f"{dim}_a", *grid_a, f"{dim}_b", *grid_b): each grid dim twice, with
    suffixes _a and _b and its coordinates, the group label dims first (left out for a single
    DataArray). A model against itself scores 1 for the decoder similarities here, so to average
    over distinct models of one group, drop the diagonal. The universality experiment (SAEs at
    1, 2, …, 32 × the true dictionary size, 4 seeds each) is one call:

        S = pairwise_similarity({r: runs[r].W_dec for r in ratios}, dim="ratio")
        S.mean(["seed_a", "seed_b"])                                  # ratio_a × ratio_b
        distinct = (S.ratio_a != S.ratio_b) | (S.seed_a != S.seed_b)
        S.where(distinct).mean(["seed_a", "seed_b"])   # leaving out each model against itself

    Symmetric similarities (`mean_max_cosine`, `matched_similarity`, `mcc`) are computed once per
    unordered pair of groups and mirrored.

    Args:
      decoders: a mapping label -> decoders, a sequence of decoders, or one DataArray
        (*grid, latent, d_in). The last two dims are (latent, d_in) whatever their names.
      dim: the name of the group label dim, suffixed _a and _b in the result.
      similarity: f(a, b) for a (..., n_a, d), b (..., n_b, d) -> (...), broadcasting its
        leading axes; `mean_max_cosine` by default, also `matched_similarity`, `mmcs`, `mcc`.

    Returns:
      A DataArray named after `similarity`.
    """
    groups = _groups(decoders)
    first = next(iter(groups.values()))
    grid = first.dims[:-2]
    shape = tuple(first.sizes[d] for d in grid)
    stacks = [g.values.reshape(-1, *g.shape[-2:]) for g in groups.values()]
    symmetric = similarity in _SYMMETRIC
    k, size = len(stacks), int(np.prod(shape))
    values = np.empty((k, size, k, size), np.float32)
    for i, j in itertools.product(range(k), repeat=2):
        if symmetric and j < i:
            values[i, :, j, :] = values[j, :, i, :].T
        else:
            values[i, :, j, :] = np.asarray(similarity(stacks[i][:, None], stacks[j][None, :]))

    single = isinstance(decoders, xr.DataArray)
    label_dims = () if single else (dim,)
    dims = [f"{d}_{side}" for side in ("a", "b") for d in label_dims + grid]
    coords = {}
    for side in ("a", "b"):
        if not single:
            coords[f"{dim}_{side}"] = list(groups)
        coords.update({f"{d}_{side}": first[d].values for d in grid if d in first.coords})
    values = values.reshape(shape + shape if single else (k, *shape, k, *shape))
    return xr.DataArray(values, dims=dims, coords=coords, name=similarity.__name__)
