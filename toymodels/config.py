"""The two configs a sweep is built from, and the rules every value must obey.

Each field is either *static* (it fixes shapes or the compiled program: `n_features`, `kind`,
`steps` …) or *swept* (a value the compiled program takes as an array, so one compilation serves
every grid point: `feature_probability`, `importance_decay`, `lr`, `seed` …). Fields say which they
are in their metadata; `sweep` accepts only swept fields in its grid. Every value is checked in
`__post_init__`, so a bad value fails with a `ValueError` naming the field and the allowed range
before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

ModelKind = Literal["relu_output", "linear", "hidden_relu", "abs"]
Optimizer = Literal["adamw", "adam", "sgd"]
Schedule = Literal["constant", "warmup_cosine", "warmup_decay"]

# Seeds become uint32 PRNG keys inside the compiled program.
MAX_SEED = 2**31 - 1


def swept(default: Any, doc: str) -> Any:
    """A field whose value may vary over a sweep's grid."""
    return field(default=default, metadata={"swept": True, "doc": doc})


def static(default: Any, doc: str) -> Any:
    """A field that fixes shapes or the compiled program; one value per sweep."""
    return field(default=default, metadata={"swept": False, "doc": doc})


def _fail(name: str, allowed: str, value: Any) -> None:
    raise ValueError(f"{name} must be {allowed}; got {value!r}")


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        rng = f"an integer ≥ {low}" if high is None else f"an integer in [{low}, {high}]"
        _fail(name, rng, value)


def _check_float(name: str, value: Any, low: float, high: float, *, low_open=False, high_open=False):
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        _fail(name, f"a finite number in {lo}{low}, {high}{hi}", value)


def _check_optional_float(name: str, value: Any, low: float, high: float, **kw) -> None:
    if value is not None:
        _check_float(name, value, low, high, **kw)


def _check_literal(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        _fail(name, f"one of {', '.join(map(repr, choices))}", value)


def _as_vector(name: str, value: Any, n: int) -> tuple[float, ...]:
    """A length-`n` tuple of floats from a sequence or array; errors name the field."""
    arr = np.asarray(value, dtype=float) if not isinstance(value, str) else None
    if arr is None or arr.shape != (n,):
        _fail(name, f"a sequence of n_features={n} numbers", value)
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class ToyModelConfig:
    """A toy model of superposition and the synthetic data it is trained on.

    Every feature i is independently non-zero with probability `feature_probability` (1 − sparsity
    S); when non-zero its magnitude is uniform on [0, 1) (on [−1, 1) for `kind="abs"`). Its
    squared error is weighted by importance I_i = importance_decay**i, unless `importance` gives
    the vector explicitly.
    """

    n_features: int = static(5, "number of input features n (≥ 1)")
    d_hidden: int = static(2, "width m of the bottleneck (≥ 1)")
    kind: ModelKind = static(
        "relu_output",
        "relu_output: ReLU(x W Wᵀ + b); linear: x W Wᵀ + b; hidden_relu: ReLU(ReLU(x W) Wᵀ + b); "
        "abs: ReLU(ReLU(x W_in) W_out + b) trained to output |x|",
    )
    n_correlated_pairs: int = static(
        0, "features (0,1), (2,3) … of the first pairs fire together or not at all"
    )
    n_anticorrelated_pairs: int = static(
        0, "the next pairs never fire together (needs feature_probability ≤ 0.5 on them)"
    )
    feature_probability: float | tuple[float, ...] = swept(
        1.0, "probability in (0, 1] that a feature is non-zero; a number, or one per feature"
    )
    importance_decay: float = swept(1.0, "I_i = importance_decay**i; any positive number")
    importance: tuple[float, ...] | None = swept(
        None, "explicit importance vector (n_features non-negative numbers); overrides the decay"
    )
    extra_importance: float | None = swept(
        None, "if set, the importance of the last feature (the 'extra' feature of phase diagrams)"
    )
    init_std: float | None = swept(
        None, "std of the normal init of the weights; None: per-model Xavier-normal"
    )

    #: how a toy model trains where TrainConfig leaves it to the recipe: the TMS notebook's
    #: torch.optim.AdamW(lr=1e-3), weight decay 0.01 on every parameter, no gradient clipping.
    train_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw", "weight_decay": 0.01, "max_grad_norm": math.inf,
    }
    #: the key of this config in a sweep's stored description (results attrs, sweep.json).
    describe_as: ClassVar[str] = "model"
    #: swept fields whose grid values may be vectors, and the dim their entries run along.
    vector_fields: ClassVar[dict[str, str]] = {"importance": "feature", "feature_probability": "feature"}
    #: static fields a grid may still sweep: one compiled sweep per value (none for toy models).
    static_grid_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        _check_int("n_features", self.n_features, 1)
        _check_int("d_hidden", self.d_hidden, 1)
        _check_literal("kind", self.kind, ModelKind.__args__)
        _check_int("n_correlated_pairs", self.n_correlated_pairs, 0)
        _check_int("n_anticorrelated_pairs", self.n_anticorrelated_pairs, 0)
        paired = 2 * (self.n_correlated_pairs + self.n_anticorrelated_pairs)
        if paired > self.n_features:
            _fail(
                "n_correlated_pairs + n_anticorrelated_pairs",
                f"at most n_features/2 = {self.n_features // 2} pairs",
                (self.n_correlated_pairs, self.n_anticorrelated_pairs),
            )
        p = self.feature_probability
        if np.ndim(p) == 0:
            _check_float("feature_probability", p, 0.0, 1.0, low_open=True)
        else:
            p = _as_vector("feature_probability", p, self.n_features)
            for v in p:
                _check_float("feature_probability", v, 0.0, 1.0, low_open=True)
            object.__setattr__(self, "feature_probability", p)
        anti = slice(2 * self.n_correlated_pairs, paired)
        if np.max(self.probabilities()[anti], initial=0.0) > 0.5:
            _fail(
                "feature_probability",
                "≤ 0.5 on anticorrelated features (so that a pair never fires together)",
                self.feature_probability,
            )
        _check_float("importance_decay", self.importance_decay, 0.0, math.inf, low_open=True,
                     high_open=True)
        if self.importance is not None:
            vec = _as_vector("importance", self.importance, self.n_features)
            for v in vec:
                _check_float("importance", v, 0.0, math.inf, high_open=True)
            object.__setattr__(self, "importance", vec)
        if self.extra_importance is not None:
            _check_float("extra_importance", self.extra_importance, 0.0, math.inf, high_open=True)
        if self.init_std is not None:
            _check_float("init_std", self.init_std, 0.0, math.inf, high_open=True)

    def make_trainer(self, train: "TrainConfig", data: Any = None):
        """The toy-model trainer of the static part of (self, train); toy models make their data."""
        if data is not None:
            raise ValueError("data must be None for a toy model, which draws its own features; "
                             f"got {type(data).__name__}")
        from toymodels.train import make_trainer

        return make_trainer(self, train)

    def check_grid(self, grid: dict[str, Any]) -> None:
        """Checks of a grid that involve several fields (each value is checked on its own first)."""
        if "importance_decay" in grid and self.importance is not None and "importance" not in grid:
            raise ValueError("importance_decay is swept, but importance is set explicitly and would "
                             "override it; set importance=None")

    def probabilities(self) -> np.ndarray:
        """Per-feature probabilities, shape (n_features,)."""
        return np.broadcast_to(np.asarray(self.feature_probability, float), (self.n_features,))

    def importances(self) -> np.ndarray:
        """Per-feature importances, shape (n_features,)."""
        if self.importance is not None:
            imp = np.asarray(self.importance, float)
        else:
            imp = float(self.importance_decay) ** np.arange(self.n_features, dtype=float)
        if self.extra_importance is not None:
            imp = imp.copy()
            imp[-1] = self.extra_importance
        return imp

    def xavier_std(self) -> float:
        """Xavier-normal std of one model's (n_features, d_hidden) weight: √(2 / (n + m))."""
        return math.sqrt(2.0 / (self.n_features + self.d_hidden))


@dataclass(frozen=True)
class TrainConfig:
    """How every model of a sweep is trained.

    `optimizer`, `weight_decay` and `max_grad_norm` default to None: the recipe of what is
    trained (`ToyModelConfig.train_recipe`: the TMS notebook's AdamW with weight decay 0.01 and
    no clipping; `SAEConfig.train_recipe`: SAELens's Adam, no weight decay, gradients clipped to
    norm 1). `resolved(recipe)` fills them in; a sweep stores the resolved config.
    """

    steps: int = static(10_000, "optimizer steps (≥ 1)")
    batch_size: int = static(1024, "samples per step (≥ 1)")
    optimizer: Optimizer | None = static(
        None, "adamw (torch.optim.AdamW), adam, or sgd; None: the recipe of what is trained"
    )
    lr: float = swept(1e-3, "peak learning rate, > 0")
    weight_decay: float | None = swept(
        None, "decoupled weight decay of adamw on every parameter, ≥ 0 (torch's default 0.01); "
        "None: the recipe of what is trained"
    )
    max_grad_norm: float | None = static(
        None, "clip the gradient to this global norm, > 0 (inf: no clipping); None: the recipe"
    )
    b1: float = static(0.9, "Adam's β₁ in [0, 1)")
    b2: float = static(0.999, "Adam's β₂ in [0, 1)")
    eps: float = static(1e-8, "Adam's ε > 0")
    momentum: float = static(0.0, "SGD momentum in [0, 1)")
    schedule: Schedule = static(
        "constant", "constant; warmup_cosine: linear warm-up then cosine decay; warmup_decay "
        "(SAELens): linear warm-up, constant, then linear decay over the last decay_steps"
    )
    warmup_steps: int = static(0, "warm-up steps of warmup_cosine and warmup_decay, in [0, steps]")
    decay_steps: int = static(
        0, "final steps of warmup_decay over which the lr falls linearly to lr × final_lr_fraction; "
        "warmup_steps + decay_steps ≤ steps"
    )
    final_lr_fraction: float = static(
        0.0, "warmup_cosine and warmup_decay end at lr × final_lr_fraction, in [0, 1]"
    )
    log_every: int = static(100, "record the mean training loss every log_every steps; divides steps")
    snapshot_steps: tuple[int, ...] = static(
        (), "steps at which to keep a copy of the parameters; multiples of log_every in [0, steps]"
    )
    seed: int = swept(0, f"seed of the initialisation and the data stream, in [0, {MAX_SEED}]")

    def __post_init__(self):
        _check_int("steps", self.steps, 1)
        _check_int("batch_size", self.batch_size, 1)
        if self.optimizer is not None:
            _check_literal("optimizer", self.optimizer, Optimizer.__args__)
        _check_float("lr", self.lr, 0.0, math.inf, low_open=True, high_open=True)
        _check_optional_float("weight_decay", self.weight_decay, 0.0, math.inf, high_open=True)
        g = self.max_grad_norm
        if g is not None and not (isinstance(g, (int, float, np.number)) and not isinstance(g, bool)
                                  and g > 0):
            _fail("max_grad_norm", "a number > 0 (inf: no clipping)", g)
        _check_float("b1", self.b1, 0.0, 1.0, high_open=True)
        _check_float("b2", self.b2, 0.0, 1.0, high_open=True)
        _check_float("eps", self.eps, 0.0, math.inf, low_open=True, high_open=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_literal("schedule", self.schedule, Schedule.__args__)
        _check_int("warmup_steps", self.warmup_steps, 0, self.steps)
        _check_int("decay_steps", self.decay_steps, 0, self.steps - self.warmup_steps)
        _check_float("final_lr_fraction", self.final_lr_fraction, 0.0, 1.0)
        _check_int("log_every", self.log_every, 1, self.steps)
        if self.steps % self.log_every:
            _fail("log_every", f"a divisor of steps={self.steps}", self.log_every)
        if isinstance(self.snapshot_steps, (str, bytes)) or not isinstance(
            self.snapshot_steps, Sequence
        ):
            _fail("snapshot_steps", "a sequence of steps", self.snapshot_steps)
        for s in self.snapshot_steps:
            _check_int("snapshot_steps", s, 0, self.steps)
            if s % self.log_every:
                _fail("snapshot_steps", f"multiples of log_every={self.log_every}", s)
        object.__setattr__(self, "snapshot_steps", tuple(sorted({int(s) for s in self.snapshot_steps})))
        _check_int("seed", self.seed, 0, MAX_SEED)

    @property
    def log_steps(self) -> np.ndarray:
        """The step count at the end of each logged interval, shape (steps // log_every,)."""
        return np.arange(1, self.steps // self.log_every + 1) * self.log_every

    def resolved(self, recipe: dict[str, Any]) -> "TrainConfig":
        """A copy with every field left at None filled in from `recipe` (a `train_recipe`)."""
        fill = {k: v for k, v in recipe.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **fill) if fill else self


def field_docs(cls) -> dict[str, str]:
    """{field name: one-line doc} of a config class, for the README and error messages."""
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}


def swept_fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["swept"])


def static_fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata["swept"])
