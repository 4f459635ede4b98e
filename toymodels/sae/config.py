"""`SAEConfig`: one sparse autoencoder (or transcoder, or crosscoder) and how it is trained.

Names follow SAELens: `d_in`, `d_sae`, `architecture`, `k`, `apply_b_dec_to_input`,
`normalize_activations`, `l1_coefficient`, `l0_coefficient` … Like `ToyModelConfig`, each field
is *static* (shapes, the compiled program) or *swept* (a value a grid may vary). `d_sae` and `k`
are static but may still be grid keys: the sweep compiles once per value.

One configuration covers the three dictionary shapes of the field:
- an SAE reads a site and reconstructs it (`d_out=None`);
- a transcoder reads one site and predicts another (`d_out` set; data yields (input, target));
- a crosscoder reads and writes several sites at once: its input is the sites concatenated, and
  `n_output_sites` splits the decoder's output into equal slices, so that the sparsity penalty
  weights each latent by Σ_sites ‖W_dec,i,site‖ (Anthropic's crosscoders). With one site it is
  exactly an SAE's ‖W_dec,i‖.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import InitVar, dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from toymodels.config import (
    _check_float,
    _check_int,
    _check_literal,
    _fail,
    static,
    swept,
)

Architecture = Literal["standard", "topk", "batchtopk", "jumprelu", "gated",
                       "matryoshka_batchtopk"]
SparsityLoss = Literal["step", "tanh"]
BDecInit = Literal["zeros", "mean", "geometric_median"]
Normalize = Literal["none", "expected_average_only_in"]
Resample = Literal["none", "simple", "loss_weighted"]
Decoding = Literal["auto", "dense", "sparse"]

#: the swept fields each architecture reads; the others' values are ignored by it, and a grid
#: that sweeps one an architecture ignores is refused.
ARCHITECTURE_FIELDS: dict[str, frozenset[str]] = {
    "standard": frozenset({"l1_coefficient"}),
    "gated": frozenset({"l1_coefficient"}),
    "topk": frozenset({"aux_loss_coefficient"}),
    "batchtopk": frozenset({"aux_loss_coefficient", "topk_threshold_lr"}),
    "matryoshka_batchtopk": frozenset({"aux_loss_coefficient", "topk_threshold_lr"}),
    "jumprelu": frozenset({"l0_coefficient", "pre_act_loss_coefficient", "jumprelu_bandwidth",
                           "jumprelu_init_threshold", "jumprelu_tanh_scale"}),
}
_SPECIFIC = frozenset().union(*ARCHITECTURE_FIELDS.values())

#: fields whose earlier toymodels names differ from SAELens 6's names for the same concept:
#: {old name: SAELens's name}. The old names are still accepted, by the config and as grid
#: keys, with a DeprecationWarning. Fields with no SAELens counterpart keep toymodels' names
#: (unit_norm_decoder, n_output_sites, resample, resample_every), and sparsity_warmup_steps is
#: one field where SAELens has one per architecture (l1_warm_up_steps of standard and gated,
#: l0_warm_up_steps of jumprelu).
RENAMED_FIELDS: dict[str, str] = {
    "jumprelu_sparsity_loss": "jumprelu_sparsity_loss_mode",
    "aux_coefficient": "aux_loss_coefficient",
    "dead_window": "dead_feature_window",
    "b_dec_init": "b_dec_init_method",
}


def renamed(old: str, new: str, stacklevel: int) -> None:
    warnings.warn(f"SAEConfig's {old} is now {new}, SAELens's name; {old} will be removed",
                  DeprecationWarning, stacklevel=stacklevel + 1)


_TOPK = ("topk", "batchtopk", "matryoshka_batchtopk")
#: architectures that take matryoshka_widths: required by matryoshka_batchtopk, optional for
#: standard (a Matryoshka ReLU SAE, Nabeshima's original toy); the others take none.
MATRYOSHKA = {"matryoshka_batchtopk": True, "standard": False}


def required(doc: str) -> Any:
    """A static field without a default."""
    return field(metadata={"swept": False, "doc": doc})


@dataclass(frozen=True)
class SAEConfig:
    """A sparse dictionary: encoder, sparse latents, decoder; and its training objective.

    The loss of a batch is the batch mean of ‖x̂ − target‖² (summed over the output dims) plus the
    architecture's terms:
    - standard: l1_coefficient · Σ_i f_i ‖W_dec,i‖ (Anthropic, April 2024); with a unit-norm
      decoder, l1_coefficient · Σ_i f_i (the older recipe);
    - topk / batchtopk: aux_loss_coefficient · AuxK (Gao et al. 2024: the top d_in/2 dead latents
      reconstruct the residual); batchtopk keeps the top k·batch activations of the whole batch;
    - matryoshka_batchtopk: batchtopk's terms plus, for every inner prefix width w of
      matryoshka_widths = (w_1 < … < w_G = d_sae), the reconstruction error of the first w
      latents alone, mean_b ‖b_dec + Σ_{i<w} f_i W_dec,i − target‖² (SAELens's
      MatryoshkaBatchTopKTrainingSAE: the plain sum over the G prefixes, the full one being the
      mse term). With use_matryoshka_aux_loss, AuxK is one term per group (the dead latents of
      group g reconstruct the residual of prefix w_g), summed. dictionary_learning's
      `group_fractions` / `group_weights` form is the same loss up to its weights: its
      group_sizes are the differences of the widths (widths = cumulative group sizes), and its
      reconstruction term is (1/G) Σ_g w_g ‖x − x̂_{w_g}‖², so uniform weights w_g = 1/G give
      SAELens's sum divided by G² (its AuxK is divided by the residual's variance besides);
    - standard with matryoshka_widths: the L1 SAE plus the same inner-prefix terms;
    - jumprelu: l0_coefficient · Σ_i H(π_i − θ_i) ("step", DeepMind) or Σ_i tanh(c f_i ‖W_dec,i‖)
      ("tanh", Anthropic), plus pre_act_loss_coefficient · Σ_dead ReLU(θ_i − π_i) ‖W_dec,i‖;
    - gated: l1_coefficient · Σ_i ReLU(π_gate,i) ‖W_dec,i‖ plus the reconstruction from
      ReLU(π_gate) through a detached decoder (Rajamanoharan et al. 2024).

    JumpReLU at its defaults (SAELens's: l0_coefficient 1, jumprelu_bandwidth 0.05, initial
    threshold 0.01) stays dense on data with ‖x‖ ≈ 1: on GroundTruth(d_in=32, n_features=64) with
    d_sae 96, every latent fires on every sample after 5,000 steps (SAELens 6.18 does the same).
    The step loss reaches the threshold θ only through pre-activations within ε/2 of it, and θ
    (trained as log θ) climbs about a hundred times slower than b_enc pushes the pre-activations
    away, so the window empties within a few hundred steps and l0_coefficient stops acting.
    Measured to sparsify on that data (`python experiments/jumprelu_sparsity.py`, 3 seeds):
    `jumprelu_bandwidth=1.0, l0_coefficient=1e-3` (L0 6.0, FVU 0.08, MCC 0.98; it needs ≳ 3,000
    steps at lr 1e-3), or `jumprelu_sparsity_loss_mode="tanh", l0_coefficient=0.05` (L0 4.1,
    FVU 0.10, MCC 0.997). As a rule, ε ≈ E‖x‖ and l0_coefficient ≈ 1e-3 · E‖x‖² (with
    normalize_activations, ε ≈ √d_in). A sweep warns when its SAEs end with L0 ≥ 90 % of d_sae.
    """

    d_in: int = required("width of the input activations (≥ 1)")
    d_sae: int = required("number of latents (≥ 1); may be a grid key")
    architecture: Architecture = static(
        "standard", "standard (ReLU), topk, batchtopk, jumprelu, gated or matryoshka_batchtopk "
        "(SAELens's names)"
    )
    k: int | None = static(
        None, "latents kept per example: topk (exactly k), batchtopk and matryoshka_batchtopk "
        "(k on average), an integer in [1, d_sae]; None for the other architectures; may be a "
        "grid key"
    )
    d_out: int | None = static(
        None, "width of the reconstruction target: None reconstructs the input (an SAE, or a "
        "crosscoder); set, a transcoder, trained on data that yields (input, target) pairs"
    )
    n_output_sites: int = static(
        1, "equal slices of the output the decoder writes (a crosscoder's sites); the penalty "
        "weights latent i by Σ_sites ‖W_dec,i,site‖"
    )
    apply_b_dec_to_input: bool | None = static(
        None, "subtract b_dec from the input before encoding; None: True for an SAE (SAELens's "
        "default), False for a transcoder (whose b_dec lives in the output space)"
    )
    matryoshka_widths: tuple[int, ...] | None = static(
        None, "the nested prefix widths of a Matryoshka SAE, strictly increasing integers "
        "ending at d_sae (SAELens's name): required by matryoshka_batchtopk, optional for "
        "standard, None for the others; with it set, d_sae is not a grid key"
    )
    use_matryoshka_aux_loss: bool = static(
        False, "matryoshka_batchtopk: AuxK per group, each group's dead latents reconstructing "
        "the residual of its own prefix (SAELens's use_matryoshka_aux_loss); False: one AuxK "
        "on the full residual"
    )
    unit_norm_decoder: bool | None = static(
        None, "keep every decoder row at unit norm (renormalised after each step, the gradient's "
        "radial part removed); None: True for topk, batchtopk and matryoshka_batchtopk (Gao "
        "et al.) and gated (Rajamanoharan et al.: its auxiliary loss through a detached decoder "
        "lets free decoder norms collapse), False for standard and jumprelu"
    )
    normalize_activations: Normalize = static(
        "none", "expected_average_only_in: scale the data so that E‖x‖ = √d_in (estimated on the "
        "first batch), folded back into the weights after training; or none"
    )
    b_dec_init_method: BDecInit = static(
        "zeros", "b_dec at initialisation: zeros (SAELens 6), or the mean or geometric median of "
        "the first batch's targets (SAELens's b_dec_init_method)"
    )
    jumprelu_sparsity_loss_mode: SparsityLoss = static(
        "step", "jumprelu's sparsity loss: step (L0 through the straight-through estimator) or tanh"
    )
    sparsity_warmup_steps: int = static(
        0, "the sparsity coefficient rises linearly from 0 over these first steps (≥ 0); SAELens "
        "has one per architecture: l1_warm_up_steps, l0_warm_up_steps"
    )
    dead_feature_window: int = static(
        1000, "a latent that has not fired for more than this many steps is dead (for AuxK, the "
        "pre-activation loss and resampling); training_latent_density counts firings over the "
        "last window, while the parameters still move"
    )
    resample: Resample = static(
        "none", "re-initialise dead latents every resample_every steps: simple (random unit "
        "directions) or loss_weighted (inputs drawn ∝ their squared reconstruction error), as ARENA"
    )
    resample_every: int = static(2500, "steps between resamplings (≥ 1)")
    decoding: Decoding = static(
        "auto", "how topk, batchtopk and matryoshka_batchtopk decode in training: dense (W_decᵀ F), "
        "sparse (from the gathered rows of the selected latents; toymodels.sae.sparse), or auto: "
        "sparse where d_sae ≥ toymodels.sae.sparse.MIN_RATIO (128) times k (k_aux for "
        "AuxK), the crossover measured on CPU; the other architectures are always dense"
    )
    l1_coefficient: float = swept(1.0, "sparsity coefficient of standard and gated, ≥ 0")
    l0_coefficient: float = swept(1.0, "sparsity coefficient of jumprelu, ≥ 0")
    aux_loss_coefficient: float = swept(
        1 / 32, "weight of the AuxK loss of topk, batchtopk and matryoshka_batchtopk, ≥ 0 (Gao "
        "et al.'s 1/32; SAELens 6 defaults to 1)"
    )
    pre_act_loss_coefficient: float = swept(
        0.0, "jumprelu's pre-activation loss on dead latents, ≥ 0 (Anthropic uses 3e-6; 0: off)"
    )
    jumprelu_bandwidth: float = swept(0.05, "ε of jumprelu's rectangle-kernel estimator, > 0")
    jumprelu_init_threshold: float = swept(0.01, "jumprelu's initial threshold θ, > 0")
    jumprelu_tanh_scale: float = swept(4.0, "c of the tanh sparsity loss, > 0")
    topk_threshold_lr: float = swept(
        0.01, "batchtopk's running threshold: θ ← (1 − lr) θ + lr · min kept activation; in (0, 1]"
    )
    decoder_init_norm: float = swept(
        0.1, "norm of every decoder row at initialisation (> 0; 0.1 is SAELens's heuristic); "
        "unit-norm decoders start at 1"
    )
    # The earlier names of four fields (RENAMED_FIELDS): accepted with a DeprecationWarning and
    # passed on to the new field; not stored (dataclasses.replace reads them as their None).
    jumprelu_sparsity_loss: InitVar[SparsityLoss | None] = None
    aux_coefficient: InitVar[float | None] = None
    dead_window: InitVar[int | None] = None
    b_dec_init: InitVar[BDecInit | None] = None

    #: SAELens's training recipe where TrainConfig leaves it open: Adam, no weight decay,
    #: gradients clipped to global norm 1.
    train_recipe: ClassVar[dict[str, Any]] = {
        "optimizer": "adam", "weight_decay": 0.0, "max_grad_norm": 1.0, "batch_size": 1024,
    }
    describe_as: ClassVar[str] = "sae"
    vector_fields: ClassVar[dict[str, str]] = {}
    static_grid_fields: ClassVar[tuple[str, ...]] = ("d_sae", "k")
    renamed_fields: ClassVar[dict[str, str]] = RENAMED_FIELDS

    def __post_init__(self, *old_values):
        for old, value in zip(RENAMED_FIELDS, old_values, strict=True):
            if value is None:
                continue
            new = RENAMED_FIELDS[old]
            if getattr(self, new) != getattr(type(self), new):
                raise ValueError(f"{old} and {new} are the same field (now {new}); give only {new}")
            renamed(old, new, stacklevel=3)
            object.__setattr__(self, new, value)
        _check_int("d_in", self.d_in, 1)
        _check_int("d_sae", self.d_sae, 1)
        _check_literal("architecture", self.architecture, Architecture.__args__)
        if self.architecture in _TOPK:
            if self.k is None:
                _fail("k", f"an integer in [1, d_sae={self.d_sae}] for architecture "
                      f"{self.architecture!r}", self.k)
            _check_int("k", self.k, 1, self.d_sae)
        elif self.k is not None:
            _fail("k", f"None for architecture {self.architecture!r} (only topk, batchtopk "
                  "and matryoshka_batchtopk take k)", self.k)
        self._check_matryoshka_widths()
        if self.d_out is not None:
            _check_int("d_out", self.d_out, 1)
        _check_int("n_output_sites", self.n_output_sites, 1)
        if self.output_width % self.n_output_sites:
            _fail("n_output_sites", f"a divisor of the output width {self.output_width}",
                  self.n_output_sites)
        for name in ("apply_b_dec_to_input", "unit_norm_decoder"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                _fail(name, "True, False or None", value)
        if self.d_out is not None and self.apply_b_dec_to_input:
            _fail("apply_b_dec_to_input", "False for a transcoder (d_out set): b_dec is in the "
                  "output space", self.apply_b_dec_to_input)
        _check_literal("normalize_activations", self.normalize_activations, Normalize.__args__)
        _check_literal("b_dec_init_method", self.b_dec_init_method, BDecInit.__args__)
        _check_literal("jumprelu_sparsity_loss_mode", self.jumprelu_sparsity_loss_mode,
                       SparsityLoss.__args__)
        _check_int("sparsity_warmup_steps", self.sparsity_warmup_steps, 0)
        _check_int("dead_feature_window", self.dead_feature_window, 1)
        _check_literal("resample", self.resample, Resample.__args__)
        _check_int("resample_every", self.resample_every, 1)
        _check_literal("decoding", self.decoding, Decoding.__args__)
        if self.decoding == "sparse" and self.architecture not in _TOPK:
            _fail("decoding", f"'auto' or 'dense' for architecture {self.architecture!r} (only "
                  "topk, batchtopk and matryoshka_batchtopk select latents to decode sparsely)",
                  self.decoding)
        for name in ("l1_coefficient", "l0_coefficient", "aux_loss_coefficient",
                     "pre_act_loss_coefficient"):
            _check_float(name, getattr(self, name), 0.0, math.inf, high_open=True)
        for name in ("jumprelu_bandwidth", "jumprelu_init_threshold", "jumprelu_tanh_scale",
                     "decoder_init_norm"):
            _check_float(name, getattr(self, name), 0.0, math.inf, low_open=True, high_open=True)
        _check_float("topk_threshold_lr", self.topk_threshold_lr, 0.0, 1.0, low_open=True)

    def _check_matryoshka_widths(self) -> None:
        widths = self.matryoshka_widths
        if widths is None:
            if MATRYOSHKA.get(self.architecture):
                _fail("matryoshka_widths", "a tuple of strictly increasing integers ending at "
                      f"d_sae={self.d_sae} for architecture {self.architecture!r}", widths)
        else:
            if self.architecture not in MATRYOSHKA:
                _fail("matryoshka_widths", f"None for architecture {self.architecture!r} (only "
                      f"{' and '.join(MATRYOSHKA)} take nested widths)", widths)
            if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
                _fail("matryoshka_widths", "a tuple of integers", widths)
            widths = tuple(widths)
            allowed = ("a non-empty tuple of strictly increasing integers ≥ 1 ending at "
                       f"d_sae={self.d_sae} (a grid over d_sae cannot sweep them: give each "
                       "width its own config)")
            ints = all(isinstance(w, (int, np.integer)) and not isinstance(w, bool)
                       for w in widths)
            if (not widths or not ints or widths[0] < 1 or widths[-1] != self.d_sae
                    or any(a >= b for a, b in zip(widths, widths[1:]))):
                _fail("matryoshka_widths", allowed, widths)
            # a tuple of ints hashes (a static field keys the compiled program); a config read
            # back from JSON gives a list, NumPy grids give np.int64
            object.__setattr__(self, "matryoshka_widths", tuple(int(w) for w in widths))
        if not isinstance(self.use_matryoshka_aux_loss, bool):
            _fail("use_matryoshka_aux_loss", "True or False", self.use_matryoshka_aux_loss)
        if self.use_matryoshka_aux_loss and self.architecture != "matryoshka_batchtopk":
            _fail("use_matryoshka_aux_loss", "False for architecture "
                  f"{self.architecture!r} (only matryoshka_batchtopk has AuxK per group)", True)

    @property
    def group_bounds(self) -> tuple[tuple[int, int], ...]:
        """(start, stop) latent ranges of the Matryoshka groups: widths (3, 8, 20) give
        ((0, 3), (3, 8), (8, 20)); one group (0, d_sae) without widths."""
        widths = self.matryoshka_widths or (self.d_sae,)
        return tuple(zip((0,) + widths[:-1], widths))

    @property
    def output_width(self) -> int:
        """Width of what the decoder writes: d_out for a transcoder, else d_in."""
        return self.d_in if self.d_out is None else self.d_out

    @property
    def is_transcoder(self) -> bool:
        return self.d_out is not None

    @property
    def subtracts_b_dec(self) -> bool:
        """apply_b_dec_to_input, resolved: True for an SAE, False for a transcoder by default."""
        if self.apply_b_dec_to_input is None:
            return not self.is_transcoder
        return self.apply_b_dec_to_input

    @property
    def has_unit_norm_decoder(self) -> bool:
        """unit_norm_decoder, resolved: True for topk, batchtopk, matryoshka_batchtopk and gated
        by default."""
        if self.unit_norm_decoder is None:
            return self.architecture in (*_TOPK, "gated")
        return self.unit_norm_decoder

    def check_grid(self, grid: dict[str, Any]) -> None:
        """A grid may sweep only the coefficients this architecture reads."""
        ignored = sorted(k for k in grid
                         if k in _SPECIFIC and k not in ARCHITECTURE_FIELDS[self.architecture])
        if ignored:
            uses = ", ".join(sorted(ARCHITECTURE_FIELDS[self.architecture]))
            raise ValueError(f"grid key(s) {', '.join(ignored)} are not used by architecture "
                             f"{self.architecture!r}, which reads {uses}")


def stored_config(fields: dict[str, Any]) -> SAEConfig:
    """An SAEConfig from fields a file or a sweep's attrs stored, earlier names read silently as
    their current ones (the warning is for code that says the old names, not for old files)."""
    return SAEConfig(**{RENAMED_FIELDS.get(name, name): value for name, value in fields.items()})
