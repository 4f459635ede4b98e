"""The PyTorch baseline: one Jermyn et al. model trained at a time, the way their `model3.py` does.

Deliberately their structure, not an optimised trainer: a TorchScript `nn.Sequential(Linear(m, k),
ReLU, Linear(k, N, bias=False))`, a fresh batch drawn every step by a TorchScript sampler
(`torch.rand`, a Bernoulli mask, the product, then the embedding matmul), the loss
Σ (out − v)² / batch plus reg · Σ |activations| / batch where the activations come from a second
forward pass through `model[:2]` (as theirs), LAMB, `CosineAnnealingLR(T_max=2⁹)`, and bias decay
through `state_dict()` / `load_state_dict()` in the first half of training.

Departures, none of which adds work to a step: the device is the CPU (their code asks for CUDA);
the samplers' arguments are annotated so that TorchScript accepts Python numbers; their LAMB is
`torch_optimizer.Lamb` (0.3.0), which is not a dependency here, so `Lamb` below is its `step`
written out (ε = 1e-6, weight decay 0, weight norm clamped at 10, no bias correction); and the
logged loss is kept every 16 steps as a float, as theirs.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

# torch.jit.script is deprecated in torch 2.x; their code uses it, so the baseline does too.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")


class Lamb(torch.optim.Optimizer):
    """torch_optimizer.Lamb's step (0.3.0, default arguments), per parameter tensor."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0,
                 clamp_value=10.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.clamp_value = clamp_value

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                weight_norm = torch.norm(p).clamp(0, self.clamp_value)
                adam_step = exp_avg / exp_avg_sq.sqrt().add(group["eps"])
                if group["weight_decay"] != 0:
                    adam_step.add_(p, alpha=group["weight_decay"])
                adam_norm = torch.norm(adam_step)
                if weight_norm == 0 or adam_norm == 0:
                    trust_ratio = 1
                else:
                    trust_ratio = weight_norm / adam_norm
                p.add_(adam_step, alpha=-group["lr"] * trust_ratio)


@torch.jit.script
def sample_vectors_equal(N: int, eps: float, batch_size: int, embedder: torch.Tensor):
    v = torch.rand((int(batch_size), int(N)))
    compare = eps * torch.ones((int(batch_size), int(N)))
    sparsity = torch.bernoulli(compare)
    v *= sparsity
    x = torch.matmul(v, embedder.T)
    return v, x


@torch.jit.script
def loss_func(batch_size: int, outputs, vectors):
    return torch.sum((outputs - vectors) ** 2) / batch_size


def make_random_embedder(N: int, m: int) -> torch.Tensor:
    matrix = np.random.randn(N, m)
    u, _, _ = np.linalg.svd(matrix, full_matrices=False)
    u /= (np.sum(u**2, axis=1) ** 0.5)[:, np.newaxis]
    return torch.tensor(u.T, requires_grad=False, dtype=torch.float)


def run(N: int, m: int, k: int, eps: float, batch_size: int, learning_rate: float,
        training_steps: int, init_bias: float, decay: float, reg: float, seed: int = 0):
    """Train one autoencoder model as their `run(...)` / `train(...)`; returns (losses, model)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    embedder = make_random_embedder(N, m)
    model = torch.jit.script(nn.Sequential(nn.Linear(m, k, bias=True), nn.ReLU(),
                                           nn.Linear(k, N, bias=False)))
    state = model.state_dict()
    state["0.bias"] += init_bias
    model.load_state_dict(state)

    optimizer = Lamb(model.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2**9, eta_min=0)
    losses = []
    for i in range(training_steps):
        optimizer.zero_grad(set_to_none=True)
        vectors, inputs = sample_vectors_equal(N, eps, batch_size, embedder)
        outputs = model.forward(inputs)
        activations = model[:2].forward(inputs)
        l = loss_func(batch_size, outputs, vectors)  # noqa: E741 (their name)
        loss = l + reg * torch.sum(torch.abs(activations)) / batch_size
        loss.backward()
        optimizer.step()
        scheduler.step()
        if i < training_steps / 2:
            state = model.state_dict()
            state["0.bias"] *= (1 - decay * learning_rate)
            model.load_state_dict(state)
        if i % 2**4 == 0:
            losses.append(float(l))
    return losses, model
