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

ModelKind = Literal[
    "relu_output", "linear", "hidden_relu", "abs",
    "jermyn_autoencoder", "jermyn_random_projection", "jermyn_abs",
]
Activation = Literal["relu", "gelu", "solu"]
Optimizer = Literal["adamw", "adam", "sgd", "lamb"]
Schedule = Literal["constant", "warmup_cosine", "warmup_decay", "cosine_annealing"]

#: Jermyn, Schiefer & Hubinger's (2022) model family: features read through a fixed random
#: embedding, Linear(m → k, bias) → activation → Linear(k → out, no bias). The suffix is the task.
JERMYN_KINDS = ("jermyn_autoencoder", "jermyn_random_projection", "jermyn_abs")

#: each optimizer's default ε (torch.optim.Adam/AdamW: 1e-8; torch_optimizer.Lamb: 1e-6).
OPTIMIZER_EPS = {"adamw": 1e-8, "adam": 1e-8, "lamb": 1e-6}

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
    S), or with power-law frequencies p_i of mean `feature_probability` when `frequency_exponent`
    is set; when non-zero its magnitude is uniform on [0, 1) (on [−1, 1) for `kind="abs"`). Its
    squared error is weighted by importance I_i = importance_decay**i, unless `importance` gives
    the vector explicitly.

    The `jermyn_*` kinds are Jermyn, Schiefer & Hubinger's (2022) family, as their code
    (`model3.py`) has it: the features v are read through a fixed random embedding U (n_features ×
    d_embed, unit-norm rows, drawn from `embedding_seed`): x = v U; the model is
    out = σ(x W_in + b_in) W_out (Linear(m → k) with bias, σ = `activation`, Linear(k → out)
    without bias), k = `d_hidden` neurons; its loss is Σ (out − target)² / batch +
    l1_coefficient · Σ |σ(x W_in + b_in)| / batch — summed over outputs, where TMS averages. The
    task is the kind's suffix: `autoencoder` (target v), `random_projection` (target v U_out, a
    second embedding; out has d_embed entries), `abs` (v = v₁ − v₂ with v₁, v₂ drawn independently
    at half the probability, target |v|). Their training (LAMB, no weight decay) is the recipe;
    their cycling schedule is `TrainConfig(schedule="cosine_annealing")`.
    """

    n_features: int = static(5, "number of input features n (≥ 1)")
    d_hidden: int = static(
        2, "width m of the bottleneck (≥ 1; the jermyn kinds' k); a grid key: one compiled "
        "sub-sweep per value, narrower models padded with zero columns along `hidden`"
    )
    kind: ModelKind = static(
        "relu_output",
        "relu_output: ReLU(x W Wᵀ + b); linear: x W Wᵀ + b; hidden_relu: ReLU(ReLU(x W) Wᵀ + b); "
        "abs: ReLU(ReLU(x W_in) W_out + b) trained to output |x|; jermyn_autoencoder, "
        "jermyn_random_projection, jermyn_abs: σ(v U W_in + b_in) W_out, Jermyn et al.'s tasks",
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
        None, "std of the normal init of the weights; None: per-model Xavier-normal (must be None "
        "for the jermyn kinds, which initialise as torch's nn.Linear)"
    )
    frequency_exponent: float | None = swept(
        None, "power-law feature frequencies p_i = min(1, ε n i^−a / Σ_j j^−a), i = 1 … n, of mean "
        "ε = feature_probability (Jermyn et al.'s a = 1.1), a finite a ≥ 0; None: every p_i = ε"
    )
    d_embed: int | None = static(
        None, "jermyn kinds: width m of the fixed random embedding, in [1, n_features]; "
        "None for the other kinds"
    )
    activation: Activation = static(
        "relu", "jermyn kinds: the hidden nonlinearity: relu, gelu (exact erf, torch's nn.GELU) or "
        "solu (x·exp(x), as their code); must be relu for the other kinds"
    )
    embedding_seed: int = static(
        0, f"jermyn kinds: seed of the fixed random embedding(s), in [0, {MAX_SEED}]; the same "
        "embedding for every grid point"
    )
    l1_coefficient: float = swept(
        0.0, "jermyn kinds: weight λ of the L1 penalty λ Σ_k |h_k| / batch on the hidden "
        "activations (their reg), ≥ 0"
    )
    init_bias: float = swept(
        0.0, "jermyn kinds: added to every hidden bias at initialisation (their init_bias)"
    )
    bias_decay: float = swept(
        0.0, "jermyn kinds: b_in ← b_in (1 − bias_decay · lr) after each step of the first half of "
        "training (their decay; lr the peak rate), ≥ 0"
    )
    dataset_size: int | None = static(
        None, "T: train on a fixed dataset of T ≥ 1 samples, drawn once per seed, full batch unless "
        "TrainConfig.batch_size sets minibatches (Henighan et al. 2023); None: a fresh batch every "
        "step (TMS). A grid key: one compiled sub-sweep per value"
    )
    test_size: int = static(
        10_000, "with a dataset_size: the fresh samples (one fixed set per seed) that test_loss is "
        "measured on at every log point, ≥ 1"
    )
    unit_norm_inputs: bool = static(
        False, "scale every sample x to unit norm (Henighan et al.'s preprocessing; an all-zero "
        "sample stays 0); the target is the scaled x. TMS kinds only"
    )

    #: how a TMS toy model trains where TrainConfig leaves it to the recipe: the TMS notebook's
    #: torch.optim.AdamW(lr=1e-3), weight decay 0.01 on every parameter, no gradient clipping.
    tms_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adamw", "weight_decay": 0.01, "max_grad_norm": math.inf,
    }
    #: the jermyn kinds' recipe: their torch_optimizer.Lamb(lr), no weight decay, no clipping.
    jermyn_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "lamb", "weight_decay": 0.0, "max_grad_norm": math.inf,
    }
    #: the key of this config in a sweep's stored description (results attrs, sweep.json).
    describe_as: ClassVar[str] = "model"
    #: swept fields whose grid values may be vectors, and the dim their entries run along.
    vector_fields: ClassVar[dict[str, str]] = {"importance": "feature", "feature_probability": "feature"}
    renamed_fields: ClassVar[dict[str, str]] = {}  # {earlier name: current name}: none yet
    @property
    def train_recipe(self) -> dict[str, Any]:
        """How this kind trains where TrainConfig leaves it to the recipe (`TrainConfig.resolved`):
        its optimizer, and batches of DEFAULT_BATCH_SIZE, or full batch on a finite dataset."""
        recipe = self.jermyn_recipe if self.is_jermyn else self.tms_recipe
        return recipe | {"batch_size": self.dataset_size or DEFAULT_BATCH_SIZE}

    @property
    def static_grid_fields(self) -> tuple[str, ...]:
        """Static fields a grid may still sweep, one compiled sweep per value: `dataset_size` and
        the width `d_hidden` (m, or the jermyn kinds' k)."""
        return ("dataset_size", "d_hidden")

    @property
    def is_jermyn(self) -> bool:
        """One of Jermyn et al.'s kinds (an embedded input, a biased hidden layer)."""
        return self.kind in JERMYN_KINDS

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
        if self.frequency_exponent is not None:
            _check_float("frequency_exponent", self.frequency_exponent, 0.0, math.inf,
                         high_open=True)
            if np.ndim(self.feature_probability) != 0:
                _fail("feature_probability", "a single number (the mean ε of the power law) when "
                      "frequency_exponent is set", self.feature_probability)
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
        if self.dataset_size is not None:
            _check_int("dataset_size", self.dataset_size, 1)
        _check_int("test_size", self.test_size, 1)
        if not isinstance(self.unit_norm_inputs, (bool, np.bool_)):
            _fail("unit_norm_inputs", "True or False", self.unit_norm_inputs)
        self._check_jermyn_fields()

    def _check_jermyn_fields(self) -> None:
        """The fields that only the jermyn kinds (or only the TMS kinds) take."""
        _check_literal("activation", self.activation, Activation.__args__)
        _check_int("embedding_seed", self.embedding_seed, 0, MAX_SEED)
        _check_float("l1_coefficient", self.l1_coefficient, 0.0, math.inf, high_open=True)
        _check_float("init_bias", self.init_bias, -math.inf, math.inf)
        _check_float("bias_decay", self.bias_decay, 0.0, math.inf, high_open=True)
        if self.is_jermyn:
            if self.d_embed is None:
                _fail("d_embed", f"set for kind={self.kind!r}: an integer in [1, n_features="
                      f"{self.n_features}]", None)
            _check_int("d_embed", self.d_embed, 1, self.n_features)
            tms_only = {"importance_decay": 1.0, "importance": None, "extra_importance": None,
                        "init_std": None, "unit_norm_inputs": False}
            for name, default in tms_only.items():
                if getattr(self, name) != default:
                    _fail(name, f"{default!r} for kind={self.kind!r} (the jermyn loss has no "
                          "importance; their init is torch's nn.Linear; their inputs are not "
                          "rescaled)", getattr(self, name))
        else:
            jermyn_only = {"d_embed": None, "activation": "relu", "embedding_seed": 0,
                           "l1_coefficient": 0.0, "init_bias": 0.0, "bias_decay": 0.0}
            for name, default in jermyn_only.items():
                if getattr(self, name) != default:
                    _fail(name, f"{default!r} for kind={self.kind!r} (it applies to the jermyn "
                          f"kinds: {', '.join(JERMYN_KINDS)})", getattr(self, name))

    def check_grid(self, grid: dict[str, Any]) -> None:
        """Checks of a grid that involve several fields (each value is checked on its own first)."""
        if "importance_decay" in grid and self.importance is not None and "importance" not in grid:
            raise ValueError("importance_decay is swept, but importance is set explicitly and would "
                             "override it; set importance=None")

    def probabilities(self) -> np.ndarray:
        """Per-feature probabilities, shape (n_features,): ε, one per feature, or the power law."""
        if self.frequency_exponent is not None:
            from toymodels.data import power_law_probabilities

            return power_law_probabilities(self.n_features, float(self.feature_probability),
                                           self.frequency_exponent)
        return np.broadcast_to(np.asarray(self.feature_probability, float), (self.n_features,))

    def draw_probabilities(self) -> np.ndarray:
        """(n_features,) the probability of each feature in one draw of the data.

        `probabilities()`, except for jermyn_abs, whose v = v₁ − v₂ takes two draws, each at half
        the mean: as their code, which calls its sampler with ε/2 (the power law is rescaled to
        ε/2 and then clipped at 1).
        """
        if self.kind != "jermyn_abs":
            return self.probabilities()
        eps = np.asarray(self.feature_probability, float) / 2
        return dataclasses.replace(self, kind="jermyn_autoencoder",
                                   feature_probability=eps.tolist() if eps.ndim else float(eps)
                                   ).probabilities()

    def embeddings(self) -> np.ndarray:
        """The jermyn kinds' fixed embeddings, (1, n_features, d_embed) — (2, …) for
        jermyn_random_projection: the input's U, then the target's U_out (`random_embeddings`)."""
        if not self.is_jermyn:
            raise ValueError(f"kind={self.kind!r} has no embedding; only the jermyn kinds do")
        from toymodels.data import random_embeddings

        count = 2 if self.kind == "jermyn_random_projection" else 1
        return random_embeddings(self.n_features, self.d_embed, self.embedding_seed, count)

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
    no clipping, or for the jermyn kinds their LAMB without weight decay; `SAEConfig.train_recipe`:
    SAELens's Adam, no weight decay, gradients clipped to norm 1). `eps` defaults to None: the
    optimizer's own default. `resolved(recipe)` fills them in; a sweep stores the resolved config.
    """

    steps: int = static(10_000, "optimizer steps (≥ 1)")
    batch_size: int | None = static(
        None, "samples per step (≥ 1); on a finite dataset, the minibatch (≤ dataset_size, a fresh "
        "permutation per epoch); None: the recipe: 1024, or the whole dataset (full batch)"
    )
    optimizer: Optimizer | None = static(
        None, "adamw (torch.optim.AdamW), adam, sgd, or lamb (torch_optimizer.Lamb, as Jermyn et "
        "al.); None: the recipe of what is trained (jermyn kinds: lamb)"
    )
    lr: float = swept(1e-3, "peak learning rate, > 0")
    weight_decay: float | None = swept(
        None, "decoupled weight decay of adamw on every parameter, ≥ 0 (torch's default 0.01), or "
        "lamb's (added to its step before the trust ratio); None: the recipe of what is trained "
        "(jermyn kinds: 0)"
    )
    max_grad_norm: float | None = static(
        None, "clip the gradient to this global norm, > 0 (inf: no clipping); None: the recipe"
    )
    b1: float = static(0.9, "Adam's and LAMB's β₁ in [0, 1)")
    b2: float = static(0.999, "Adam's and LAMB's β₂ in [0, 1)")
    eps: float | None = static(
        None, "Adam's and LAMB's ε > 0; None: the optimizer's default (1e-8 for adam and adamw, "
        "torch's; 1e-6 for lamb, torch_optimizer's)"
    )
    momentum: float = static(0.0, "SGD momentum in [0, 1)")
    schedule: Schedule = static(
        "constant", "constant; warmup_cosine: linear warm-up then cosine decay; warmup_decay "
        "(SAELens): linear warm-up, constant, then linear decay over the last decay_steps; "
        "cosine_annealing (torch's CosineAnnealingLR, as Jermyn et al.): "
        "lr_f + (lr − lr_f)(1 + cos(π t / annealing_steps))/2, which cycles with period "
        "2·annealing_steps"
    )
    warmup_steps: int = static(0, "warm-up steps of warmup_cosine and warmup_decay, in [0, steps]")
    decay_steps: int = static(
        0, "final steps of warmup_decay over which the lr falls linearly to lr × final_lr_fraction; "
        "warmup_steps + decay_steps ≤ steps"
    )
    final_lr_fraction: float = static(
        0.0, "warmup_cosine and warmup_decay end at lr × final_lr_fraction, in [0, 1]; "
        "cosine_annealing's minimum lr_f = lr × final_lr_fraction (torch's eta_min)"
    )
    annealing_steps: int = static(
        512, "T_max of cosine_annealing: steps from lr down to its minimum (Jermyn et al.: 2⁹), ≥ 1"
    )
    log_every: int | None = static(
        None, "record the mean training loss every log_every steps, a divisor of steps; None: "
        "100 where it divides steps, else the largest divisor of steps below 100 (stored resolved)"
    )
    snapshot_steps: tuple[int, ...] = static(
        (), "steps at which to keep a copy of the parameters; multiples of log_every in [0, steps]"
    )
    seed: int = swept(0, f"seed of the initialisation and the data stream, in [0, {MAX_SEED}]")

    def __post_init__(self):
        _check_int("steps", self.steps, 1)
        if self.batch_size is not None:
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
        if self.eps is not None:
            _check_float("eps", self.eps, 0.0, math.inf, low_open=True, high_open=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_literal("schedule", self.schedule, Schedule.__args__)
        _check_int("warmup_steps", self.warmup_steps, 0, self.steps)
        _check_int("decay_steps", self.decay_steps, 0, self.steps - self.warmup_steps)
        _check_float("final_lr_fraction", self.final_lr_fraction, 0.0, 1.0)
        _check_int("annealing_steps", self.annealing_steps, 1)
        if self.log_every is None:
            object.__setattr__(self, "log_every", default_log_every(self.steps))
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

    @classmethod
    def henighan2023(cls, steps: int = 50_000, **overrides) -> "TrainConfig":
        """Henighan et al. (2023)'s training on a finite dataset: AdamW, lr 1e-3 reached by a
        linear warm-up over 2,500 steps (or over `steps` when shorter), then cosine decay to 0,
        weight decay 1e-2, full batch; 50,000 steps in the paper."""
        base = dict(steps=steps, optimizer="adamw", lr=1e-3, weight_decay=1e-2,
                    schedule="warmup_cosine", warmup_steps=min(2_500, steps))
        return cls(**(base | overrides))

    def resolved(self, recipe: dict[str, Any]) -> "TrainConfig":
        """A copy with every field left at None filled in from `recipe` (a `train_recipe`), and
        `eps` from the optimizer's own default."""
        fill = {k: v for k, v in recipe.items() if getattr(self, k) is None}
        if self.eps is None:
            optimizer = fill.get("optimizer", self.optimizer)
            fill["eps"] = OPTIMIZER_EPS.get(optimizer, 1e-8)
        return dataclasses.replace(self, **fill) if fill else self


#: samples per step when neither TrainConfig nor a finite dataset sets it (the TMS notebook's 1024).
DEFAULT_BATCH_SIZE = 1024
#: TrainConfig's log_every where it divides steps (the TMS notebook logs every 100 steps).
DEFAULT_LOG_EVERY = 100


def default_log_every(steps: int) -> int:
    """The log interval when none is given: DEFAULT_LOG_EVERY if it divides steps, else the
    largest divisor of steps below it (steps=10 logs every 10 steps, steps=150 every 75)."""
    return max(d for d in range(1, min(steps, DEFAULT_LOG_EVERY) + 1) if steps % d == 0)


def field_docs(cls) -> dict[str, str]:
    """{field name: one-line doc} of a config class, for the README and error messages."""
    return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}


def swept_fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata["swept"])


def static_fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if not f.metadata["swept"])
