"""Annealed importance sampling (AIS) for log Z of a dense RBM: Salakhutdinov & Murray (2008).

Intermediate distributions, hidden units summed out (S&M §4.1, eq. 14–15):
    log p*_β(v) = (1 − β)·a0·v + β·a·v + Σ_j Σ_n softplus(β·(x_j − o_n)),   x = b + vW,
from the base-rate model A (β = 0: visible biases a0, zero weights and hidden biases) to the
target B (β = 1: −F_exact(v), the copies model of the hidden units with offsets o_n; o = 0 for
binary units). β multiplies the whole energy, offsets included, so A's hidden part is H·N fair
coins: log Z_A = Σ_i softplus(a0_i) + H·N·log 2.
One run: v_1 ~ p_A; for k = 1..K−1: log w += log p*_{β_k}(v_k) − log p*_{β_{k−1}}(v_k), then
v_{k+1} ~ T_{β_k}(v_k), one Gibbs step of the β_k-scaled RBM. log Ẑ_B = log Z_A + log mean(w).
Reverse AIS runs the same chain from samples of B down to A (Burda, Grosse & Salakhutdinov
2015): it errs high where forward AIS errs low, so the two bracket log Z in practice.

Visible units must be binary (N_v = 1; any k and g, since the energy's visible term is a·v and
p(v_i = 1 | h) = σ(a_i + (Wh)_i) in the model F(v) defines). A multinary visible unit (0..N_v) cannot be handled:
the energy of its N_v copies depends on *which* copies are on (offsets o_n), not only on the
total v that the data and F(v) see, so p(v) is not exp(−F(v))/Z of a model AIS can anneal.
Dense layers only: conv RBMs raise RbmError.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from rbmcli.errors import RbmError
from rbmcli.eval.partition import MAX_ENUM, exact_log_partition, log_likelihood
from rbmcli.model.rbm import RBM

Progress = Callable[[int, int], None]  # progress(done, total) in annealing steps


@dataclass(kw_only=True)
class AisResult:
    """An AIS estimate of log Z with S&M's ±3σ interval (σ the std of the estimator Ẑ)."""

    log_z: float  # log Ẑ_B
    log_z_low: float  # log(Ẑ − 3σ̂); −inf when the interval reaches 0
    log_z_high: float  # log(Ẑ + 3σ̂)
    log_weights: torch.Tensor  # (n_runs,) float64 log w of each run, on the CPU
    seconds: float
    log_z_base: float  # closed-form log Z_A of the base-rate model


SM_BETAS = 14_501  # Salakhutdinov & Murray's schedule length


def default_betas(n: int = SM_BETAS) -> torch.Tensor:
    """n ≥ 4 inverse temperatures in S&M's proportions, float64 (n,): 500/14,501 of them evenly
    in [0, 0.5), 4,000/14,501 in [0.5, 0.9) and the rest in [0.9, 1], ending at 1. n = 14,501
    is their schedule: 500, 4,000 and 10,001."""
    if n < 4:
        raise RbmError(f"an AIS schedule needs at least 4 inverse temperatures, got {n}", usage=True)
    first, second = max(round(n * 500 / SM_BETAS), 1), max(round(n * 4000 / SM_BETAS), 1)
    f64 = dict(dtype=torch.float64)
    return torch.cat([torch.linspace(0, 0.5, first + 1, **f64)[:-1], torch.linspace(0.5, 0.9, second + 1, **f64)[:-1],
                      torch.linspace(0.9, 1, n - first - second, **f64)])


def base_rate_biases(v_data: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """a0 = logit(p), p = (Σ_n v_n + α)/(n + 2α): the base-rate model's visible biases, (V,).

    v_data: (n, V) (or (n, C, H, W), flattened) binary values or probabilities in [0, 1]."""
    v = torch.as_tensor(v_data).reshape(len(v_data), -1).double()
    if smoothing <= 0 and ((v.sum(0) == 0) | (v.sum(0) == len(v))).any():
        raise RbmError("a pixel is constant in the data: base-rate biases need smoothing > 0")
    p = (v.sum(0) + smoothing) / (len(v) + 2 * smoothing)
    return torch.logit(p)


def base_log_partition(base_a: torch.Tensor, hidden_copies: int) -> float:
    """log Z_A = Σ_i softplus(a0_i) + (H·N)·log 2 (zero weights, zero hidden biases)."""
    return float(F.softplus(base_a.double()).sum()) + hidden_copies * math.log(2.0)


def _check_supported(rbm: RBM) -> None:
    if not rbm.spec.is_dense:
        raise RbmError("AIS supports dense RBM layers only, not conv layers")
    if rbm.spec.visible_units.n != 1:
        raise RbmError(
            f"AIS needs binary visible units, got N_v = {rbm.spec.visible_units.n}: the copies of a "
            "multinary visible unit are not identifiable from its value v, so p(v) has no free energy to anneal")


def _log_p_star_step(v, d, a, a0, *, beta_prev, beta):
    """log p*_β(v) − log p*_β'(v) per run, (M,); d = x − o of shape (M, H, N)."""
    dv = v @ (a - a0)  # (M,)
    return (beta - beta_prev) * dv + (F.softplus(beta * d) - F.softplus(beta_prev * d)).sum((1, 2))


def _gibbs(v, d, W, a, a0, *, beta, generator):
    """One Gibbs step of p_β: copies c ~ Bernoulli(σ(β(x − o))), h = Σ_n c; then
    v ~ Bernoulli(σ((1 − β)a0 + β(a + hWᵀ)))."""
    p_h = torch.sigmoid(beta * d)  # (M, H, N)
    h = (torch.rand(p_h.shape, generator=generator, device=d.device, dtype=d.dtype) < p_h).sum(-1).to(d.dtype)
    p_v = torch.sigmoid((1 - beta) * a0 + beta * (a + h @ W.t()))  # (M, V)
    return (torch.rand(p_v.shape, generator=generator, device=d.device, dtype=d.dtype) < p_v).to(d.dtype)


def _interval(log_w: torch.Tensor) -> tuple[float, float, float]:
    """(log mean w, log(mean w − 3σ̂), log(mean w + 3σ̂)), σ̂ = std(w)/√M, computed after
    shifting by max log w so that no weight overflows."""
    m = log_w.max()
    w = torch.exp(log_w - m)
    mean = w.mean()
    sigma = w.std() / math.sqrt(len(w)) if len(w) > 1 else torch.zeros((), dtype=w.dtype)
    low = mean - 3 * sigma
    return (float(m + mean.log()), float(m + low.log()) if low > 0 else -math.inf, float(m + (mean + 3 * sigma).log()))


def _betas(betas) -> list[float]:
    betas = (default_betas() if betas is None else torch.as_tensor(betas, dtype=torch.float64)).tolist()
    if len(betas) < 2 or betas[0] != 0 or betas[-1] != 1 or any(x > y for x, y in zip(betas, betas[1:])):
        raise RbmError("AIS betas must increase from 0 to 1 (at least two values)")
    return betas


def _params(rbm: RBM, base_a, device):
    """Physical (W, a, b), base biases a0 and hidden offsets o, all float64 on device."""
    _check_supported(rbm)
    W, a, b = (t.detach().to(device, torch.float64) for t in rbm.physical())  # (V, H), (V,), (H,)
    a0 = torch.as_tensor(base_a).to(device, torch.float64)
    if a0.shape != a.shape:
        raise RbmError(f"base-rate biases have shape {tuple(a0.shape)}, the RBM has {tuple(a.shape)} visible units")
    return W, a, b, a0, rbm.spec.hidden_units.offsets(device, torch.float64)  # o: (N,)


def _anneal(v, betas, *, W, a, b, a0, o, generator, progress) -> torch.Tensor:
    """Σ_k log p*_{β_k}(v_k) − log p*_{β_{k−1}}(v_k) per run, v_{k+1} ~ T_{β_k}(v_k), (M,).
    Forward AIS runs β from 0 to 1 (v_1 ~ p_A), reverse AIS from 1 to 0 (v_1 ~ p_B)."""
    log_w = torch.zeros(len(v), dtype=torch.float64, device=v.device)
    total = len(betas) - 1
    for k in range(1, len(betas)):
        d = (b + v @ W).unsqueeze(-1) - o  # x − o_n, (M, H, N)
        log_w += _log_p_star_step(v, d, a, a0, beta_prev=betas[k - 1], beta=betas[k])
        if k < total:
            v = _gibbs(v, d, W, a, a0, beta=betas[k], generator=generator)
        if progress is not None and (k % 500 == 0 or k == total):
            progress(k, total)
    return log_w


@torch.no_grad()
def ais_log_partition(rbm: RBM, base_a: torch.Tensor, n_runs: int = 100, *, betas: torch.Tensor | None = None,
                      generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                      progress: Progress | None = None) -> AisResult:
    """Estimate log Z of a dense RBM (binary visible; binary or copies-model multinary hidden
    units) by AIS from the base-rate model with visible biases base_a, in float64.

    betas: increasing from 0 to 1 (default `default_betas()`); n_runs chains run as one batch.
    generator must live on `device` (None: torch's default generator). E[Ẑ] = Z, so log Ẑ
    tends to *under*estimate log Z (Jensen)."""
    betas, start = _betas(betas), time.perf_counter()
    W, a, b, a0, o = _params(rbm, base_a, device)
    log_z_a = base_log_partition(a0, W.shape[1] * len(o))
    p0 = torch.sigmoid(a0).expand(n_runs, -1)
    v = (torch.rand(p0.shape, generator=generator, device=device, dtype=torch.float64) < p0).double()  # v_1 ~ p_A
    log_w = _anneal(v, betas, W=W, a=a, b=b, a0=a0, o=o, generator=generator, progress=progress)
    rel, low, high = _interval(log_w)
    return AisResult(log_z=log_z_a + rel, log_z_low=log_z_a + low, log_z_high=log_z_a + high, log_weights=log_w.cpu(), seconds=time.perf_counter() - start, log_z_base=log_z_a)


@torch.no_grad()
def reverse_ais_log_partition(rbm: RBM, base_a: torch.Tensor, v_start: torch.Tensor,
                              *, betas: torch.Tensor | None = None, generator: torch.Generator | None = None,
                              device: str | torch.device = "cpu", progress: Progress | None = None) -> AisResult:
    """Reverse AIS: anneal from samples v_start (M, V) of the target down to the base model;
    the mean weight estimates Z_A/Z_B, so log Ẑ_B = log Z_A − log mean(w) tends to
    *over*estimate log Z (a stochastic upper bound when v_start are exact samples of p_B;
    with samples from a finite Gibbs chain it is only approximate)."""
    betas, start = _betas(betas)[::-1], time.perf_counter()
    W, a, b, a0, o = _params(rbm, base_a, device)
    log_z_a = base_log_partition(a0, W.shape[1] * len(o))
    v = torch.as_tensor(v_start).reshape(len(v_start), -1).to(device, torch.float64)
    log_w = _anneal(v, betas, W=W, a=a, b=b, a0=a0, o=o, generator=generator, progress=progress)
    rel, low, high = _interval(log_w)
    return AisResult(log_z=log_z_a - rel, log_z_low=log_z_a - high, log_z_high=log_z_a - low, log_weights=log_w.cpu(), seconds=time.perf_counter() - start, log_z_base=log_z_a)


def _exact_possible(rbm: RBM) -> bool:
    s = rbm.spec
    binary = all(u.n == 1 and u.k == 1 and u.activation == "sigmoid" for u in (s.visible_units, s.hidden_units))
    return s.is_dense and binary and min(s.visible_shape[0], s.hidden) <= MAX_ENUM


def ais_log_likelihood(rbm: RBM, v_test: torch.Tensor, base_a: torch.Tensor | None = None, *, smoothing: float = 1.0,
                       n_runs: int = 100, betas: torch.Tensor | None = None,
                       generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                       progress: Progress | None = None) -> dict:
    """Mean test log-likelihood in nats, mean(−F_exact(v)) − log Z, with log Z exact
    (enumeration) when both sides are binary and min(V, H) ≤ MAX_ENUM, else by AIS.

    base_a: base-rate biases, best from the training data; None uses v_test's base rate
    (only the AIS proposal: the estimate of Z stays unbiased for any a0).
    Returns {mean_log_likelihood, low, high, log_z, method}; low/high come from AIS's ±3σ."""
    v = torch.as_tensor(v_test).reshape(len(v_test), -1).double()
    mean_neg_f = float(log_likelihood(rbm, v, 0.0).mean())  # mean −F_exact(v)
    if _exact_possible(rbm):
        log_z = exact_log_partition(rbm)
        ll = mean_neg_f - log_z
        return dict(mean_log_likelihood=ll, low=ll, high=ll, log_z=log_z, method="exact")
    base_a = base_rate_biases(v, smoothing) if base_a is None else base_a
    res = ais_log_partition(rbm, base_a, n_runs, betas=betas, generator=generator, device=device, progress=progress)
    return dict(mean_log_likelihood=mean_neg_f - res.log_z, low=mean_neg_f - res.log_z_high,
                high=mean_neg_f - res.log_z_low, log_z=res.log_z, method="ais")
