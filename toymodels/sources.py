"""Where an SAE's activations come from: the `data=` of `tm.sweep` for SAEs.

Three kinds, all feeding the same trainer (`toymodels.sae.train`):

- `GroundTruth`: Sharkey et al.'s synthetic activations with a known dictionary, generated inside
  the compiled step;
- `ToyActivations`: the hidden activations of trained toy models, generated inside the step from
  each toy model's own feature distribution; a toy result with grid dims trains one SAE per toy
  model, its dims renamed `toy_<dim>`;
- any iterable of (batch, d_in) arrays (or (input, target) pairs for a transcoder), or an object
  with `batches(batch_size, seed=...)` such as `toymodels.lm.ActivationStore`: `HostData`, read
  on the host and handed to the devices a segment at a time while the previous segment trains.

In-graph sources draw one stream per seed and step (`draw`), shared by every SAE with that seed,
and turn it into each SAE's batch (`batch`), so an SAE's data never depends on its neighbours.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from flax import nnx

from toymodels.config import (
    MAX_SEED,
    ToyModelConfig,
    TrainConfig,
    _check_float,
    _check_int,
    _fail,
)
from toymodels.data import features_from_uniform
from toymodels.grid import Axis
from toymodels.train import make_trainer

__all__ = ["GroundTruth", "HostData", "ToyActivations", "as_source"]

#: latent factors of GroundTruth's correlated features (a Gaussian copula of this rank).
CORRELATION_FACTORS = 16


def _matryoshka_tree() -> dict[str, Any]:
    # Nabeshima's toy: 3 parents (p 0.15), each with 3 exclusive children (0.2 each given the
    # parent, 0.4 none), then 8 independent features (p 0.05); ordered parent, its children, …
    parents, probs = [], []
    for _ in range(3):
        root = len(parents)
        parents += [-1, root, root, root]
        probs += [0.15, 0.2, 0.2, 0.2]
    parents += [-1] * 8
    probs += [0.05] * 8
    return dict(d_in=20, n_features=20, feature_parents=tuple(parents),
                feature_probabilities=tuple(probs), exclusive_children=True, orthogonal=True)


def _tree_64() -> dict[str, Any]:
    # A larger, three-level tree for studies: 4 roots (p 0.2) × 3 children (0.3 given the root)
    # × 2 grandchildren (0.3 given the child), exclusive siblings, and 24 independent features
    # (p 0.04): 64 features in 128 orthogonal dims.
    parents, probs = [], []
    for _ in range(4):
        root = len(parents)
        parents.append(-1)
        probs.append(0.2)
        for _ in range(3):
            child = len(parents)
            parents += [root, child, child]
            probs += [0.3, 0.3, 0.3]
    parents += [-1] * (64 - len(parents))
    probs += [0.04] * (64 - len(probs))
    return dict(d_in=128, n_features=64, feature_parents=tuple(parents),
                feature_probabilities=tuple(probs), exclusive_children=True, orthogonal=True)


#: GroundTruth's fields of feature trees and orthogonal directions (described only where set).
TREE_FIELDS = ("feature_parents", "feature_probabilities", "exclusive_children",
               "tie_parent_magnitude", "orthogonal")

#: GroundTruth.preset's named toys.
PRESETS: dict[str, dict[str, Any]] = {
    # Chanin et al.'s absorption toy: 4 orthogonal features in 50 dims, a parent (p 0.25) and
    # 3 children each with p 0.15 given the parent (independent of each other).
    "chanin_absorption": dict(d_in=50, n_features=4, feature_parents=(-1, 0, 0, 0),
                              feature_probabilities=(0.25, 0.15, 0.15, 0.15), orthogonal=True),
    "matryoshka_tree": _matryoshka_tree(),
    "tree_64": _tree_64(),
}


@dataclasses.dataclass(frozen=True)
class GroundTruth:
    """Synthetic activations with a known dictionary (Sharkey, Braun & Millidge 2022).

    x = Σ_i c_i d_i: `n_features` unit-norm directions d_i (Gaussian, drawn from `seed`) in
    `d_in` dims; feature i is active with probability p_i ∝ frequency_decay**i, scaled so that
    Σ p_i = mean_active; an active coefficient c_i ~ U[0, 1). One uniform u_i per (sample,
    feature) makes both: feature i fires when u_i < p_i, with c_i = u_i / p_i. A sample with no
    active feature gets the one closest to firing (smallest u_i / p_i) with a fresh U[0, 1)
    magnitude, so every sample has at least one.
    With `correlation` > 0 the activity is correlated through a Gaussian copula: u_i = Φ(z_i),
    z = √(1−ρ) ε + √ρ (F g) with a fixed random factor matrix F (unit-norm rows, 16 factors).
    With `d_out` set it yields (x, y) pairs, y = Σ_i c_i e_i over a second dictionary e (a
    transcoder's ground truth).

    **Feature trees** (`feature_parents` set; Chanin et al. 2024, Nabeshima 2024): feature i has
    parent `feature_parents[i]` (−1 for a root) and fires with probability
    `feature_probabilities[i]` — a root's marginal probability, a child's probability *given its
    parent fires*; a child never fires without its parent. Any number of levels. With
    `exclusive_children`, the children of one parent are mutually exclusive: one uniform per
    (sample, parent) picks at most one of them, child j with its probability (siblings' sum ≤ 1).
    With `tie_parent_magnitude`, an active child takes its parent's magnitude (so parent and
    child co-vary exactly); otherwise every magnitude is its own U[0, 1). Tree data keeps empty
    samples (no "closest feature" rule), as the published toys do; `mean_active`,
    `frequency_decay` and `correlation` do not apply. `orthogonal` draws orthonormal directions
    (QR of a Gaussian; needs d_in ≥ n_features) instead of random unit vectors, for trees or
    not. `GroundTruth.preset(name, seed=…)` builds the published toys.
    """

    d_in: int = 256
    n_features: int = 512
    mean_active: float = 5.0
    frequency_decay: float = 0.99
    seed: int = 0
    correlation: float = 0.0
    d_out: int | None = None
    #: the parent of each feature (−1: a root), or None for independent features
    feature_parents: tuple[int, ...] | None = None
    #: with feature_parents: each root's probability, each child's probability given its parent
    feature_probabilities: tuple[float, ...] | None = None
    #: with feature_parents: the children of one parent never fire together
    exclusive_children: bool = False
    #: with feature_parents: an active child's magnitude is its parent's
    tie_parent_magnitude: bool = False
    #: orthonormal true directions (d_in ≥ n_features) instead of random unit vectors
    orthogonal: bool = False

    on_host = False
    axes: tuple = ()

    def __post_init__(self):
        _check_int("d_in", self.d_in, 1)
        _check_int("n_features", self.n_features, 1)
        _check_int("seed", self.seed, 0, MAX_SEED)
        if self.d_out is not None:
            _check_int("d_out", self.d_out, 1)
        if self.orthogonal and self.d_in < self.n_features:
            _fail("orthogonal", f"False when d_in={self.d_in} < n_features={self.n_features} "
                  "(no more than d_in orthonormal directions)", self.orthogonal)
        if self.feature_parents is not None or self.feature_probabilities is not None:
            self._check_tree()
            return
        for name in ("exclusive_children", "tie_parent_magnitude"):
            if getattr(self, name):
                _fail(name, "False without feature_parents (it applies to feature trees)", True)
        _check_float("frequency_decay", self.frequency_decay, 0.0, 1.0, low_open=True)
        _check_float("mean_active", self.mean_active, 0.0, self.n_features, low_open=True)
        _check_float("correlation", self.correlation, 0.0, 1.0, high_open=True)
        p = self.probabilities
        if p.max() > 1.0:
            most = float(np.sum(self.frequency_decay ** np.arange(self.n_features)))
            _fail("mean_active", f"at most Σ_i frequency_decay**i = {most:.4g} (so that every "
                  "p_i ≤ 1)", self.mean_active)

    def _check_tree(self) -> None:
        n = self.n_features
        parents, probs = self.feature_parents, self.feature_probabilities
        if parents is None or probs is None:
            _fail("feature_parents" if parents is None else "feature_probabilities",
                  "given together with "
                  + ("feature_probabilities" if parents is None else "feature_parents"), None)
        for name, value in (("feature_parents", parents), ("feature_probabilities", probs)):
            if isinstance(value, (str, bytes)) or len(value) != n:
                _fail(name, f"a sequence of n_features={n} values", value)
        object.__setattr__(self, "feature_parents", tuple(int(q) for q in parents))
        object.__setattr__(self, "feature_probabilities", tuple(float(q) for q in probs))
        for i, q in enumerate(self.feature_parents):
            if not -1 <= q < n or q == i:
                _fail("feature_parents", f"indices in [-1, {n - 1}] other than the feature's own "
                      f"(feature {i})", parents)
        self._depths()  # refuses a cycle
        for i, q in enumerate(self.feature_probabilities):
            _check_float(f"feature_probabilities[{i}]", q, 0.0, 1.0, low_open=True)
        if self.exclusive_children:
            for parent, children in self._children().items():
                total = sum(self.feature_probabilities[c] for c in children)
                if total > 1 + 1e-9:
                    _fail("feature_probabilities", f"at most 1 summed over the exclusive children "
                          f"{children} of feature {parent}", round(total, 6))
        if self.correlation != 0.0:
            _fail("correlation", "0.0 for a feature tree (its structure is the correlation)",
                  self.correlation)
        expected = float(self.probabilities.sum())
        if expected > self.d_in:
            _fail("feature_probabilities", f"a tree whose expected L0 (Σ marginal probabilities "
                  f"= {expected:.4g}) is at most d_in={self.d_in}", probs)

    @property
    def is_tree(self) -> bool:
        return self.feature_parents is not None

    @property
    def parents(self) -> np.ndarray:
        """(n_features,) int: each feature's parent, −1 for a root (all −1 without a tree)."""
        if not self.is_tree:
            return np.full(self.n_features, -1, np.int64)
        return np.asarray(self.feature_parents, np.int64)

    def _children(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, q in enumerate(self.feature_parents):
            if q >= 0:
                out.setdefault(q, []).append(i)
        return out

    def _depths(self) -> np.ndarray:
        """(n_features,) each feature's depth in its tree (roots 0); a cycle is a ValueError."""
        depth = np.full(self.n_features, -1)
        for i in range(self.n_features):
            seen, j = [], i
            while depth[j] < 0 and self.feature_parents[j] >= 0:
                if j in seen:
                    _fail("feature_parents", "a forest (no feature its own ancestor)",
                          self.feature_parents)
                seen.append(j)
                j = self.feature_parents[j]
            base = depth[j] if depth[j] >= 0 else 0
            depth[j] = base
            for k, m in enumerate(reversed(seen)):
                depth[m] = base + k + 1
        return depth

    @property
    def probabilities(self) -> np.ndarray:
        """(n_features,) the marginal probability of each feature: p_i = mean_active · decay**i /
        Σ_j decay**j; for a tree, the product of the conditional probabilities up to the root."""
        if self.is_tree:
            p = np.asarray(self.feature_probabilities, np.float64)
            marginal = p.copy()
            for i in np.argsort(self._depths(), kind="stable"):
                if self.feature_parents[i] >= 0:
                    marginal[i] = p[i] * marginal[self.feature_parents[i]]
            return marginal
        w = self.frequency_decay ** np.arange(self.n_features, dtype=np.float64)
        return self.mean_active * w / w.sum()

    @classmethod
    def preset(cls, name: str, seed: int = 0) -> "GroundTruth":
        """A published toy with a feature hierarchy (`PRESETS`: chanin_absorption,
        matryoshka_tree, tree_64)."""
        if name not in PRESETS:
            _fail("name", f"one of {', '.join(map(repr, PRESETS))} (GroundTruth.preset)", name)
        return cls(seed=seed, **PRESETS[name])

    def _directions(self, stream: int, width: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, stream])
        d = rng.normal(size=(self.n_features, width))
        if self.orthogonal and width >= self.n_features:
            q, r = np.linalg.qr(d.T)  # (width, n) orthonormal columns; signs fixed by r
            return (q * np.sign(np.diag(r))).T.astype(np.float32)
        return (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)

    @functools.cached_property
    def dictionary(self) -> np.ndarray:
        """(n_features, d_in) the true features, unit-norm rows."""
        return self._directions(0, self.d_in)

    @functools.cached_property
    def output_dictionary(self) -> np.ndarray | None:
        """(n_features, d_out) the features' output directions (transcoder targets), or None."""
        return None if self.d_out is None else self._directions(1, self.d_out)

    @functools.cached_property
    def _factors(self) -> np.ndarray:
        f = np.random.default_rng([self.seed, 2]).normal(size=(CORRELATION_FACTORS, self.n_features))
        return (f / np.linalg.norm(f, axis=0, keepdims=True)).astype(np.float32)

    def coefficients(self, key: jax.Array, batch_size: int) -> jax.Array:
        """(batch, n_features) sparse coefficients c."""
        if self.is_tree:
            return self._tree_coefficients(key, batch_size)
        gate_key, magnitude_key, factor_key = jax.random.split(key, 3)
        p = jnp.asarray(self.probabilities, jnp.float32)
        shape = (batch_size, self.n_features)
        if self.correlation > 0:
            rho = self.correlation
            z = (math.sqrt(1 - rho) * jax.random.normal(gate_key, shape)
                 + math.sqrt(rho) * jax.random.normal(factor_key, (batch_size, CORRELATION_FACTORS))
                 @ jnp.asarray(self._factors))
            ratio = jax.scipy.stats.norm.cdf(z) / p
            magnitude = fallback = jax.random.uniform(magnitude_key, shape)
        else:
            # One uniform per (sample, feature) makes both gate and magnitude, as the toy data's
            # does: u < p_i fires, and given that, u / p_i ~ U[0, 1).
            ratio = jax.random.uniform(gate_key, shape) / p
            magnitude = ratio
            # the closest feature's u / p_i is ≥ 1: an empty sample draws its one magnitude anew
            fallback = jax.random.uniform(magnitude_key, (batch_size, 1))
        active = ratio < 1
        empty = ~jnp.any(active, axis=-1, keepdims=True)
        # the closest to firing by equality with the row's minimum: an argmin's (value, index)
        # reduction cost XLA's CPU backend 3× as much (an exact tie, at float32's 2⁻²³
        # resolution, would give an empty sample both features)
        closest = (ratio == jnp.min(ratio, axis=-1, keepdims=True)) & empty
        return jnp.where(active, magnitude, jnp.where(closest, fallback, 0.0))

    def _tree_coefficients(self, key: jax.Array, batch_size: int) -> jax.Array:
        """Roots fire with their probability, then each level's children given their parents
        (one uniform per (sample, parent) picks among exclusive children)."""
        gate_key, pick_key, magnitude_key = jax.random.split(key, 3)
        n = self.n_features
        shape = (batch_size, n)
        p = jnp.asarray(self.feature_probabilities, jnp.float32)
        parents = np.asarray(self.feature_parents)
        has_parent = parents >= 0
        own = jnp.asarray(np.where(has_parent, parents, np.arange(n)))
        fires = jax.random.uniform(gate_key, shape) < p
        if self.exclusive_children:
            # child j fires when its parent's pick uniform falls in [lo_j, lo_j + p_j)
            lo = np.zeros(n)
            for children in self._children().values():
                lo[children] = np.concatenate([[0.0], np.cumsum(
                    [self.feature_probabilities[c] for c in children])[:-1]])
            pick = jax.random.uniform(pick_key, shape)[:, own]
            fires = jnp.where(has_parent, (pick >= lo) & (pick < lo + p), fires)
        magnitude = jax.random.uniform(magnitude_key, shape)
        active = fires & ~has_parent
        for _ in range(int(self._depths().max())):  # one level further down each pass
            active = fires & (~has_parent | active[:, own])
            if self.tie_parent_magnitude:
                magnitude = jnp.where(has_parent, magnitude[:, own], magnitude)
        return jnp.where(active, magnitude, 0.0)

    def sample(self, key: jax.Array, batch_size: int):
        """A batch: x (batch, d_in), or (x, y) with y (batch, d_out) when d_out is set."""
        c = self.coefficients(key, batch_size)
        x = c @ jnp.asarray(self.dictionary)
        return x if self.d_out is None else (x, c @ jnp.asarray(self.output_dictionary))

    # The in-graph source protocol (toymodels.trainable.Source).
    def draw(self, key, batch_size: int):
        return self.sample(key, batch_size)

    def batch(self, raw, swept):  # noqa: ARG002 (the same data for every SAE of a seed)
        return raw

    def point_values(self, index: int) -> tuple:  # noqa: ARG002
        return ()

    def describe(self) -> dict[str, Any]:
        # The tree fields only where set, so that sweeps described before trees existed resume.
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name not in TREE_FIELDS or getattr(self, f.name) != f.default}
        return {"kind": "ground_truth", **fields}

    def variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """The true dictionary (and output dictionary, and a tree's parents), stored beside the
        trained SAEs."""
        out = {"dictionary": (("feature", "d_in"), self.dictionary)}
        if self.is_tree:
            out["parents"] = (("feature",), self.parents)
        if self.d_out is not None:
            out["output_dictionary"] = (("feature", "d_out"), self.output_dictionary)
        return out


class ToyActivations:
    """The hidden activations of trained toy models, as an SAE's training data.

    `results` is a toy sweep's Dataset (from `tm.sweep` or `tm.load_results`). With no grid dims
    left (say `results.isel(seed=0)`) it is one toy model; with grid dims, every toy model trains
    its own SAE and the SAE result's leading dims are the toy's dims, renamed `toy_<dim>`.
    The activations are made inside the compiled step: features drawn from the toy model's own
    distribution (its feature probabilities, correlations and sign), then its hidden layer
    (`ToyModel.hidden`: h = Wᵀ x for relu_output and linear, ReLU(Wᵀ x) for hidden_relu, and
    ReLU(W_inᵀ x) for abs).
    """

    on_host = False

    def __init__(self, results: xr.Dataset):
        if not isinstance(results, xr.Dataset) or "model" not in results.attrs:
            _fail("results", "a toy sweep's Dataset (tm.sweep or tm.load_results of a "
                  "ToyModelConfig)", type(results).__name__)
        model = json.loads(results.attrs["model"])
        self.model = ToyModelConfig(**{k: tuple(v) if isinstance(v, list) else v
                                       for k, v in model.items()})
        if self.model.is_jermyn:
            _fail("results", "a sweep of a TMS kind (relu_output, linear, hidden_relu, abs); the "
                  "jermyn kinds' activations are not a source yet", self.model.kind)
        self._trainer = make_trainer(self.model, TrainConfig())
        names = list(self._trainer.module.param_dims)
        missing = [n for n in names if n not in results]
        if missing:
            _fail("results", f"a toy sweep result with the parameters {names}",
                  f"a Dataset without {missing}")
        self.results = results
        self.toy_dims = tuple(results["loss"].dims)
        stacked = results[names].stack(__toy__=self.toy_dims) if self.toy_dims else results[names]
        n = int(np.prod([results.sizes[d] for d in self.toy_dims], dtype=np.int64))
        self._params = {k: _points_first(stacked[k], n) for k in names}
        self._probability = self._probabilities(results, n)
        self.axes = tuple(Axis(f"toy_{d}", _axis_values(results, d)) for d in self.toy_dims)
        self.d_in = self.model.d_hidden
        self.d_out = None

    def _probabilities(self, results: xr.Dataset, n: int) -> np.ndarray:
        """(toy point, feature) each toy model's feature probabilities (power law included)."""
        if "feature_probability" not in results.variables and (
                "frequency_exponent" not in results.variables):
            return np.broadcast_to(self.model.probabilities(), (n, self.model.n_features))
        if self.model.frequency_exponent is not None or "frequency_exponent" in results.variables:
            return self._power_law_probabilities(results, n)
        p = results["feature_probability"]
        if "feature" not in p.dims:
            p = p.expand_dims(feature=self.model.n_features, axis=-1)
        grid = [d for d in self.toy_dims]
        p = p.broadcast_like(results["loss"]).transpose(*grid, "feature")
        return np.asarray(p.values, np.float32).reshape(n, self.model.n_features)

    def _power_law_probabilities(self, results: xr.Dataset, n: int) -> np.ndarray:
        """(toy point, feature) from each point's (feature_probability, frequency_exponent)."""
        values = {}
        for name in ("feature_probability", "frequency_exponent"):
            if name in results.variables:
                values[name] = np.asarray(results[name].broadcast_like(results["loss"])
                                          .transpose(*self.toy_dims).values).reshape(n)
        points = [dataclasses.replace(self.model, **{k: float(v[i]) for k, v in values.items()})
                  for i in range(n)]
        return np.stack([m.probabilities() for m in points]).astype(np.float32)

    @property
    def dictionary(self) -> xr.DataArray:
        """The toy models' feature embeddings (W, or W_in for abs), toy dims renamed toy_<dim>."""
        W = self.results[self._trainer.module.embedding]
        return W.rename({d: f"toy_{d}" for d in self.toy_dims})

    def point_values(self, index: int) -> dict[str, Any]:
        return {"params": {k: v[index] for k, v in self._params.items()},
                "feature_probability": self._probability[index]}

    def variables(self) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Each toy model's feature embeddings, as `dictionary` (toy dims, feature, d_in)."""
        W = self.dictionary
        return {"dictionary": ((*W.dims[:-1], "d_in"), np.asarray(W.values, np.float32))}

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha1()
        for name in sorted(self._params):
            digest.update(np.ascontiguousarray(self._params[name], np.float32).tobytes())
        return {"kind": "toy_activations", "model": json.loads(self.results.attrs["model"]),
                "toy_dims": list(self.toy_dims), "weights_sha1": digest.hexdigest()}

    # The in-graph source protocol (toymodels.trainable.Source).
    def draw(self, key, batch_size: int) -> jax.Array:
        return self._trainer.source.draw(key, batch_size)

    def batch(self, u: jax.Array, swept) -> jax.Array:
        """(batch, d_hidden) the hidden activations of this SAE's toy model."""
        data = swept.data
        x = features_from_uniform(u, data["feature_probability"], self._trainer.source.layout,
                                  self._trainer.source.signed)
        toy = nnx.merge(self._trainer.graphdef, data["params"])
        return toy.hidden(x).T


def _points_first(v: xr.DataArray, n: int) -> np.ndarray:
    """A stacked parameter as (toy point, ...) float32."""
    if "__toy__" in v.dims:
        v = v.transpose("__toy__", ...)
        return np.asarray(v.values, np.float32)
    return np.asarray(v.values, np.float32).reshape((n,) + v.shape)


def _axis_values(results: xr.Dataset, dim: str) -> np.ndarray:
    """The coordinate of a toy dim (an integer index where it has none or a vector one)."""
    if dim in results.coords and results[dim].ndim == 1:
        return np.asarray(results[dim].values)
    return np.arange(results.sizes[dim])


class HostData:
    """Batches read on the host (an activation store, a list of arrays, a generator …).

    `data` is an object with `batches(batch_size, seed=...)` (an endless, deterministic stream:
    `toymodels.lm.ActivationStore`), or any iterable of arrays (batch, d_in) — of (input, target)
    pairs for a transcoder — in any batch size: rows are regrouped into batches of the training
    batch size. A re-iterable (a list, a store) is read again from the start for every chunk of
    a sweep and cycled when it runs out; a one-shot iterator can feed a single chunk, once.
    Every SAE of a sweep sees the same batches; its seed sets only its initialisation.
    """

    on_host = True
    axes: tuple = ()

    def __init__(self, data: Any, d_in: int, d_out: int | None = None, seed: int = 0):
        self.data, self.d_out, self.seed = data, d_out, seed
        self._one_shot = not hasattr(data, "batches") and iter(data) is data
        self._first: Any = None
        first = self._peek()
        width = lambda a: np.shape(a)[-1] if np.ndim(a) == 2 else None  # noqa: E731
        if d_out is None:
            if isinstance(first, tuple) or width(first) != d_in:
                _fail("d_in", "the width of the data's (batch, d_in) arrays",
                      f"d_in={d_in} for data of shape {_shapes(first)}")
        else:
            if not (isinstance(first, tuple) and len(first) == 2):
                _fail("data", "(input, target) pairs for a transcoder (d_out set)", _shapes(first))
            if width(first[0]) != d_in:
                _fail("d_in", "the width of the data's inputs", f"d_in={d_in} for inputs of shape "
                      f"{np.shape(first[0])}")
            if width(first[1]) != d_out:
                _fail("d_out", "the width of the data's targets", f"d_out={d_out} for targets "
                      f"of shape {np.shape(first[1])}")
        self.d_in = d_in
        self._first_sha1 = hashlib.sha1(b"".join(
            np.ascontiguousarray(a, np.float32).tobytes()
            for a in (first if isinstance(first, tuple) else (first,)))).hexdigest()

    def _items(self, batch_size: int) -> Iterator[Any]:
        if hasattr(self.data, "batches"):
            return iter(self.data.batches(batch_size, seed=self.seed))
        return iter(self.data)

    def _peek(self) -> Any:
        if hasattr(self.data, "batches"):
            return next(iter(self.data.batches(1, seed=self.seed)))
        items = iter(self.data)
        first = next(items, None)
        if first is None:
            _fail("data", "a non-empty iterable of arrays", "an empty one")
        if self._one_shot:
            self._first = itertools.chain([first], items)
        return first

    def bytes_per_batch(self, batch_size: int) -> int:
        return 4 * batch_size * (self.d_in + (self.d_out or 0))

    def check_reiterable(self, n_passes: int) -> None:
        if self._one_shot and n_passes > 1:
            _fail("data", f"re-iterable (a list, a store) for a sweep of {n_passes} chunks; or "
                  "pass chunk_size ≥ the number of grid points", "a one-shot iterator")

    def _pass(self, batch_size: int) -> Iterator[Any]:
        """The items of one pass over the data, from its start."""
        if not self._one_shot:
            return self._items(batch_size)
        if self._first is None:
            _fail("data", "long enough for the training run, or re-iterable",
                  "a one-shot iterator that ran out")
        items, self._first = self._first, None
        return items

    def batches(self, batch_size: int) -> Iterator[Any]:
        """Endless batches of exactly batch_size rows, float32; cycles a re-iterable."""
        pair = self.d_out is not None
        pending: list = []
        have = 0
        while True:
            empty = True
            for item in self._pass(batch_size):
                empty = False
                parts = tuple(np.asarray(a, np.float32) for a in (item if pair else (item,)))
                pending.append(parts)
                have += len(parts[0])
                while have >= batch_size:
                    out, pending, have = _take(pending, batch_size)
                    yield out if pair else out[0]
            if empty:
                _fail("data", "a non-empty iterable of arrays", "an empty pass")

    def segments(self, batch_size: int, steps: int) -> Iterator[Any]:
        """Each segment's batches stacked: (steps, batch_size, d) arrays (or pairs of them)."""
        batches = self.batches(batch_size)
        while True:
            chunk = list(itertools.islice(batches, steps))
            yield jax.tree.map(lambda *a: np.stack(a), *chunk)

    def point_values(self, index: int) -> tuple:  # noqa: ARG002
        return ()

    def variables(self) -> dict:
        return {}

    def describe(self) -> dict[str, Any]:
        if hasattr(self.data, "describe"):
            return {"kind": "host", **self.data.describe(), "seed": self.seed}
        return {"kind": "host", "type": type(self.data).__name__,
                "first_batch_sha1": self._first_sha1}


def _take(pending: list, n: int) -> tuple[tuple, list, int]:
    """The first n rows of a list of row blocks, and what is left."""
    parts = [np.concatenate(column) for column in zip(*pending)]
    out = tuple(p[:n] for p in parts)
    rest = tuple(p[n:] for p in parts)
    left = len(rest[0])
    return out, ([rest] if left else []), left


def _shapes(item: Any) -> Any:
    return tuple(np.shape(a) for a in item) if isinstance(item, tuple) else np.shape(item)


def as_source(data: Any, sae, train: TrainConfig):  # noqa: ARG001
    """The source of an SAE sweep's data, checked against the SAE's widths (ValueError if not)."""
    if isinstance(data, (GroundTruth, ToyActivations)):
        if data.d_in != sae.d_in:
            _fail("d_in", f"the data's width {data.d_in}", sae.d_in)
        if (data.d_out is None) != (sae.d_out is None):
            want = "(input, target) pairs for a transcoder" if sae.is_transcoder else \
                "plain activations for an SAE (d_out=None)"
            _fail("data", want, f"{type(data).__name__} with d_out={data.d_out}")
        if sae.d_out is not None and data.d_out != sae.d_out:
            _fail("d_out", f"the data's target width {data.d_out}", sae.d_out)
        return data
    return HostData(data, sae.d_in, sae.d_out)
