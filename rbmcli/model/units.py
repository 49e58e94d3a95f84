"""Unit families: binary (N = 1) and multinary (0..N) units with mean f(x) = N·g(kx).

Paper §3.2: a multinary unit is N binary copies sharing weights, copy n with offset
o_n = f⁻¹(n − ½). Then E[h] = Σ_n σ(x − o_n) ≈ f(x), Var[h] ≈ f'(x) = N·k·g'(kx), and
the free-energy term Σ_n softplus(x − o_n) ≈ ∫^x f = (N/k)·G(kx), G the antiderivative of g
with G(−∞) = 0 (eq. 5–6). With N = 1, k = 1, g = σ every formula is the binary RBM's.

All functions take the *physical* pre-activation x (the paper's b + vW) of any shape.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from rbmcli.errors import RbmError

# Units of N ≤ EXACT_MAX are sampled exactly as a sum of N Bernoulli copies; larger N use the
# moment-matched Gaussian (NReLU trick): the copies cost N× the memory of the layer.
EXACT_MAX = 16


class _Softplus(torch.autograd.Function):
    """softplus(u) = max(u, 0) − log σ(|u|), gradient σ(u). Same values as F.softplus (within
    float32 rounding) at a fraction of its cost on the CPU (measured 85 vs 311 µs on 128×500),
    where it was a tenth of a training step."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return torch.sigmoid(u.abs()).log_().neg_().add_(u.clamp_min(0))

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * torch.sigmoid(u)


def softplus(u: torch.Tensor) -> torch.Tensor:
    """log(1 + e^u), the antiderivative of σ with softplus(−∞) = 0."""
    return _Softplus.apply(u)


def _times(c: float, t: torch.Tensor) -> torch.Tensor:
    """c·t, skipping the multiplication (and its backward) when c = 1 (binary units)."""
    return t if c == 1 else c * t


def _clip_integral(u: torch.Tensor) -> torch.Tensor:
    """G(u) = ∫_{-∞}^u clamp(t, 0, 1) dt: 0 below 0, u²/2 on [0, 1], u − ½ above."""
    c = u.clamp(0.0, 1.0)
    return 0.5 * c * c + (u - 1.0).clamp_min(0.0)


# Each activation g: (g, G = ∫g with G(−∞) = 0, g', g⁻¹ on (0, 1)).
ACTIVATIONS = {
    # The paper's choice: bounded, smooth.
    "sigmoid": (
        torch.sigmoid,
        softplus,
        lambda u: torch.sigmoid(u) * (1 - torch.sigmoid(u)),
        lambda p: math.log(p / (1 - p)),
    ),
    # Capped ReLU, g(u) = clamp(u, 0, 1): with k = 1/N the offsets are n − ½, equally spaced,
    # i.e. Nair & Hinton's NReLU truncated at N (paper eq. 2).
    "relu": (
        lambda u: u.clamp(0.0, 1.0),
        _clip_integral,
        lambda u: ((u > 0) & (u < 1)).to(u.dtype),
        lambda p: p,
    ),
}


def balanced_k(visible_n: int, hidden: "Units") -> float:
    """k of a layer's visible units that gives them the hidden units' number of trials M = N/k:
    k_v = k_h·N_v/N_h. Equal trials make the layer balanced (rbm.py: c = sqrt(M_v/M_h) = 1): a
    weight then moves visible and hidden pre-activations alike. A layer with M_v ≫ M_h (e.g.
    0..255 pixels at k = 4/N over binary hidden units, c = 127.5) cannot be trained: any weight
    large enough to move the visible units saturates the hidden ones."""
    return hidden.k * visible_n / hidden.n


def default_k(n: int, activation: str) -> float:
    """k used when none is given: 1 for binary sigmoid units (exactly the binary RBM),
    4/N for multinary sigmoid units (f'(0) = 1, and the copies approximation holds within
    0.45 of N = 255), 1/N for capped ReLU units (offsets spaced by 1, NReLU)."""
    if activation == "relu":
        return 1.0 / n
    return 1.0 if n == 1 else 4.0 / n


def _moment_matched(mean: torch.Tensor, var: torch.Tensor, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """An integer draw in 0..n with the given mean and (about) the given variance, same shape.

    Where var ≥ ¼: round(mean + sqrt(var − 1/12)·ε), ε ~ N(0, 1); rounding adds 1/12 to the
    variance (Sheppard's correction), which the smaller Gaussian leaves out. Below ¼ the Gaussian
    is too narrow for that: floor(mean) + Bernoulli(frac(mean)), the integer draw with exactly
    that mean and the least variance, frac·(1 − frac). Clamped to [0, n]."""
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    wide = (mean + (var - 1 / 12).clamp_min(0).sqrt() * eps).round()
    low = mean.floor()
    u = torch.rand(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    narrow = low + (u < mean - low).to(mean.dtype)
    return torch.where(var >= 0.25, wide, narrow).clamp(0, n)


TABLE_POINTS = 16384  # grid of the tabulated copies moments (interpolation error < 1e-3 for N = 255)


@functools.lru_cache(maxsize=32)
def _copies_table(units: "Units") -> tuple[float, float, torch.Tensor]:
    """(x₀, step, table (G, 4)): the copies model's mean and variance on a grid of x from 30 below
    the first offset to 30 above the last, where they are 0 and N to within 1e-13, and their
    slopes to the next grid point (0 at the last)."""
    o = _offsets(units)  # (N,) float64
    inv = ACTIVATIONS[units.activation][3]  # the ends of the grid as Python numbers: no tensor is read
    lo, hi = inv(0.5 / units.n) / units.k - 30, inv((units.n - 0.5) / units.n) / units.k + 30
    x = torch.linspace(lo, hi, TABLE_POINTS, dtype=torch.float64)
    p = torch.sigmoid(x.unsqueeze(-1) - o)  # (G, N)
    values = torch.stack([p.sum(-1), (p * (1 - p)).sum(-1)], -1)  # (G, 2)
    slopes = torch.cat([values[1:] - values[:-1], torch.zeros(1, 2, dtype=values.dtype)])  # (G, 2)
    return lo, (hi - lo) / (TABLE_POINTS - 1), torch.cat([values, slopes], -1).float()  # (G, 4)


def _table_values(units: "Units") -> torch.Tensor:
    return _copies_table(units)[2]


@functools.lru_cache(maxsize=64)
def _on_device(make, units: "Units", device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """make(units) (a small constant tensor) on device as dtype, built once: a sampler step
    then copies nothing from the host (no synchronisation on a GPU). Built outside inference
    mode, so that autograd may use it later."""
    with torch.inference_mode(False), torch.no_grad():
        return make(units).to(device=device, dtype=dtype)


def copies_moments(units: "Units", x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_n σ(x − o_n), Σ_n σ(x − o_n)(1 − σ(x − o_n))): the copies model's mean and variance,
    each of x's shape, by linear interpolation in a table (one per unit family): O(1) per unit
    where the sums cost O(N) and N× the memory."""
    x0, step, _ = _copies_table(units)
    table = _on_device(_table_values, units, x.device, torch.float32)
    t = ((x - x0) / step).clamp(0, TABLE_POINTS - 1)
    i = t.long()
    row = table[i]  # (*x.shape, 4): value and slope of the mean and the variance at grid point i
    w = t - i
    return (row[..., 0] + w * row[..., 2]).to(x.dtype), (row[..., 1] + w * row[..., 3]).to(x.dtype)


def _offsets(units: "Units") -> torch.Tensor:
    inv = ACTIVATIONS[units.activation][3]
    return torch.tensor([inv((i + 0.5) / units.n) / units.k for i in range(units.n)], dtype=torch.float64)


@dataclass(frozen=True)
class Units:
    """A unit family: values 0..n, mean f(x) = n·g(kx)."""

    n: int = 1  # maximum value N of a unit (1 = binary)
    k: float = 1.0  # scale of the pre-activation inside g
    activation: str = "sigmoid"  # a key of ACTIVATIONS

    @classmethod
    def make(cls, n: int = 1, k: float | None = None, activation: str = "sigmoid") -> "Units":
        """Validated constructor; k = None picks `default_k`."""
        if activation not in ACTIVATIONS:
            raise RbmError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}", usage=True)
        if int(n) != n or n < 1:
            raise RbmError(f"units N must be an integer >= 1, got {n}", usage=True)
        k = default_k(int(n), activation) if k is None else float(k)
        if not k > 0 or not math.isfinite(k):
            raise RbmError(f"k must be a positive number, got {k}", usage=True)
        return cls(int(n), k, activation)

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = N·g(kx): mean activity, same shape as x, values in [0, N]."""
        return _times(self.n, ACTIVATIONS[self.activation][0](_times(self.k, x)))

    def natural_input(self, mean: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        """k·x such that f(x) = mean: g⁻¹(mean/N), with mean/N clipped to [eps, 1 − eps] so that
        a unit that is always 0 (or N) gets a large finite input. Same shape as mean."""
        p = (mean / self.n).clamp(eps, 1 - eps)
        return torch.logit(p) if self.activation == "sigmoid" else p

    def integral(self, x: torch.Tensor) -> torch.Tensor:
        """∫_{-∞}^x f = (N/k)·G(kx): one hidden unit's free-energy term (eq. 5)."""
        return _times(self.n / self.k, ACTIVATIONS[self.activation][1](_times(self.k, x)))

    def variance(self, x: torch.Tensor) -> torch.Tensor:
        """f'(x) = N·k·g'(kx) ≈ Var[h | x] of the copies model."""
        return _times(self.n * self.k, ACTIVATIONS[self.activation][2](_times(self.k, x)))

    def offsets(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """o_n = f⁻¹(n − ½) = g⁻¹((n − ½)/N)/k for n = 1..N, shape (N,); built once per device
        and dtype (do not modify it)."""
        return _on_device(_offsets, self, torch.device(device or "cpu"), dtype)

    def copies_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_n σ(x − o_n): the exact mean of the copies model, same shape as x."""
        return torch.sigmoid(x.unsqueeze(-1) - self.offsets(x.device, x.dtype)).sum(-1)

    def copies_variance(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_n σ(x − o_n)(1 − σ(x − o_n)): the exact variance of the copies model."""
        p = torch.sigmoid(x.unsqueeze(-1) - self.offsets(x.device, x.dtype))
        return (p * (1 - p)).sum(-1)

    def copies_integral(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_n softplus(x − o_n): the exact free-energy term of the copies model (§3.2)."""
        return softplus(x.unsqueeze(-1) - self.offsets(x.device, x.dtype)).sum(-1)

    @property
    def trials(self) -> float:
        """M = N/k: the number of Bernoulli trials the unit behaves like (its noise level).

        For g = σ the integral free energy M·softplus(kx) is exactly the log-normaliser of
        v = k·Binomial(M, σ(kx)) when M is a whole number: mean N·σ(kx) = f(x), variance
        N·k·σ'(kx) = f'(x). A binary unit has M = 1; N = 255 at k = 4/N has M ≈ 16,256 (a
        nearly deterministic unit, std ≤ 1 level); N = 255 at k = 255 has M = 1 (values 0 or 255)."""
        return self.n / self.k

    def binomial_trials(self) -> int | None:
        """M when the unit is exactly k·Binomial(M, σ(kx)) with a small whole M (≤ EXACT_MAX), else None."""
        m = round(self.trials)
        ok = self.activation == "sigmoid" and 1 <= m <= EXACT_MAX and abs(self.trials - m) < 1e-6 * m
        return m if ok else None

    def sample(self, x: torch.Tensor, generator: torch.Generator | None = None, exact: bool | None = None) -> torch.Tensor:
        """A draw of the units given x, values in [0, N], same shape as x.

        Binomial (g = σ with a whole number M = N/k ≤ EXACT_MAX of trials): k·Σ_m Bernoulli(σ(kx)),
        the exact distribution of the integral free energy (N = 1, k = 1: the binary unit).
        Copies (otherwise, N ≤ EXACT_MAX by default): Σ_n Bernoulli(σ(x − o_n)).
        Moment-matched (larger N): an integer draw with the copies model's mean and variance
        (copies_moments; _moment_matched) — the model whose exact likelihood AIS reports.
        """
        m = self.binomial_trials()
        if m is not None and exact is not False:
            p = torch.sigmoid(_times(self.k, x)).unsqueeze(-1).expand(*x.shape, m)
            draws = (torch.rand(p.shape, generator=generator, device=x.device, dtype=x.dtype) < p).sum(-1)
            return _times(self.k, draws.to(x.dtype))
        if exact is None:
            exact = self.n <= EXACT_MAX
        if exact:
            p = torch.sigmoid(x.unsqueeze(-1) - self.offsets(x.device, x.dtype))
            return (torch.rand(p.shape, generator=generator, device=x.device, dtype=x.dtype) < p).sum(-1).to(x.dtype)
        mean, var = copies_moments(self, x)
        return _moment_matched(mean, var, self.n, generator)
