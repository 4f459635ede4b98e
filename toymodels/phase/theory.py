r"""The theoretical phase diagram: which configuration of the weights has the lowest loss.

Following "Superposition as a Phase Change" (Elhage et al. 2022), a few candidate
configurations of W are written down, each a family with free parameters θ (norms and biases);
each one's expected loss is computed exactly (`toymodels.phase.exact`) and minimised over θ; at
each (feature density p, relative importance r) the lowest-loss weights give the phase.

The setting: feature 0 (and feature 1 when n = 3) has importance 1, the last feature — the
*extra* feature — has importance r; every feature is active with probability p, U[0, 1] when
active; the loss is Σ_i I_i E[(x_i − x'_i)²] / n for x' = ReLU(x W Wᵀ + b).

Candidates, simplest first, each with its nominal phase code (see `toymodels.phase.PHASES`):

n = 2, m = 1 (W rows are scalars; every candidate has free biases b0, b1):
  - "extra not represented" (0): W = [w0, 0]. Optimum in closed form: w0 = 1, b0 = 0 (feature 0
    exact), b1 = p/2 (the extra feature's mean), loss r (p/3 − p²/4) / 2.
  - "extra dedicated" (1): W = [0, w1]; feature 0 is dropped. Loss (p/3 − p²/4) / 2.
  - "antipodal" (2): W = [w0, −w1], both features in the one dimension, opposite signs.

n = 3, m = 2 (free biases b0, b1, b2, except where noted):
  - "extra not represented" (0): W = [(w0, 0), (0, w1), (0, 0)]; closed form, loss r σ² / 3.
  - "extra dedicated" (1): W = [(w0, 0), (0, 0), (0, w2)]; feature 1 dropped; loss σ² / 3.
  - "extra dedicated, 0 and 1 antipodal" (1): W = [(w0, 0), (−w1, 0), (0, w2)]; the extra
    feature keeps a dimension to itself and features 0 and 1 share the other.
  - "extra antipodal to 0" (2): W = [(w0, 0), (0, w1), (−w2, 0)].
  - "triangle" (2): W = [(s, t), (−s, t), (0, −c)], b = (b01, b01, b2): three features in the
    plane, mirror-symmetric under swapping the two equally important features.

(σ² = p/3 − p²/4 is the variance of one feature.) The parameters' signs are free, so a family
also holds its sign-flipped variants (an "antipodal" pair with w1 < 0 points both features the
same way), and a family holds the simpler ones as limits (a norm → 0). The phase of a grid point
is therefore read off the winning optimum's weights by `classify_phase`, the same rule used for
trained models; the nominal code of the winning configuration is kept beside it. Where two
families reach the same loss (within a relative `tolerance`), the simpler one wins.

Checks (see tests/test_phase_theory.py): a search over *all* weights — any W of shape (2, 1),
any three vectors in the plane for (3, 2), with free biases — finds nothing lower than the best
candidate (to 1e-9 relative at every point tried). The optimal biases come out small and
*positive* (b ≈ 0.1 p² for the antipodal pair at r = 1 and small p), not negative: the
interference of an antipodal pair, or of a triangle whose angles exceed 90°, is negative, and the
ReLU already removes it; a positive bias offsets the partner's negative term when both are
active. (Negative biases pay off when interference is positive: more features than fit at
obtuse angles, as in the pentagon of 5 features in 2 dimensions.)

Minimisation (`optimize`): the loss is a fixed linear combination of the conditional errors
T_{S,i}(θ), with weights p^|S| (1 − p)^(n−|S|) I_i / n, so the T's of a Sobol set of θ are
computed once per configuration and scored for every grid point at once (one matrix product);
from a few good, mutually distant ones, damped Newton (finite-difference derivatives of the exact
loss, float64) descends at every grid point together; then every point's optimum is tried at
every other point, and Newton restarts wherever one is better. A configuration's features split
into groups that never interact (`Configuration.blocks`), each integrated on its own: only the
triangle needs the 3-D integrals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import xarray as xr
from scipy.stats import qmc

from toymodels.phase.classify import PHASES, classify_phase
from toymodels.phase.exact import _float64_components, _subset_weights, exact_loss

__all__ = [
    "Configuration",
    "Optimum",
    "configurations",
    "expected_loss",
    "importances",
    "optimal_loss",
    "optimize",
    "theoretical_phase_diagram",
]


@dataclass(frozen=True, eq=False)
class Configuration:
    """A family of weights (W, b) = embed(θ) for n features in m dims, and the phase it stands for.

    Attributes:
      name: what the configuration looks like, e.g. "antipodal".
      phase: its phase code, an index into `PHASES`.
      n_features: n; the last feature is the extra one.
      d_hidden: m.
      params: the names of the free parameters θ, in order.
      embed: θ (..., len(params)) -> (W (..., n, m), b (..., n)) in NumPy; must be linear in θ
        (every candidate is: norms and biases placed in fixed slots, some negated or shared), so
        that its structure, which features can interact and which are never embedded, can be
        read off `basis`.
      box: per parameter, the (low, high) range the initial search covers (a range symmetric
        about 0 is sampled densely near 0, as u³ for u uniform).
    """

    name: str
    phase: int
    n_features: int
    d_hidden: int
    params: tuple[str, ...]
    embed: Callable
    box: tuple[tuple[float, float], ...]

    def __post_init__(self):
        if not 0 <= self.phase < len(PHASES):
            raise ValueError(f"phase must be in [0, {len(PHASES)}); got {self.phase}")
        if len(self.box) != len(self.params):
            raise ValueError(f"box must have one range per parameter ({len(self.params)})")
        W, b = self.basis
        if W.shape != (len(self.params), self.n_features, self.d_hidden):
            raise ValueError(f"embed must give W of shape (..., {self.n_features}, "
                             f"{self.d_hidden}); got {W.shape[1:]}")
        theta = np.linspace(-1.0, 2.0, len(self.params))
        W_theta, b_theta = self.embed(theta)
        if not (np.allclose(W_theta, np.tensordot(theta, W, 1))
                and np.allclose(b_theta, np.tensordot(theta, b, 1))):
            raise ValueError(f"{self.name}: embed must be linear in the parameters")

    @functools.cached_property
    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """(W_k, b_k) per parameter: (d, n, m) and (d, n), so that W = Σ_k θ_k W_k."""
        W, b = self.embed(np.eye(len(self.params)))
        return np.asarray(W, np.float64), np.asarray(b, np.float64)

    @functools.cached_property
    def pinned(self) -> dict[int, float | str]:
        """Parameters whose optimum is known whatever the others are, by index: 1.0, 0.0 or
        "mean" (p/2).

        A feature alone in its block (`blocks`) meets no other; if θ_k is its only weight it
        is reconstructed exactly with |θ_k| = 1 and bias 0; if W never embeds it, its output is
        the constant ReLU(b_i), best at the mean b_i = E[x_i] = p/2. The search pins these
        rather than descend to them: the optimum b_i = 0 sits on a jump of the loss's curvature,
        and below 0 a dropped feature's loss is flat in b_i, a plateau no descent leaves.
        """
        W, b = self.basis
        pinned = {}
        for block in self.blocks:
            if len(block) != 1:
                continue
            (i,) = block
            weights = [k for k in range(len(self.params)) if np.any(W[k, i])]
            biases = [k for k in range(len(self.params)) if b[k, i] != 0]
            # Only the simple slots: one weight entry (or none) and one bias of coefficient 1,
            # each a parameter of its own that touches nothing else.
            simple = (len(weights) <= 1 and len(biases) == 1 and not set(weights) & set(biases)
                      and b[biases[0], i] == 1 and not np.any(W[biases[0]])
                      and all(np.count_nonzero(W[k]) == 1 and not np.any(b[k]) for k in weights)
                      and np.count_nonzero(b[biases[0]]) == 1)
            if not simple:
                continue
            if weights:
                pinned[weights[0]] = 1.0 / float(np.abs(W[weights[0], i]).sum())
            pinned[biases[0]] = 0.0 if weights else "mean"
        return pinned

    @functools.cached_property
    def blocks(self) -> tuple[tuple[int, ...], ...]:
        """Groups of features that can interact: G_ij = W_i·W_j is 0 for every θ across groups.

        Features in different groups are independent and never enter each other's output, so
        the loss is a sum over groups of smaller exact integrals (features 0 and 2 of "extra
        antipodal to 0" make a two-feature problem, feature 1 a one-feature one).
        """
        W = self.basis[0]
        touches = np.einsum("kih,ljh->ij", np.abs(W), np.abs(W)) > 0
        groups, seen = [], set()
        for i in range(self.n_features):
            if i in seen:
                continue
            group, frontier = {i}, [i]
            while frontier:
                j = frontier.pop()
                new = set(np.flatnonzero(touches[j]).tolist()) - group
                group |= new
                frontier.extend(new)
            seen |= group
            groups.append(tuple(sorted(group)))
        return tuple(groups)


_NORM = (0.0, 1.5)
_BIAS = (-1.0, 1.0)


def _rows(*rows):
    """Stack rows of (...) entries into (..., n, m)."""
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _split(theta):
    return np.moveaxis(np.asarray(theta, np.float64), -1, 0)


def _pair_not_represented(theta):
    w0, b0, b1 = _split(theta)
    z = np.zeros_like(w0)
    return _rows((w0,), (z,)), np.stack([b0, b1], -1)


def _pair_dedicated(theta):
    w1, b0, b1 = _split(theta)
    z = np.zeros_like(w1)
    return _rows((z,), (w1,)), np.stack([b0, b1], -1)


def _pair_antipodal(theta):
    w0, w1, b0, b1 = _split(theta)
    return _rows((w0,), (-w1,)), np.stack([b0, b1], -1)


def _triple_not_represented(theta):
    w0, w1, b0, b1, b2 = _split(theta)
    z = np.zeros_like(w0)
    return _rows((w0, z), (z, w1), (z, z)), np.stack([b0, b1, b2], -1)


def _triple_dedicated(theta):
    w0, w2, b0, b1, b2 = _split(theta)
    z = np.zeros_like(w0)
    return _rows((w0, z), (z, z), (z, w2)), np.stack([b0, b1, b2], -1)


def _triple_dedicated_pair_antipodal(theta):
    w0, w1, w2, b0, b1, b2 = _split(theta)
    z = np.zeros_like(w0)
    return _rows((w0, z), (-w1, z), (z, w2)), np.stack([b0, b1, b2], -1)


def _triple_antipodal(theta):
    w0, w1, w2, b0, b1, b2 = _split(theta)
    z = np.zeros_like(w0)
    return _rows((w0, z), (z, w1), (-w2, z)), np.stack([b0, b1, b2], -1)


def _triple_triangle(theta):
    s, t, c, b01, b2 = _split(theta)
    return _rows((s, t), (-s, t), (np.zeros_like(c), -c)), np.stack([b01, b01, b2], -1)


_CONFIGURATIONS: dict[tuple[int, int], tuple[Configuration, ...]] = {
    (2, 1): (
        Configuration("extra not represented", 0, 2, 1, ("w0", "b0", "b1"),
                      _pair_not_represented, (_NORM, _BIAS, _BIAS)),
        Configuration("extra dedicated", 1, 2, 1, ("w1", "b0", "b1"),
                      _pair_dedicated, (_NORM, _BIAS, _BIAS)),
        Configuration("antipodal", 2, 2, 1, ("w0", "w1", "b0", "b1"),
                      _pair_antipodal, (_NORM, _NORM, _BIAS, _BIAS)),
    ),
    (3, 2): (
        Configuration("extra not represented", 0, 3, 2, ("w0", "w1", "b0", "b1", "b2"),
                      _triple_not_represented, (_NORM, _NORM, _BIAS, _BIAS, _BIAS)),
        Configuration("extra dedicated", 1, 3, 2, ("w0", "w2", "b0", "b1", "b2"),
                      _triple_dedicated, (_NORM, _NORM, _BIAS, _BIAS, _BIAS)),
        Configuration("extra dedicated, 0 and 1 antipodal", 1, 3, 2,
                      ("w0", "w1", "w2", "b0", "b1", "b2"), _triple_dedicated_pair_antipodal,
                      (_NORM, _NORM, _NORM, _BIAS, _BIAS, _BIAS)),
        Configuration("extra antipodal to 0", 2, 3, 2, ("w0", "w1", "w2", "b0", "b1", "b2"),
                      _triple_antipodal, (_NORM, _NORM, _NORM, _BIAS, _BIAS, _BIAS)),
        Configuration("triangle", 2, 3, 2, ("s", "t", "c", "b01", "b2"),
                      _triple_triangle, ((0.0, 1.5), (-0.5, 1.0), _NORM, _BIAS, _BIAS)),
    ),
}


def configurations(n_features: int = 2, d_hidden: int = 1) -> dict[str, Configuration]:
    """The candidate configurations for n features in m dims, simplest first, by name.

    Defined for (n, m) = (2, 1) and (3, 2); see the module docstring.
    """
    key = (n_features, d_hidden)
    if key not in _CONFIGURATIONS:
        raise ValueError(f"(n_features, d_hidden) must be one of {sorted(_CONFIGURATIONS)}; "
                         f"got {key}")
    return {c.name: c for c in _CONFIGURATIONS[key]}


def importances(relative_importance, n_features: int = 2) -> np.ndarray:
    """(..., n_features) importance vectors (1, …, 1, r): the extra (last) feature at r.

    For training the empirical diagram: `sweep(..., grid={"importance": importances(r), ...})`.
    """
    r = np.asarray(relative_importance, np.float64)[..., None]
    return np.concatenate([np.ones(r.shape[:-1] + (n_features - 1,)), r], axis=-1)


def _check_grid(p, r):
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError("feature_probability must be in (0, 1]")
    if not np.all((r > 0) & np.isfinite(r)):
        raise ValueError("relative_importance must be positive and finite")


def expected_loss(config: Configuration, params, feature_probability, relative_importance):
    """The exact expected loss of `config` at parameters θ, density p and relative importance r.

    L(θ) = Σ_i I_i E[(x_i − x'_i)²] / n with (W, b) = config.embed(θ), I = (1, …, 1, r).

    Args:
      config: a `Configuration`.
      params: (..., len(config.params)) θ.
      feature_probability: (...) p.
      relative_importance: (...) r.

    Returns:
      (...) float64 loss.
    """
    W, b = config.embed(params)
    return exact_loss(W, b, np.asarray(feature_probability, np.float64),
                      importances(relative_importance, config.n_features))


class Optimum(NamedTuple):
    """The best parameters found for a configuration, per grid point.

    loss: (...) the minimal expected loss; params: (..., len(config.params)) the minimiser θ;
    W: (..., n, m) and b: (..., n) the weights it gives.
    """

    loss: np.ndarray
    params: np.ndarray
    W: np.ndarray
    b: np.ndarray


def _components_of(config: Configuration, theta):
    """(N, C) the T's of `config` at parameters θ (N, d), block by block (`Configuration.blocks`),
    each block's (2^k, k) flattened, matching `_coefficients`."""
    W, b = config.embed(theta)
    G = W @ np.swapaxes(W, -1, -2)
    N = len(G)
    return np.concatenate([
        _float64_components(G[:, np.array(block)[:, None], np.array(block)],
                            b[:, np.array(block)]).reshape(N, -1)
        for block in config.blocks], axis=1)


def _coefficients(config: Configuration, p, r):
    """(..., C): the weight of each of `config`'s T's in the loss at density p and importance r.

    Block by block: p^|S| (1 − p)^(k − |S|) I_i / n for S ⊆ the block's k features.
    """
    n = config.n_features
    importance = importances(r, n)
    parts = []
    for block in config.blocks:
        w = _subset_weights(p, len(block))
        part = w[..., :, None] * importance[..., None, list(block)] / n
        parts.append(part.reshape(*part.shape[:-2], -1))
    return np.concatenate(parts, axis=-1)


def _stencil(d: int) -> np.ndarray:
    """(K, d) offsets in units of the step: 0, ±e_i, and e_i + e_j for i < j."""
    eye = np.eye(d)
    pairs = [eye[i] + eye[j] for i in range(d) for j in range(i + 1, d)]
    return np.concatenate([np.zeros((1, d)), eye, -eye, np.reshape(pairs, (-1, d))])


def _quadratic_model(f, d: int, h):
    """Gradient (N, d) and Hessian (N, d, d) from losses f (N, K) on `_stencil(d)` scaled by h."""
    f0, plus, minus, pairs = f[:, 0], f[:, 1 : d + 1], f[:, d + 1 : 2 * d + 1], f[:, 2 * d + 1 :]
    grad = (plus - minus) / (2 * h)
    H = np.zeros((len(f), d, d))
    H[:, np.arange(d), np.arange(d)] = (plus - 2 * f0[:, None] + minus) / h**2
    i, j = np.triu_indices(d, 1)
    H[:, i, j] = H[:, j, i] = ((pairs - plus[:, i] - plus[:, j] + f0[:, None])
                               / (h[:, i] * h[:, j]))
    return grad, H


def _newton(config: Configuration, theta, coefficients, max_steps: int, free):
    """Damped Newton (Levenberg–Marquardt) descent from each θ (N, d) on its own exact loss,
    moving only the parameters listed in `free`.

    Gradient and Hessian are finite differences of the exact loss (a forward-only kernel
    compiles in a second or two; its reverse-mode gradient took ten times longer), with step
    h (1 + |θ|), h from 1e-4 down to the size of the last Newton step. A step is kept
    only if it lowers the exact loss, so the result is never worse than the start. A problem
    stops when a kept step lowers its loss by under 1e-12 relative, or when even a short,
    heavily damped step fails to lower it.

    Returns:
      losses (N,), parameters (N, d) and T's (N, C) at the end.
    """
    theta = np.array(theta, np.float64)
    free = np.asarray(free, int)
    d = len(free)
    stencil = _stencil(d)
    K = len(stencil)
    T = _components_of(config, theta)
    f = np.sum(coefficients * T, axis=1)
    damping = np.full(len(theta), 1e-3)
    # The difference step shrinks with the Newton steps, down to 1e-7: a perfectly
    # reconstructed feature's optimum sits at b = 0, where the loss's curvature jumps, and a
    # stencil straddling that kink would stall the search a stencil-width away from it.
    spacing = np.full(len(theta), 1e-4)
    active = np.isfinite(f) & (d > 0)
    for _ in range(max_steps):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        t, c, fi = theta[idx], coefficients[idx], f[idx]
        h = spacing[idx, None] * (1.0 + np.abs(t[:, free]))
        points = np.repeat(t[:, None, :], K, axis=1)
        points[:, :, free] += stencil * h[:, None, :]
        T_points = _components_of(config, points.reshape(len(t) * K, -1))
        values = np.sum(np.repeat(c, K, axis=0) * T_points, axis=1).reshape(-1, K)
        g, H = _quadratic_model(values, d, h)
        scale = np.abs(np.diagonal(H, axis1=1, axis2=2)) + 1e-12 * np.abs(fi)[:, None] + 1e-300
        lhs = H + damping[idx, None, None] * (scale[:, :, None] * np.eye(d))
        with np.errstate(all="ignore"):
            step = np.linalg.solve(lhs, -g[..., None])[..., 0]
        trial = t.copy()
        trial[:, free] += np.where(np.isfinite(step), step, 0.0)
        T_new = _components_of(config, trial)
        f_new = np.sum(c * T_new, axis=1)
        better = np.isfinite(f_new) & (f_new < fi)
        done = (better & (fi - f_new <= 1e-12 * np.abs(fi))) | (~better & (damping[idx] >= 1e6))
        keep = idx[better]
        theta[keep], f[keep], T[keep] = trial[better], f_new[better], T_new[better]
        spacing[keep] = np.clip(np.max(np.abs(step[better]), axis=1), 1e-7, 1e-4)
        spacing[idx[~better]] = np.maximum(spacing[idx[~better]] / 10, 1e-7)
        damping[idx] = np.where(better, np.maximum(damping[idx] / 3, 1e-12), damping[idx] * 10)
        active[idx[done]] = False
    return f, theta, T


@functools.lru_cache(maxsize=None)
def _scan(config: Configuration, n_scan: int):
    """A Sobol set of θ in `config.box` and their T's (n_scan, C)."""
    box = np.asarray(config.box)
    sobol = qmc.Sobol(len(config.params), scramble=True, rng=np.random.default_rng(0))
    v = sobol.random(n_scan)
    theta = box[:, 0] + v * (box[:, 1] - box[:, 0])
    # Ranges symmetric about 0 (the biases) are sampled densely near 0, where their optima lie
    # (|b| ≲ p/2, and O(p²) in superposition): at small p a start with |b| ≫ p is far away.
    symmetric = box[:, 0] == -box[:, 1]
    theta[:, symmetric] = box[symmetric, 1] * (2 * v[:, symmetric] - 1) ** 3
    return theta, _components_of(config, theta)


def _diverse_starts(scores, theta, k: int, pool: int = 64, spread: float = 0.25):
    """Indices (G, k) of low-scoring, mutually distant rows of θ (S, d), for each row of scores.

    From each row's `pool` lowest scores, take the lowest, then repeatedly the lowest that is
    at least `spread` (in units of θ's range) from every one taken so far, so that the starts
    fall in different basins instead of k times in the best one; the lowest remaining fill any
    slots left.
    """
    pool = min(pool, scores.shape[1])
    k = min(k, pool)
    top = np.argpartition(scores, pool - 1, axis=1)[:, :pool]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(scores, top, 1), 1), 1)
    span = np.ptp(theta, axis=0) + 1e-12
    x = theta[top] / span  # (G, pool, d)
    taken = np.zeros(top.shape, bool)
    taken[:, 0] = True
    distance = np.linalg.norm(x - x[:, :1], axis=-1)
    for _ in range(k - 1):
        far = ~taken & (distance >= spread)
        fallback = ~taken
        choice = np.where(far.any(1), np.argmax(far, 1), np.argmax(fallback, 1))
        taken[np.arange(len(top)), choice] = True
        picked = x[np.arange(len(top)), choice]
        distance = np.minimum(distance, np.linalg.norm(x - picked[:, None], axis=-1))
    return top[taken].reshape(len(top), k)


# Grid points solved first, from the Sobol starts alone, when a grid is much larger: their
# optima then join the pool of starts, and most points start next to their optimum.
_PILOT = 64


def _search(config, coef, pool, T_pool, pinned_values, free, n_starts, max_steps, rounds):
    """Optimise at every row of coef (G, C) from the best of a pool of θ with known T's."""
    G = len(coef)
    fixed = [k for k in range(pool.shape[1]) if k not in free]
    starts = _diverse_starts(coef @ T_pool.T, pool, n_starts)
    k = starts.shape[1]
    theta = pool[starts]  # (G, k, d)
    theta[..., fixed] = pinned_values[:, None, :]
    f, theta, T = _newton(config, theta.reshape(G * k, -1), np.repeat(coef, k, axis=0),
                          max_steps, free)
    f, theta, T = f.reshape(G, k), theta.reshape(G, k, -1), T.reshape(G, k, -1)
    pick = np.argmin(f, axis=1)
    f, theta, T = (a[np.arange(G), pick] for a in (f, theta, T))
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        seeds = np.arange(G) if G <= 4096 else rng.choice(G, 4096, replace=False)
        scores = coef @ T[seeds].T  # (G, seeds)
        best = np.argmin(scores, axis=1)
        gain = f - scores[np.arange(G), best]
        retry = np.flatnonzero(gain > 1e-10 * np.abs(f))
        if retry.size == 0:
            break
        start = theta[seeds[best[retry]]]
        start[:, fixed] = pinned_values[retry]
        f_new, theta_new, T_new = _newton(config, start, coef[retry], max_steps, free)
        better = f_new < f[retry]
        f[retry[better]], theta[retry[better]], T[retry[better]] = (
            f_new[better], theta_new[better], T_new[better])
    return f, theta, T


def optimize(config: Configuration, feature_probability, relative_importance, *,
             n_starts: int = 2, n_scan: int = 4096, max_steps: int = 60,
             rounds: int = 3) -> Optimum:
    """Minimise `config`'s exact expected loss over its parameters, at each (p, r).

    1. Score `n_scan` Sobol points of `config.box` at every (p, r) (their T_{S,i} are computed
       once per configuration and cached) and run damped Newton from the best `n_starts` that
       lie apart from each other. On a grid of more than 4 × 64 points, 64 of them are solved
       first and their optima join the Sobol points as starts for all.
    2. Up to `rounds` times: score every point's optimum at every other point (4096 of them at
       most), and restart Newton wherever another point's optimum beats the local one. Near a
       first-order transition two minima compete, and the neighbour that found the other basin
       is the best start there is.

    Parameters with a known optimum (`Configuration.pinned`) are set to it and not searched; a
    configuration with all of them pinned ("extra not represented", "extra dedicated") is solved
    in closed form.

    Args:
      config: a `Configuration`.
      feature_probability: (...) p in (0, 1].
      relative_importance: (...) r > 0, broadcast against p.
      n_starts, n_scan, max_steps, rounds: the search's effort (see above).

    Returns:
      An `Optimum` of float64 arrays over the broadcast shape of p and r.
    """
    p, r = np.broadcast_arrays(np.asarray(feature_probability, np.float64),
                               np.asarray(relative_importance, np.float64))
    _check_grid(p, r)
    shape = p.shape
    coef = _coefficients(config, p.reshape(-1), r.reshape(-1))  # (G, C)
    G = len(coef)
    pinned = config.pinned
    free = [k for k in range(len(config.params)) if k not in pinned]
    mean = p.reshape(-1, 1) / 2
    values = np.concatenate([mean if pinned[k] == "mean" else np.full_like(mean, pinned[k])
                             for k in pinned], axis=1) if pinned else np.zeros((G, 0))
    if not free:  # the optimum is known in closed form
        theta = np.zeros((G, len(config.params)))
        theta[:, list(pinned)] = values
        f = np.sum(coef * _components_of(config, theta), axis=1)
    else:
        pool, T_pool = _scan(config, n_scan)
        search = (free, n_starts, max_steps, rounds)
        if G > 4 * _PILOT:
            pilot = np.random.default_rng(0).choice(G, _PILOT, replace=False)
            _, theta_pilot, T_pilot = _search(config, coef[pilot], pool, T_pool, values[pilot],
                                              *search)
            pool, T_pool = np.concatenate([pool, theta_pilot]), np.concatenate([T_pool, T_pilot])
        f, theta, _ = _search(config, coef, pool, T_pool, values, *search)
    W, b = config.embed(theta)
    return Optimum(f.reshape(shape), theta.reshape(*shape, -1),
                   W.reshape(*shape, *W.shape[1:]), b.reshape(*shape, -1))


def optimal_loss(config: Configuration, feature_probability, relative_importance, **options):
    """(...) the minimum over θ of `expected_loss(config, θ, p, r)`; see `optimize`."""
    return optimize(config, feature_probability, relative_importance, **options).loss


def theoretical_phase_diagram(relative_importance, feature_probability, n_features: int = 2,
                              d_hidden: int = 1, *, tolerance: float = 1e-7,
                              threshold: float = 0.5, overlap: float = 0.3,
                              **options) -> xr.Dataset:
    """The phase of the lowest-loss weights at every (p, r) of a grid.

    Every candidate configuration (module docstring) is minimised at every grid point; the one
    with the lowest loss wins (the simplest, if several are within `tolerance`), and the phase
    is `classify_phase` of its optimal weights.

    Args:
      relative_importance: (R,) importance r of the extra (last) feature; the others have 1.
      feature_probability: (P,) density p of every feature.
      n_features, d_hidden: (2, 1) or (3, 2).
      tolerance: a configuration must beat every simpler one (listed earlier) by more than
        `tolerance` × |loss| to win; the search is accurate to about 1e-8 relative.
      threshold, overlap: passed to `classify_phase`.
      **options: passed to `optimize`.

    Returns:
      A Dataset with dims ("feature_probability", "relative_importance") over the grid
      (p along rows, r along columns, as the paper plots them) and "configuration":
        phase (feature_probability, relative_importance) int: the phase code (`PHASES`);
        configuration_index (…) int: which configuration won;
        configuration_label (…) int: its nominal phase code; it differs from `phase` where the
          winner degenerates (a norm at or below `threshold`, or a family's sign-flipped variant);
        loss (configuration, feature_probability, relative_importance): each one's optimal loss;
        params (configuration, …, param): θ, NaN-padded to the longest parameter list;
        W (configuration, …, feature, hidden) and b (configuration, …, feature): its weights;
        configuration_phase (configuration): each configuration's nominal phase code.

    Example::

        ds = theoretical_phase_diagram(np.logspace(-1, 1, 20), np.logspace(0, -2, 20))
        ds.phase.sel(feature_probability=0.01, method="nearest")   # all 2: superposition
    """
    configs = list(configurations(n_features, d_hidden).values())
    r = np.asarray(relative_importance, np.float64)
    p = np.asarray(feature_probability, np.float64)
    if r.ndim != 1 or p.ndim != 1:
        raise ValueError("relative_importance and feature_probability must be 1-D")
    P, R = np.meshgrid(p, r, indexing="ij")
    optima = [optimize(c, P, R, **options) for c in configs]
    losses = np.stack([o.loss for o in optima])  # (config, P, R)
    lowest = losses.min(axis=0)
    wins = losses <= lowest + tolerance * np.abs(lowest)
    winner = np.argmax(wins, axis=0)  # the first (simplest) within tolerance of the lowest
    codes = np.array([c.phase for c in configs])
    n_params = max(len(c.params) for c in configs)
    params = np.full(losses.shape + (n_params,), np.nan)
    for i, o in enumerate(optima):
        params[i, ..., : o.params.shape[-1]] = o.params
    W = np.stack([o.W for o in optima])
    b = np.stack([o.b for o in optima])
    pick = (winner[None, ..., None, None], winner[None, ..., None])
    W_best = np.take_along_axis(W, pick[0], axis=0)[0]
    b_best = np.take_along_axis(b, pick[1], axis=0)[0]
    grid = ("feature_probability", "relative_importance")
    return xr.Dataset(
        {
            "phase": (grid, np.asarray(classify_phase(W_best, b_best, threshold=threshold,
                                                      overlap=overlap))),
            "configuration_label": (grid, codes[winner]),
            "configuration_index": (grid, winner),
            "loss": (("configuration", *grid), losses),
            "params": (("configuration", *grid, "param"), params),
            "W": (("configuration", *grid, "feature", "hidden"), W),
            "b": (("configuration", *grid, "feature"), b),
            "configuration_phase": (("configuration",), codes),
        },
        coords={"feature_probability": p, "relative_importance": r,
                "configuration": [c.name for c in configs]},
        attrs={"phases": list(PHASES), "n_features": n_features, "d_hidden": d_hidden},
    )
