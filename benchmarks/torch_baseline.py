"""The PyTorch baseline: TMS models trained the way the TMS notebook and ARENA 1.3.1 do it.

This is deliberately *not* an optimised PyTorch trainer. It is the reference implementation people
actually run (Elhage et al. 2022's notebook; ARENA 1.3.1's `Model` and `optimize`): one `nn.Module`
whose parameters carry an instance axis, einsum forward, fresh data drawn with `torch.rand` every
step, `torch.optim.AdamW(lr=1e-3)`, and a plain Python loop with zero_grad / backward / step. The
speed benchmark compares `toymodels` against exactly this, so keep it faithful rather than fast.

Departures from the notebook, none of which adds work to a step: the loss is reduced with
`.mean(dim=(0, 2)).sum()` instead of `einops.reduce` (same arithmetic, one less dependency); the
error is ARENA's `(batch - out)` rather than the notebook's `(batch.abs() - out)` (a no-op on
non-negative data; dropping it only makes the baseline faster); and the per-instance losses are
kept every step (a `detach()` into a preallocated tensor) instead of printed every `print_freq`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Model(nn.Module):
    """n_instances independent TMS models x' = ReLU(Wᵀ W x + b), stacked on a leading axis.

    W: [instance, feature, hidden] (row f is feature f's embedding), Xavier-normal on the whole
    3-D tensor as in the notebook (so its std depends on n_instances; see REFERENCES.md);
    b_final: [instance, feature], zeros.
    """

    def __init__(
        self,
        n_instances: int,
        n_features: int,
        n_hidden: int,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
    ):
        super().__init__()
        self.n_instances, self.n_features, self.n_hidden = n_instances, n_features, n_hidden
        self.W = nn.Parameter(torch.empty((n_instances, n_features, n_hidden)))
        nn.init.xavier_normal_(self.W)
        self.b_final = nn.Parameter(torch.zeros((n_instances, n_features)))
        # [instance, 1] and [instance or 1, feature]: broadcast against [batch, instance, feature].
        self.feature_probability = feature_probability
        self.importance = importance

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        # features: [..., instance, feature]
        hidden = torch.einsum("...if,ifh->...ih", features, self.W)
        out = torch.einsum("...ih,ifh->...if", hidden, self.W)
        return F.relu(out + self.b_final)

    def generate_batch(self, n_batch: int) -> torch.Tensor:
        """Each feature independently U[0, 1) with probability p (per instance), else 0."""
        shape = (n_batch, self.n_instances, self.n_features)
        feat = torch.rand(shape, device=self.W.device)
        mask = torch.rand(shape, device=self.W.device) <= self.feature_probability
        return torch.where(mask, feat, torch.zeros((), device=self.W.device))


def train_torch(
    n_instances: int,
    n_features: int,
    n_hidden: int,
    feature_probability: Sequence[float] | np.ndarray | torch.Tensor,
    importance: Sequence[float] | np.ndarray | torch.Tensor,
    steps: int,
    batch_size: int = 1024,
    seed: int = 0,
    lr: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train `n_instances` TMS models at once, notebook style, on CPU with torch's default threads.

    Args:
      feature_probability: [instance], the probability p = 1 − S that each feature is active.
      importance: [feature] (shared by all instances) or [instance, feature].
      steps: optimizer steps; each draws a fresh batch of `batch_size` examples per instance.

    Returns:
      (W [instance, feature, hidden], b [instance, feature], losses [step, instance]), where
      losses[t, i] = mean over (batch, feature) of importance · (x − x')² at step t, before the
      update of step t.
    """
    torch.manual_seed(seed)
    p = torch.as_tensor(np.asarray(feature_probability), dtype=torch.float32).reshape(n_instances, 1)
    imp = torch.as_tensor(np.asarray(importance), dtype=torch.float32)
    if imp.ndim == 1:
        imp = imp[None, :]
    model = Model(n_instances, n_features, n_hidden, p, imp)
    opt = torch.optim.AdamW(list(model.parameters()), lr=lr)
    losses = torch.empty((steps, n_instances))
    for step in range(steps):
        opt.zero_grad(set_to_none=True)
        batch = model.generate_batch(batch_size)
        out = model(batch)
        error = model.importance * (batch - out) ** 2
        loss_per_instance = error.mean(dim=(0, 2))
        loss = loss_per_instance.sum()
        loss.backward()
        opt.step()
        losses[step] = loss_per_instance.detach()
    return model.W.detach().clone(), model.b_final.detach().clone(), losses
