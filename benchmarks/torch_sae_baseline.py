"""PyTorch baselines for SAE training, written the way people run them today.

* `train_arena_saes`: ARENA 1.3.1's toy SAE — one `nn.Module` whose parameters carry an
  instance axis (W_enc [instance, d_in, d_sae], W_dec [instance, d_sae, d_in], b_enc, b_dec),
  trained on the hidden activations of TMS toy models (a batch of sparse features drawn with
  `torch.rand` every step, pushed through each instance's fixed toy W), einsum forward, decoder
  rows renormalised every step, `torch.optim.Adam`, and a plain Python loop.
* `train_saelens_sae`: one standard SAE the way SAELens trains it (ReLU, loss = batch mean of
  ‖x̂ − x‖² + l1 · Σ f_i ‖W_dec,i‖, Adam, gradient clipping to norm 1) on Sharkey et al.'s
  ground-truth activations generated in torch; `sae_speed.py` trains several one after another,
  as a hyperparameter sweep does with SAELens (it has no multi-SAE trainer that runs them
  together).

Deliberately not optimised: these are the references the speed benchmark compares against.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class ArenaSAE(nn.Module):
    """n_instances toy SAEs: z = ReLU((h − b_dec) W_enc + b_enc), ĥ = z Ŵ_dec + b_dec."""

    def __init__(self, n_instances: int, d_in: int, d_sae: int):
        super().__init__()
        self.W_enc = nn.Parameter(nn.init.xavier_normal_(torch.empty((n_instances, d_in, d_sae))))
        self.W_dec = nn.Parameter(nn.init.xavier_normal_(torch.empty((n_instances, d_sae, d_in))))
        self.b_enc = nn.Parameter(torch.zeros((n_instances, d_sae)))
        self.b_dec = nn.Parameter(torch.zeros((n_instances, d_in)))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        self.W_dec.data = self.W_dec.data / self.W_dec.data.norm(dim=2, keepdim=True)

    def forward(self, h: torch.Tensor, l1_coefficient: torch.Tensor) -> torch.Tensor:
        # h: [batch, instance, d_in]
        z = F.relu(torch.einsum("bid,ids->bis", h - self.b_dec, self.W_enc) + self.b_enc)
        h_hat = torch.einsum("bis,isd->bid", z, self.W_dec) + self.b_dec
        loss = (h_hat - h).pow(2).mean(-1) + l1_coefficient * z.abs().sum(-1)  # [batch, instance]
        return loss.mean(0).sum()


def train_arena_saes(toy_W: np.ndarray, feature_probability: float, d_sae: int,
                     l1_coefficient: np.ndarray, steps: int, batch_size: int = 1024,
                     lr: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Train one toy SAE per instance on its toy model's hidden activations, ARENA style.

    Args:
      toy_W: [instance, n_features, d_hidden] each instance's (trained) toy model.
      feature_probability: the toy models' feature probability.
      l1_coefficient: [instance].

    Returns:
      [step] the summed loss of every step.
    """
    torch.manual_seed(seed)
    W = torch.as_tensor(toy_W, dtype=torch.float32)
    n_instances, n_features, d_in = W.shape
    coeff = torch.as_tensor(l1_coefficient, dtype=torch.float32)[None, :]
    sae = ArenaSAE(n_instances, d_in, d_sae)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    losses = torch.empty(steps)
    for step in range(steps):
        with torch.no_grad():
            shape = (batch_size, n_instances, n_features)
            features = torch.where(torch.rand(shape) <= feature_probability, torch.rand(shape), 0.0)
            h = torch.einsum("bif,ifh->bih", features, W)
        opt.zero_grad(set_to_none=True)
        loss = sae(h, coeff)
        loss.backward()
        opt.step()
        sae.normalize_decoder()
        losses[step] = loss.detach()
    return losses.numpy()


class StandardSAE(nn.Module):
    """SAELens's standard SAE (apply_b_dec_to_input, decoder init norm 0.1, W_enc = W_decᵀ)."""

    def __init__(self, d_in: int, d_sae: int):
        super().__init__()
        W_dec = nn.init.kaiming_uniform_(torch.empty(d_sae, d_in))
        W_dec = 0.1 * W_dec / W_dec.norm(dim=-1, keepdim=True)
        self.W_dec = nn.Parameter(W_dec)
        self.W_enc = nn.Parameter(W_dec.T.clone().contiguous())
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def forward(self, x: torch.Tensor, l1_coefficient: float) -> torch.Tensor:
        f = F.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        x_hat = f @ self.W_dec + self.b_dec
        mse = (x_hat - x).pow(2).sum(-1).mean()
        return mse + l1_coefficient * (f * self.W_dec.norm(dim=1)).sum(-1).mean()


def ground_truth_batch(dictionary: torch.Tensor, probability: torch.Tensor,
                       batch_size: int) -> torch.Tensor:
    """Sharkey et al.'s activations: c_i ~ U[0, 1) with probability p_i, x = c D."""
    shape = (batch_size, dictionary.shape[0])
    c = torch.where(torch.rand(shape) < probability, torch.rand(shape), 0.0)
    return c @ dictionary


def train_saelens_sae(dictionary: np.ndarray, probability: np.ndarray, d_sae: int,
                      l1_coefficient: float, steps: int, batch_size: int = 1024,
                      lr: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Train one standard SAE on ground-truth activations as SAELens's trainer does.

    Returns:
      [step] the loss of every step.
    """
    torch.manual_seed(seed)
    D = torch.as_tensor(dictionary, dtype=torch.float32)
    p = torch.as_tensor(probability, dtype=torch.float32)
    sae = StandardSAE(D.shape[1], d_sae)
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    losses = torch.empty(steps)
    for step in range(steps):
        with torch.no_grad():
            x = ground_truth_batch(D, p, batch_size)
        loss = sae(x, l1_coefficient)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses[step] = loss.detach()
    return losses.numpy()
