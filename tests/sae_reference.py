"""Independent references for the SAE family, and the table of architectures the SAE tests share.

Written from the papers and SAELens 6's equations, never by calling `toymodels.sae`:

- NumPy (float64): the training forward pass and every loss term on the trainable parameters,
  and inference (`encode` / `decode`) on the published ones;
- PyTorch (float64, optional): the same losses with SAELens-style custom autograd Functions for
  the JumpReLU and Step straight-through estimators, for gradients, and a training loop (Adam,
  `clip_grad_norm_`, unit-norm decoder, warm-ups, dead-latent bookkeeping, BatchTopK's
  threshold) to hold the compiled training step against.

Conventions (x a row vector): x̃ = x − b_dec (when b_dec is applied to the input),
π = x̃ W_enc + b_enc, f = σ(π), x̂ = f W_dec + b_dec.
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from toymodels import trainers
import toymodels as tm

#: swept coefficient values the references use, all away from their defaults and nonzero so that
#: a term left out (or weighted by the wrong coefficient) shows.
COEFFICIENTS = dict(l1_coefficient=0.3, l0_coefficient=0.2, aux_loss_coefficient=0.5,
                    pre_act_loss_coefficient=0.4, jumprelu_bandwidth=0.3,
                    jumprelu_tanh_scale=2.0, jumprelu_init_threshold=0.05,
                    topk_threshold_lr=0.3, decoder_init_norm=0.2)

#: the shared table: every generic SAE test runs over these configurations.
CASES: dict[str, tm.SAEConfig] = {
    "standard": tm.SAEConfig(d_in=6, d_sae=12),
    "standard_unit_norm": tm.SAEConfig(d_in=6, d_sae=12, unit_norm_decoder=True),
    "topk": tm.SAEConfig(d_in=6, d_sae=12, architecture="topk", k=3),
    "topk_undercomplete": tm.SAEConfig(d_in=8, d_sae=3, architecture="topk", k=1),
    "batchtopk": tm.SAEConfig(d_in=6, d_sae=12, architecture="batchtopk", k=2),
    "jumprelu_step": tm.SAEConfig(d_in=6, d_sae=12, architecture="jumprelu"),
    "jumprelu_tanh_crosscoder": tm.SAEConfig(d_in=8, d_sae=12, architecture="jumprelu",
                                             jumprelu_sparsity_loss_mode="tanh", n_output_sites=2),
    "gated": tm.SAEConfig(d_in=6, d_sae=12, architecture="gated"),
    "gated_free_decoder": tm.SAEConfig(d_in=6, d_sae=12, architecture="gated",
                                       unit_norm_decoder=False),
    "crosscoder": tm.SAEConfig(d_in=8, d_sae=16, n_output_sites=2),
    "transcoder": tm.SAEConfig(d_in=6, d_sae=12, d_out=4),
    "topk_transcoder": tm.SAEConfig(d_in=6, d_sae=12, d_out=4, architecture="topk", k=2),
    "matryoshka_batchtopk": tm.SAEConfig(d_in=6, d_sae=12, architecture="matryoshka_batchtopk",
                                         k=2, matryoshka_widths=(2, 5, 12)),
    "matryoshka_batchtopk_aux": tm.SAEConfig(d_in=6, d_sae=12, architecture="matryoshka_batchtopk",
                                             k=2, matryoshka_widths=(3, 12),
                                             use_matryoshka_aux_loss=True),
    "matryoshka_standard": tm.SAEConfig(d_in=6, d_sae=12, matryoshka_widths=(4, 12)),
}

#: one case per architecture, and a transcoder (data in pairs): what the sweep engine handles
#: differently (the other CASES differ only in loss terms, checked at the loss level).
ENGINE_CASES = ("standard", "topk", "batchtopk", "jumprelu_step", "gated", "transcoder",
                "matryoshka_batchtopk")

#: the coefficient each architecture's sparsity is swept by.
MAIN_COEFFICIENT = {"standard": "l1_coefficient", "gated": "l1_coefficient",
                    "topk": "aux_loss_coefficient", "batchtopk": "aux_loss_coefficient",
                    "matryoshka_batchtopk": "aux_loss_coefficient", "jumprelu": "l0_coefficient"}

#: the architectures that keep a running threshold and infer as jumprelu with it.
BATCHTOPK = ("batchtopk", "matryoshka_batchtopk")


def with_coefficients(cfg: tm.SAEConfig, **values) -> tm.SAEConfig:
    """cfg with COEFFICIENTS (and `values`) in its swept fields."""
    return dataclasses.replace(cfg, **(COEFFICIENTS | values))


def unit_norm(cfg: tm.SAEConfig) -> bool:
    """Whether the decoder is kept at unit norm (documented default: topk, batchtopk,
    matryoshka_batchtopk, gated)."""
    if cfg.unit_norm_decoder is not None:
        return cfg.unit_norm_decoder
    return cfg.architecture in ("topk", "batchtopk", "matryoshka_batchtopk", "gated")


def subtracts_b_dec(cfg: tm.SAEConfig) -> bool:
    if cfg.apply_b_dec_to_input is not None:
        return cfg.apply_b_dec_to_input
    return cfg.d_out is None


def out_width(cfg: tm.SAEConfig) -> int:
    return cfg.d_in if cfg.d_out is None else cfg.d_out


def ground_truth(cfg: tm.SAEConfig, seed: int = 0) -> tm.GroundTruth:
    """A small ground-truth source of the case's widths."""
    return tm.GroundTruth(d_in=cfg.d_in, n_features=10, mean_active=2.0, seed=seed, d_out=cfg.d_out)


def make_trainer(cfg: tm.SAEConfig, train: tm.TrainConfig, **overrides):
    """(config with COEFFICIENTS and `overrides`, its trainer on ground truth, its swept values)."""
    cfg = with_coefficients(cfg, **overrides)
    trainer = trainers.make_trainer(cfg, train, ground_truth(cfg))
    return cfg, trainer, trainer.swept(cfg, train, 0)


def trainer_batch(cfg: tm.SAEConfig, X, T):
    """What a trainer's init and step take: X for an SAE, (X, T) for a transcoder."""
    return X if cfg.d_out is None else (X, T)


# --- random weights and data ------------------------------------------------------------------


def offset_batches(cfg: tm.SAEConfig, seed: int, n: int, batch: int) -> list[tuple]:
    """n (X, T) float32 batches off the origin (so that centring and scaling matter)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        X = rng.normal(0.7, 2.0, (batch, cfg.d_in)).astype(np.float32)
        T = X if cfg.d_out is None else rng.normal(-0.4, 3.0, (batch, cfg.d_out)).astype(np.float32)
        out.append((X, T))
    return out


def random_params(cfg: tm.SAEConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Trainable parameters (jumprelu's log θ) of random values, float32, latents firing often."""
    d_in, d_sae, d_out = cfg.d_in, cfg.d_sae, out_width(cfg)
    W_dec = rng.normal(0, 0.5, (d_sae, d_out))
    if unit_norm(cfg):
        W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    p = {"W_enc": rng.normal(0, 1 / np.sqrt(d_in), (d_in, d_sae)), "W_dec": W_dec,
         "b_dec": rng.normal(0, 0.3, d_out)}
    if cfg.architecture == "gated":
        p |= {name: rng.normal(0, 0.3, d_sae) for name in ("b_gate", "r_mag", "b_mag")}
    else:
        p["b_enc"] = rng.normal(0, 0.3, d_sae)
    if cfg.architecture == "jumprelu":
        p["log_threshold"] = np.log(rng.uniform(0.05, 0.6, d_sae))
    return {k: v.astype(np.float32) for k, v in p.items()}


def random_batch(cfg: tm.SAEConfig, rng: np.random.Generator, batch: int):
    """(X (batch, d_in), T (batch, d_out)) float32; T is X for an SAE."""
    X = rng.normal(0, 1, (batch, cfg.d_in)).astype(np.float32)
    T = X if cfg.d_out is None else rng.normal(0, 1, (batch, cfg.d_out)).astype(np.float32)
    return X, T


def published_form(cfg: tm.SAEConfig, p: dict[str, np.ndarray], threshold=None) -> dict:
    """SAELens's published parameters of trainable ones: θ = exp(log θ); batchtopk's θ given."""
    out = {k: v for k, v in p.items() if k != "log_threshold"}
    if cfg.architecture == "jumprelu":
        out["threshold"] = np.exp(p["log_threshold"].astype(np.float64)).astype(np.float32)
    if cfg.architecture in BATCHTOPK:
        out["threshold"] = np.asarray(threshold, np.float32)
    return out


# --- NumPy: forward pass and loss terms --------------------------------------------------------


def relu(x):
    return np.maximum(x, 0.0)


def _f64(p: dict) -> dict:
    return {k: np.asarray(v, np.float64) for k, v in p.items()}


def np_encoder_input(cfg, p, X):
    return X - p["b_dec"] if subtracts_b_dec(cfg) else X


def np_topk(pre: np.ndarray, k: int) -> np.ndarray:
    """ReLU of the k largest entries of each row, 0 elsewhere."""
    idx = np.argsort(-pre, axis=-1, kind="stable")[:, :k]
    out = np.zeros_like(pre)
    rows = np.arange(len(pre))[:, None]
    out[rows, idx] = relu(pre[rows, idx])
    return out


def np_batchtopk(pre: np.ndarray, k: int) -> np.ndarray:
    """The k·B largest entries of ReLU(π) over the whole batch, 0 elsewhere."""
    acts = relu(pre)
    keep = k * len(pre)
    if keep >= acts.size:
        return acts
    flat = acts.ravel()
    out = np.zeros_like(flat)
    idx = np.argsort(-flat, kind="stable")[:keep]
    out[idx] = flat[idx]
    return out.reshape(acts.shape)


def np_forward(cfg: tm.SAEConfig, p: dict, X: np.ndarray) -> dict[str, np.ndarray]:
    """The training forward pass on a batch: pre-activations, feature_acts F, reconstruction."""
    p, X = _f64(p), np.asarray(X, np.float64)
    xin = np_encoder_input(cfg, p, X)
    out = {}
    if cfg.architecture == "gated":
        out["gate"] = xin @ p["W_enc"] + p["b_gate"]
        out["pre"] = xin @ (p["W_enc"] * np.exp(p["r_mag"])) + p["b_mag"]
        F = (out["gate"] > 0) * relu(out["pre"])
    else:
        out["pre"] = pre = xin @ p["W_enc"] + p["b_enc"]
        if cfg.architecture == "standard":
            F = relu(pre)
        elif cfg.architecture == "topk":
            F = np_topk(pre, cfg.k)
        elif cfg.architecture in BATCHTOPK:
            F = np_batchtopk(pre, cfg.k)
        else:
            out["threshold"] = theta = np.exp(p["log_threshold"])
            F = pre * (pre > theta)
    out["F"] = F
    out["X_hat"] = F @ p["W_dec"] + p["b_dec"]
    return out


def penalty_weights(cfg: tm.SAEConfig, W_dec: np.ndarray) -> np.ndarray:
    """Σ_sites ‖W_dec,i,site‖ per latent; 1 for a unit-norm decoder."""
    if unit_norm(cfg):
        return np.ones(len(W_dec))
    sites = np.asarray(W_dec, np.float64).reshape(len(W_dec), cfg.n_output_sites, -1)
    return np.linalg.norm(sites, axis=-1).sum(axis=-1)


def np_auxk(cfg, pre, W_dec, residual, dead) -> float:
    """Gao et al.'s AuxK (SAELens's scale): the top k_aux = d_in // 2 dead latents of each example
    (ReLU'd) reconstruct the residual, no bias; × min(n_dead / k_aux, 1)."""
    k_aux = max(1, cfg.d_in // 2)
    n_dead = int(np.sum(dead))
    if n_dead == 0:
        return 0.0
    masked = np.where(dead, pre, -np.inf)
    acts = np_topk(masked, min(k_aux, n_dead))
    e_hat = acts @ W_dec
    return min(n_dead / k_aux, 1.0) * float(np.mean(np.sum((e_hat - residual) ** 2, axis=-1)))


def np_matryoshka_auxk(cfg, pre, F, p, T, dead) -> float:
    """SAELens's calculate_matryoshka_aux_loss: for each group [a, b) of the widths with dead
    latents, its top min(k_aux, n_dead) dead latents reconstruct T − (b_dec + F[:, :b] W_dec[:b]),
    × min(n_dead / k_aux, 1) with the global k_aux = d_in // 2; summed over groups."""
    k_aux = max(1, cfg.d_in // 2)
    total, start = 0.0, 0
    for stop in cfg.matryoshka_widths:
        n_dead = int(np.sum(dead[start:stop]))
        if n_dead:
            residual = T - (F[:, :stop] @ p["W_dec"][:stop] + p["b_dec"])
            masked = np.where(dead[start:stop], pre[:, start:stop], -np.inf)
            acts = np_topk(masked, min(k_aux, n_dead))
            e_hat = acts @ p["W_dec"][start:stop]
            total += min(n_dead / k_aux, 1.0) * float(np.mean(np.sum((e_hat - residual) ** 2, -1)))
        start = stop
    return total


def np_loss_terms(cfg: tm.SAEConfig, p: dict, X, T, dead, coefficients=None,
                  sparsity_scale: float = 1.0) -> tuple[dict[str, float], dict]:
    """Every loss term of a batch (each a batch mean, times its coefficient), and the forward.

    `sparsity_scale` multiplies the sparsity coefficients (l1, l0): the warm-up factor.
    """
    c = COEFFICIENTS if coefficients is None else coefficients
    fwd = np_forward(cfg, p, X)
    p, T = _f64(p), np.asarray(T, np.float64)
    F, X_hat, pre = fwd["F"], fwd["X_hat"], fwd["pre"]
    w = penalty_weights(cfg, p["W_dec"])
    mean = lambda per_example: float(np.mean(per_example))  # noqa: E731
    terms = {"mse": mean(np.sum((X_hat - T) ** 2, axis=-1))}
    arch = cfg.architecture
    if cfg.matryoshka_widths is not None:  # every inner prefix reconstructs on its own
        for width in cfg.matryoshka_widths[:-1]:
            inner = F[:, :width] @ p["W_dec"][:width] + p["b_dec"]
            terms[f"inner_mse_{width}"] = mean(np.sum((inner - T) ** 2, axis=-1))
    if arch == "standard":
        terms["l1"] = sparsity_scale * c["l1_coefficient"] * mean(F @ w)
    elif cfg.use_matryoshka_aux_loss:  # AuxK per group, on its own prefix's residual
        terms["auxk"] = c["aux_loss_coefficient"] * np_matryoshka_auxk(cfg, pre, F, p, T, dead)
    elif arch in ("topk", "batchtopk", "matryoshka_batchtopk"):
        terms["auxk"] = c["aux_loss_coefficient"] * np_auxk(cfg, pre, p["W_dec"], T - X_hat, dead)
    elif arch == "jumprelu":
        theta = fwd["threshold"]
        if cfg.jumprelu_sparsity_loss_mode == "step":
            sparsity = np.sum(pre > theta, axis=-1)
        else:
            sparsity = np.sum(np.tanh(c["jumprelu_tanh_scale"] * F * w), axis=-1)
        terms["l0"] = sparsity_scale * c["l0_coefficient"] * mean(sparsity)
        terms["pre_act"] = c["pre_act_loss_coefficient"] * mean(
            np.sum(relu(theta - pre) * dead * w, axis=-1))
    else:  # gated
        gate_acts = relu(fwd["gate"])
        terms["l1"] = sparsity_scale * c["l1_coefficient"] * mean(gate_acts @ w)
        via_gate = gate_acts @ p["W_dec"] + p["b_dec"]
        terms["aux"] = mean(np.sum((via_gate - T) ** 2, axis=-1))
    return terms, fwd


def np_encode(cfg: tm.SAEConfig, published: dict, x: np.ndarray) -> np.ndarray:
    """SAELens's inference `encode` on published parameters: (..., d_in) -> (..., d_sae)."""
    p = _f64(published)
    x = np.asarray(x, np.float64)
    xin = x - p["b_dec"] if subtracts_b_dec(cfg) else x
    if cfg.architecture == "gated":
        gate = xin @ p["W_enc"] + p["b_gate"]
        magnitude = xin @ (p["W_enc"] * np.exp(p["r_mag"])) + p["b_mag"]
        return (gate > 0) * relu(magnitude)
    pre = xin @ p["W_enc"] + p["b_enc"]
    if cfg.architecture == "standard":
        return relu(pre)
    if cfg.architecture == "topk":
        return np_topk(pre.reshape(-1, pre.shape[-1]), cfg.k).reshape(pre.shape)
    return relu(pre) * (pre > p["threshold"])  # jumprelu, and batchtopk exported as one


def np_decode(published: dict, f: np.ndarray) -> np.ndarray:
    p = _f64(published)
    return np.asarray(f, np.float64) @ p["W_dec"] + p["b_dec"]


# --- decision margins: where float32 and float64 may choose differently -------------------------


def _kth_gap(values: np.ndarray, k: int) -> float:
    """Gap between the k-th and (k+1)-th largest of a 1-D array (inf if there is no (k+1)-th)."""
    s = np.sort(values)[::-1]
    s = s[np.isfinite(s)]
    return float(s[k - 1] - s[k]) if len(s) > k else np.inf


def margin(cfg: tm.SAEConfig, p: dict, X: np.ndarray, dead: np.ndarray,
           bandwidth: float = COEFFICIENTS["jumprelu_bandwidth"]) -> float:
    """How far the batch is from every discrete decision of the forward pass and the estimators
    (a top-k cut, a ReLU kink, a JumpReLU jump, a rectangle kernel's edge)."""
    fwd = np_forward(cfg, p, X)
    pre = fwd["pre"]
    gaps = [np.min(np.abs(pre))]
    if cfg.architecture == "topk":
        gaps += [_kth_gap(row, cfg.k) for row in pre]
    if cfg.architecture in BATCHTOPK:
        acts = relu(pre).ravel()
        keep = cfg.k * len(pre)
        if keep < acts.size and np.sort(acts)[::-1][keep - 1] > 0:
            gaps.append(_kth_gap(acts, keep))
    if cfg.use_matryoshka_aux_loss and dead.any():
        for start, stop in cfg.group_bounds:
            n_dead = int(dead[start:stop].sum())
            if n_dead:
                k_aux = min(max(1, cfg.d_in // 2), n_dead)
                gaps += [_kth_gap(np.where(dead[start:stop], row[start:stop], -np.inf), k_aux)
                         for row in pre]
    elif cfg.architecture in ("topk", *BATCHTOPK) and dead.any():
        k_aux = min(max(1, cfg.d_in // 2), int(dead.sum()))
        gaps += [_kth_gap(np.where(dead, row, -np.inf), k_aux) for row in pre]
    if cfg.architecture == "jumprelu":
        u = (pre - fwd["threshold"]) / bandwidth
        gaps += [np.min(np.abs(u)), np.min(np.abs(np.abs(u) - 0.5))]
    if cfg.architecture == "gated":
        gaps.append(np.min(np.abs(fwd["gate"])))
    return float(min(gaps))


# --- PyTorch: losses with autograd, and the SAELens training recipe ----------------------------


def torch_reference():
    """The PyTorch half of the reference (imported only when torch is installed)."""
    import torch

    def rectangle(u):
        return ((u > -0.5) & (u < 0.5)).to(u)

    class JumpReLU(torch.autograd.Function):
        """x · H(x − θ); ∂/∂x = H(x − θ), ∂/∂θ = −(θ/ε) K((x − θ)/ε), summed over the batch."""

        @staticmethod
        def forward(ctx, x, threshold, bandwidth):
            ctx.save_for_backward(x, threshold)
            ctx.bandwidth = bandwidth
            return x * (x > threshold).to(x)

        @staticmethod
        def backward(ctx, grad):
            x, threshold = ctx.saved_tensors
            eps = ctx.bandwidth
            x_grad = (x > threshold).to(x) * grad
            threshold_grad = torch.sum(-(threshold / eps) * rectangle((x - threshold) / eps) * grad,
                                       dim=0)
            return x_grad, threshold_grad, None

    class Step(torch.autograd.Function):
        """H(x − θ); ∂/∂x = 0, ∂/∂θ = −(1/ε) K((x − θ)/ε), summed over the batch."""

        @staticmethod
        def forward(ctx, x, threshold, bandwidth):
            ctx.save_for_backward(x, threshold)
            ctx.bandwidth = bandwidth
            return (x > threshold).to(x)

        @staticmethod
        def backward(ctx, grad):
            x, threshold = ctx.saved_tensors
            eps = ctx.bandwidth
            kernel = rectangle((x - threshold) / eps)
            threshold_grad = torch.sum(-(1.0 / eps) * kernel * grad, dim=0)
            return None, threshold_grad, None

    def topk(pre, k):
        values, index = pre.topk(k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, index, values.relu())

    def batchtopk(pre, k):
        acts = pre.relu()
        keep = k * pre.shape[0]
        if keep >= acts.numel():
            return acts
        flat = acts.flatten()
        values, index = flat.topk(keep)
        return torch.zeros_like(flat).scatter(-1, index, values).reshape(acts.shape)

    def weights(cfg, W_dec):
        if unit_norm(cfg):
            return torch.ones(W_dec.shape[0], dtype=W_dec.dtype)
        return W_dec.reshape(W_dec.shape[0], cfg.n_output_sites, -1).norm(dim=-1).sum(-1)

    def auxk(cfg, pre, W_dec, residual, dead):
        k_aux = max(1, cfg.d_in // 2)
        n_dead = int(dead.sum())
        if n_dead == 0:
            return pre.new_tensor(0.0)
        masked = torch.where(dead[None], pre, torch.tensor(-torch.inf, dtype=pre.dtype))
        values, index = masked.topk(min(k_aux, n_dead), dim=-1)
        acts = torch.zeros_like(pre).scatter(-1, index, values.relu())
        e_hat = acts @ W_dec
        return min(n_dead / k_aux, 1.0) * (e_hat - residual.detach()).pow(2).sum(-1).mean()

    def loss(cfg, p, X, T, dead, coefficients=None, sparsity_scale=1.0):
        """(total, terms, F, X_hat) of a batch: SAELens 6's losses; the gated aux loss through
        a detached decoder (the paper, and toymodels; SAELens 6.18 does not detach it)."""
        c = COEFFICIENTS if coefficients is None else coefficients
        dead = torch.as_tensor(np.asarray(dead, bool))
        xin = X - p["b_dec"] if subtracts_b_dec(cfg) else X
        arch = cfg.architecture
        if arch == "gated":
            gate = xin @ p["W_enc"] + p["b_gate"]
            pre = xin @ (p["W_enc"] * p["r_mag"].exp()) + p["b_mag"]
            F = (gate > 0).to(X) * pre.relu()
        else:
            pre = xin @ p["W_enc"] + p["b_enc"]
            if arch == "standard":
                F = pre.relu()
            elif arch == "topk":
                F = topk(pre, cfg.k)
            elif arch in BATCHTOPK:
                F = batchtopk(pre, cfg.k)
            else:
                theta = p["log_threshold"].exp()
                F = JumpReLU.apply(pre, theta, c["jumprelu_bandwidth"])
        X_hat = F @ p["W_dec"] + p["b_dec"]
        w = weights(cfg, p["W_dec"])
        terms = {"mse": (X_hat - T).pow(2).sum(-1).mean()}
        # SAELens's _iterable_decode: the prefixes decoded group by group, accumulating
        prefixes, decoded, start = [], p["b_dec"], 0
        for stop in cfg.matryoshka_widths or (cfg.d_sae,):
            decoded = F[:, start:stop] @ p["W_dec"][start:stop] + decoded
            prefixes.append((start, stop, decoded))
            start = stop
        for _, stop, inner in prefixes[:-1]:
            terms[f"inner_mse_{stop}"] = (inner - T).pow(2).sum(-1).mean()
        if arch == "standard":
            terms["l1"] = sparsity_scale * c["l1_coefficient"] * (F * w).sum(-1).mean()
        elif cfg.use_matryoshka_aux_loss:
            terms["auxk"] = c["aux_loss_coefficient"] * sum(
                auxk(cfg, pre[:, a:b], p["W_dec"][a:b], T - inner, dead[a:b])
                for a, b, inner in prefixes)
        elif arch in ("topk", *BATCHTOPK):
            terms["auxk"] = c["aux_loss_coefficient"] * auxk(cfg, pre, p["W_dec"], T - X_hat, dead)
        elif arch == "jumprelu":
            if cfg.jumprelu_sparsity_loss_mode == "step":
                sparsity = Step.apply(pre, theta, c["jumprelu_bandwidth"]).sum(-1)
            else:
                sparsity = torch.tanh(c["jumprelu_tanh_scale"] * F * w).sum(-1)
            terms["l0"] = sparsity_scale * c["l0_coefficient"] * sparsity.mean()
            terms["pre_act"] = c["pre_act_loss_coefficient"] * (
                (theta - pre).relu() * dead.to(X) * w).sum(-1).mean()
        else:
            gate_acts = gate.relu()
            terms["l1"] = sparsity_scale * c["l1_coefficient"] * (gate_acts * w).sum(-1).mean()
            via_gate = gate_acts @ p["W_dec"].detach() + p["b_dec"].detach()
            terms["aux"] = (via_gate - T).pow(2).sum(-1).mean()
        return sum(terms.values()), terms, F, X_hat

    def tensors(p: dict, grad: bool = True) -> dict:
        return {k: torch.tensor(np.asarray(v, np.float64), requires_grad=grad)
                for k, v in p.items()}

    def gradients(cfg, p, X, T, dead, coefficients=None) -> dict[str, np.ndarray]:
        tp = tensors(p)
        total, *_ = loss(cfg, tp, torch.tensor(X, dtype=torch.float64),
                         torch.tensor(T, dtype=torch.float64), dead, coefficients)
        total.backward()
        return {k: (v.grad.numpy() if v.grad is not None else np.zeros(v.shape))
                for k, v in tp.items()}

    def train(cfg, p0, batches, *, lr, since0, coefficients=None, scale=(1.0, 1.0),
              optimizer="adam", max_grad_norm=1.0, b1=0.9, b2=0.999, eps=1e-8):
        """SAELens's training step (float64) from params p0, one step per (X, T) batch.

        The sparsity coefficients warm up over cfg.sparsity_warmup_steps; inputs and targets are
        multiplied by `scale`; latents dead after cfg.dead_feature_window steps without firing.

        Returns {params: final params, loss: (steps,), mse (in the data's units), fvu (about
        the batch mean), l0: (steps,) each step's metrics, grad_norm: (steps,) global gradient
        norms before clipping, since: steps_since_fired, fire_count: firings over the final
        dead_feature_window steps, threshold: BatchTopK's running threshold}.
        """
        c = COEFFICIENTS if coefficients is None else coefficients
        tp = tensors(p0)
        params = list(tp.values())
        opt = (torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps) if optimizer == "adam"
               else torch.optim.SGD(params, lr=lr))
        since = np.array(since0, np.int64)
        fire_count = np.zeros(cfg.d_sae)
        threshold, losses, grad_norms = 0.0, [], []
        metrics = {"mse": [], "fvu": [], "l0": []}
        steps, warmup = len(batches), cfg.sparsity_warmup_steps
        window_start = steps - min(cfg.dead_feature_window, steps)
        for t, (X, T) in enumerate(batches):
            X = torch.tensor(X, dtype=torch.float64) * scale[0]
            T = torch.tensor(T, dtype=torch.float64) * scale[1]
            dead = since > cfg.dead_feature_window
            warm = min(t / warmup, 1.0) if warmup else 1.0
            opt.zero_grad()
            total, _, F, X_hat = loss(cfg, tp, X, T, dead, c, sparsity_scale=warm)
            total.backward()
            losses.append(float(total.detach()))
            err = (X_hat - T).detach().pow(2).sum()
            metrics["mse"].append(float(err) / len(T) / scale[1] ** 2)
            metrics["fvu"].append(float(err / (T - T.mean(0)).pow(2).sum()))
            metrics["l0"].append(float((F > 0).sum()) / len(T))
            with torch.no_grad():
                if unit_norm(cfg):  # remove the radial part of the decoder's gradient
                    W, g = tp["W_dec"], tp["W_dec"].grad
                    w = W / W.norm(dim=-1, keepdim=True)
                    g -= (g * w).sum(-1, keepdim=True) * w
                for v in params:
                    if v.grad is None:
                        v.grad = torch.zeros_like(v)
                grad_norms.append(float(torch.sqrt(sum((v.grad**2).sum() for v in params))))
                if np.isfinite(max_grad_norm):
                    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                opt.step()
                if unit_norm(cfg):
                    tp["W_dec"] /= tp["W_dec"].norm(dim=-1, keepdim=True)
            F = F.detach().numpy()
            fired = np.sum(F > 0, axis=0)
            since = np.where(fired > 0, 0, since + 1)
            if t >= window_start:
                fire_count += fired
            if cfg.architecture in BATCHTOPK and (F > 0).any():
                lr_t = c["topk_threshold_lr"]
                threshold = (1 - lr_t) * threshold + lr_t * F[F > 0].min()
        return {"params": {k: v.detach().numpy() for k, v in tp.items()},
                "loss": np.array(losses), "grad_norm": np.array(grad_norms), "since": since,
                **{name: np.array(values) for name, values in metrics.items()},
                "fire_count": fire_count, "threshold": threshold}

    return types.SimpleNamespace(torch=torch, JumpReLU=JumpReLU, Step=Step, loss=loss,
                                 tensors=tensors, gradients=gradients, train=train)
