"""Parallel tempering in one RBM: K Gibbs chains at inverse temperatures 1 = β_0 > … > β_{K−1}
that trade states with their neighbours (Swendsen & Wang 1986; for RBMs Desjardins et al. 2010).

Tempered model: p_β(v, h) ∝ exp(−β E(v, h)) with the layer's energy E = −a·v − b·h − (v − μ)Wh
(μ the centering offset, folded into b − μW: no constant term, so scaling E scales every
parameter). Its conditionals are the layer's own at β times the pre-activation: for a unit
k·Binomial(M, σ(kx)) the weight of k·c is C(M, c)·exp(β·x·k·c), i.e. k·Binomial(M, σ(kβx)),
the unit sampler at βx (the base measure C(M, c) is not an energy and stays). Marginal of v:
p_β(v) ∝ B(v)·exp(−F_β(v)), with
    F_β(v) = −β a·v − Σ_j (N_h/k_h)·softplus(k_h β x_j) = −β a·v − Σ_j ∫^{βx_j} f_h,
which is *not* β·F(v) (softplus(βx) ≠ β softplus(x)), and B(v) = Π_i C(M_v, v_i/k_v) the same
for every β.

Swap. Chains i and j hold v_i at β_i and v_j at β_j; exchanging them is accepted with the
Metropolis probability of the product target p_βi(v_i)·p_βj(v_j):
    r = p_βi(v_j) p_βj(v_i) / (p_βi(v_i) p_βj(v_j)),
    log r = F_βi(v_i) + F_βj(v_j) − F_βi(v_j) − F_βj(v_i)        (B(v) cancels).
Were F_β = β F (a tempered marginal) this is the familiar (β_i − β_j)(F(v_i) − F(v_j)).
Neighbours (k, k + 1) are tried for even k on even steps and odd k on odd steps (all pairs
of one parity at once: they are disjoint; sampling alternates, training draws the parity).

Units: tempering by βx is exact for units with a whole number M = N/k ≤ EXACT_MAX of trials
and g = σ (binary units, and every top RBM of the generate recipe, whose binary top gives
M = 1 on both sides); other units are refused (check_units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rbmcli.errors import RbmError
from rbmcli.model.rbm import RBM, LayerSpec

# K and β_min of `rbm sample --sampler pt` and `--negatives pt` (docs/performance.md,
# docs/results.md: measured on the default model).
DEFAULT_TEMPERATURES = 4
DEFAULT_BETA_MIN = 0.8


def ladder(k: int, beta_min: float = DEFAULT_BETA_MIN) -> tuple[float, ...]:
    """β_i = β_min^(i/(K−1)), i = 0..K−1: geometric from 1 down to β_min (K = 1: (1,)). A
    geometric ladder keeps neighbouring ratios β_i/β_{i+1} equal, which gives equal swap rates
    where the energy's spread σ_E grows like 1/β (a constant heat capacity β²σ_E²)."""
    if int(k) != k or k < 1 or not 0 < beta_min < 1:
        raise RbmError(f"need K >= 1 temperatures and 0 < beta_min < 1, got K={k}, beta_min={beta_min}", usage=True)
    return tuple(1.0 if k == 1 else beta_min ** (i / (k - 1)) for i in range(int(k)))


def check_units(spec: LayerSpec) -> None:
    """Raise RbmError unless both unit families temper exactly by βx (see the module docstring)."""
    for side, units in (("visible", spec.visible_units), ("hidden", spec.hidden_units)):
        if units.binomial_trials() is None:
            raise RbmError(f"parallel tempering needs binomial units in the top RBM (sigmoid, N/k a whole number "
                           f"<= 16, e.g. binary units or the generate recipe's binary top); its {side} units are "
                           f"N={units.n} k={units.k:.4g} {units.activation}: sample with --sampler gibbs, "
                           f"train with --negatives pcd", usage=True)


def start_state(v: torch.Tensor, k: int) -> torch.Tensor:
    """K copies of the visible state v (B, *visible_shape): the PT state (K, B, *visible_shape)."""
    return v.unsqueeze(0).repeat(k, *([1] * v.dim()))


def _per_chain(betas: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """β (K,) viewed to broadcast against a (K, B, ...) tensor."""
    return betas.view(-1, *([1] * (like.dim() - 1)))


def stacked(fn, v: torch.Tensor) -> torch.Tensor:
    """fn on (K·B, ...) for a (K, B, ...) tensor, reshaped back to (K, B, ...)."""
    out = fn(v.flatten(0, 1))
    return out.view(v.shape[0], v.shape[1], *out.shape[1:])


def tempered_free_energy(rbm: RBM, av: torch.Tensor, x: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """F_β(v) = −β a·v − Σ_j ∫^{βx_j} f_h for states with visible terms av = a·v (P, B) and
    hidden inputs x = b + (v − μ)W (P, B, *hidden_shape), at β (P,): shape (P, B)."""
    b = betas.view(-1, 1)
    return -b * av - rbm.spec.hidden_units.integral(_per_chain(betas, x) * x).flatten(2).sum(2)


def swap_log_ratio(f_ii: torch.Tensor, f_jj: torch.Tensor, f_ij: torch.Tensor, f_ji: torch.Tensor) -> torch.Tensor:
    """log r = F_βi(v_i) + F_βj(v_j) − F_βi(v_j) − F_βj(v_i), with f_ab = F_βa(v_b); any shape."""
    return f_ii + f_jj - f_ij - f_ji


@dataclass
class SwapCounts:
    """Accepted and attempted swaps between temperatures i and i + 1, (K − 1,) tensors on the
    chains' device: adding to them never waits for the device; `rates` reads them once."""

    accepted: torch.Tensor
    attempted: torch.Tensor

    @classmethod
    def zeros(cls, k: int, device=None) -> "SwapCounts":
        return cls(torch.zeros(max(k - 1, 0), device=device), torch.zeros(max(k - 1, 0), device=device))

    def rates(self) -> list[float]:
        """Acceptance rate of each neighbouring pair (nan where none was tried)."""
        return [a / t if t else math.nan for a, t in zip(self.accepted.tolist(), self.attempted.tolist())]


def swap_neighbours(rbm: RBM, v: torch.Tensor, x: torch.Tensor, betas: torch.Tensor, parity,
                    generator: torch.Generator | None, counts: SwapCounts | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Try the swaps (k, k + 1) for every k of the given parity in each of the B replica sets of
    v (K, B, *visible_shape) with hidden inputs x (K, B, *hidden_shape); returns both permuted.
    parity: an int (only those pairs are evaluated), or a 0-dim tensor that stays on the device
    (every pair is evaluated, the others masked). K = 2 tries its one pair always."""
    K, B = v.shape[:2]
    if K < 2:
        return v, x
    host = isinstance(parity, int)
    lo = torch.arange(parity % 2 if host and K > 2 else 0, K - 1, 2 if host else 1, device=v.device)
    hi = lo + 1
    tried = torch.ones_like(lo, dtype=torch.bool) if host else (lo % 2 == parity) | (K == 2)  # (P,)
    av = stacked(rbm.visible_term, v)  # (K, B)
    f = lambda t, s: tempered_free_energy(rbm, av[s], x[s], betas[t])  # F_β[t](v[s]), (P, B)
    log_r = swap_log_ratio(f(lo, lo), f(hi, hi), f(lo, hi), f(hi, lo))  # (P, B)
    u = torch.rand(log_r.shape, generator=generator, device=v.device, dtype=log_r.dtype)
    accept = (u.log() < log_r) & tried.unsqueeze(1)  # (P, B): u < min(1, r)
    if counts is not None:
        counts.accepted.index_add_(0, lo, accept.sum(1).to(counts.accepted.dtype))
        counts.attempted.index_add_(0, lo, tried.to(counts.attempted.dtype) * B)
    # chain k takes k + 1 where pair k swapped, k − 1 where pair k − 1 did (pairs are disjoint)
    step = torch.zeros(K, B, dtype=torch.long, device=v.device)
    step.index_add_(0, lo, accept.long()).index_add_(0, hi, -accept.long())
    perm = torch.arange(K, device=v.device).unsqueeze(1) + step  # (K, B)
    cols = torch.arange(B, device=v.device)
    return v[perm, cols], x[perm, cols]


def tempered_hidden(rbm: RBM, x: torch.Tensor, betas: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """h ~ p_β(h | v) = the hidden sampler at βx, x (K, B, *hidden_shape), same shape."""
    return rbm.spec.hidden_units.sample(_per_chain(betas, x) * x, generator)


def tempered_visible(rbm: RBM, h: torch.Tensor, betas: torch.Tensor, generator: torch.Generator | None,
                     mean: bool = False) -> torch.Tensor:
    """v ~ p_β(v | h) (or E_β[v | h] if mean) for h (K, B, *hidden_shape): (K, B, *visible_shape)."""
    y = stacked(rbm.visible_input, h)
    y = _per_chain(betas, y) * y
    units = rbm.spec.visible_units
    return units.mean(y) if mean else units.sample(y, generator)


def pt_step(rbm: RBM, v: torch.Tensor, x: torch.Tensor, betas: torch.Tensor, parity,
            generator: torch.Generator | None, counts: SwapCounts | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One PT step on (v, x = hidden_input(v)): a block-Gibbs step at every temperature, then
    the swaps of the pairs (k, k + 1) with k of that parity. Returns the new (v, x)."""
    v = tempered_visible(rbm, tempered_hidden(rbm, x, betas, generator), betas, generator)
    x = stacked(rbm.hidden_input, v)
    return swap_neighbours(rbm, v, x, betas, parity, generator, counts)


@torch.no_grad()
def pt_chain(rbm: RBM, state: torch.Tensor, steps: int, generator: torch.Generator | None,
             betas: torch.Tensor, counts: SwapCounts | None = None) -> torch.Tensor:
    """`steps` PT steps from state (K, B, *visible_shape), β (K,) with β_0 = 1; returns the new
    state, whose state[0] is a draw of the RBM itself. Each step's parity is a fair coin drawn
    on the device (a persistent chain continued one step per update cannot alternate by a
    counter it does not keep; a random parity is a mixture of two reversible moves)."""
    x = stacked(rbm.hidden_input, state)
    for _ in range(steps):
        parity = torch.randint(0, 2, (), generator=generator, device=state.device)
        state, x = pt_step(rbm, state, x, betas, parity, generator, counts)
    return state
