"""The PyTorch baseline of `finite_speed.py`: Henighan et al.'s (2023) finite-data toy models,
trained one model at a time.

"Superposition, Memorization, and Double Descent" trains each (T, seed) model on its own: T
samples drawn once (each feature U[0, 1) with probability p, else 0; every sample rescaled to unit
norm), x' = ReLU(x W Wᵀ + b) with W (n, m) Xavier-normal and b zeros, loss = mean over samples
and features of (x − x')², full batch, `torch.optim.AdamW(lr=1e-3, weight_decay=1e-2)`, a linear
warm-up over min(2500, steps) steps then cosine decay to 0 (`LambdaLR`), and a plain Python loop
of zero_grad / backward / step. The loss on a fixed fresh test set is taken every `log_every`
steps, as `toymodels` does. Deliberately not optimised (no instance axis, no compile): it is the
reference the benchmark compares against, so keep it faithful rather than fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def draw_samples(n_samples: int, n_features: int, feature_probability: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """[n_samples, n_features]: each feature U[0, 1) with probability p, else 0; each sample then
    scaled to unit norm (a sample with no active feature stays 0)."""
    values = torch.rand((n_samples, n_features), generator=generator)
    active = torch.rand((n_samples, n_features), generator=generator) < feature_probability
    x = torch.where(active, values, torch.zeros(()))
    norm = x.norm(dim=1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones(()))


class ReluOutput(nn.Module):
    """One toy model x' = ReLU(x W Wᵀ + b): W [n_features, d_hidden] (row i is feature i's
    embedding), Xavier-normal (std √(2 / (n + m))); b [n_features], zeros."""

    def __init__(self, n_features: int, d_hidden: int):
        super().__init__()
        self.W = nn.Parameter(nn.init.xavier_normal_(torch.empty((n_features, d_hidden))))
        self.b = nn.Parameter(torch.zeros(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x @ self.W @ self.W.T + self.b)


def henighan_lr_lambda(steps: int, warmup_steps: int | None = None):
    """The lr multiplier of step t (LambdaLR's λ(t)): t / warmup during the warm-up, then
    (1 + cos(π · clip((t − warmup) / max(steps − warmup, 1), 0, 1))) / 2, which reaches 0 at
    `steps` (toymodels' warmup_cosine). `warmup_steps` defaults to the paper's min(2500, steps)."""
    warmup = min(2_500, steps) if warmup_steps is None else warmup_steps
    cosine_steps = max(steps - warmup, 1)

    def lr_lambda(t: int) -> float:
        if t < warmup:
            return t / warmup
        progress = min(max((t - warmup) / cosine_steps, 0.0), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return lr_lambda


@dataclass
class FiniteRun:
    """What one model's training returns.

    W [n_features, d_hidden], b [n_features]: the parameters at the end. loss [steps]: the
    training loss of each step, before its update. test_loss [steps // log_every]: the test loss
    after every log_every-th update.
    """

    W: torch.Tensor
    b: torch.Tensor
    loss: torch.Tensor
    test_loss: torch.Tensor


def train_finite(x_train: torch.Tensor, x_test: torch.Tensor, model: ReluOutput, steps: int,
                 schedule_steps: int | None = None, warmup_steps: int | None = None,
                 log_every: int = 100, lr: float = 1e-3, weight_decay: float = 1e-2) -> FiniteRun:
    """Train `model` full batch on x_train [T, n_features] for `steps` steps.

    The schedule is that of a `schedule_steps`-step run (default `steps`): a benchmark may run
    only the first steps of a longer training, each of which costs what any of its steps does.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        opt, henighan_lr_lambda(schedule_steps or steps, warmup_steps))
    losses = torch.empty(steps)
    test_losses = torch.empty(steps // log_every)
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = ((x_train - model(x_train)) ** 2).mean()
        loss.backward()
        opt.step()
        scheduler.step()
        losses[step] = loss.detach()
        if (step + 1) % log_every == 0:
            with torch.no_grad():
                test_losses[step // log_every] = ((x_test - model(x_test)) ** 2).mean()
    return FiniteRun(model.W.detach().clone(), model.b.detach().clone(), losses, test_losses)


def setup_model(n_features: int, d_hidden: int, feature_probability: float, dataset_size: int,
                test_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, ReluOutput]:
    """One (T, seed) model's training set [T, n], test set [test_size, n] and initial model,
    all from `seed` (the paper's data seed also seeds the initialisation here)."""
    torch.manual_seed(seed)
    x_train = draw_samples(dataset_size, n_features, feature_probability)
    x_test = draw_samples(test_size, n_features, feature_probability)
    return x_train, x_test, ReluOutput(n_features, d_hidden)
