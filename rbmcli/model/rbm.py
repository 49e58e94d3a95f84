"""One RBM layer: a connection (dense or convolutional) between two unit families.

Energy (paper eq. 1, with multinary copies §3.2):  E(v, h) = −a·v − b·h − v W h.
Free energy (eq. 3, 5):  F(v) = −a·v − Σ_j ∫^{x_j} f_h,   x = b + vW.
Conv RBM (§4): vW is `conv2d(v, W, stride, padding)`, hW̃ᵀ is `conv_transpose2d` with the
same W; one bias per channel. Dense: vW is a matmul. The unit families and the connection
are independent: energy, free energy and conditionals are written once, here.

Parametrisation (README "Parametrisation"): the module stores *natural* parameters
W̃ = s·W, ã = k_v·a, b̃ = k_h·b with s = sqrt(k_v N_v k_h N_h · fan_in), so that
k_h·x = b̃ + (v/N_v)·W̃·c/sqrt(fan_in) with c = sqrt(k_h N_v / (k_v N_h)) (c = 1 when both layers
share N and k). Two things are equalised: N (a pre-activation is O(1) per unit of weight for
N = 1 and N = 255 alike) and fan-in (Adam moves every weight by about lr per step; divided by
sqrt(fan_in), a step moves a pre-activation by about lr·sqrt(fan_in)·mean(v/N) instead of
lr·fan_in·mean(v/N), so deep conv layers with 1000+ inputs do not die at the paper's lr 0.03).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rbmcli.errors import RbmError
from rbmcli.model.units import Units


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """Shape of one RBM layer. visible_shape is (V,) for dense, (C, H, W) for conv."""

    kind: str  # "dense" or "conv"
    visible_shape: tuple[int, ...]
    hidden: int  # hidden features (dense) or channels (conv)
    visible_units: Units
    hidden_units: Units
    kernel: int = 4
    stride: int = 2
    padding: int = 1
    fan_in_scale: bool = True  # s includes √fan_in (see RBM.scale); False: dense layers under `--weight-scale unit`, a dense first layer under `first`

    @property
    def is_dense(self) -> bool:
        """A dense layer (every visible unit connected to every hidden one); else a strided
        convolution. Code outside this module asks this, never `kind`."""
        return self.kind == "dense"

    @property
    def fan_in(self) -> int:
        """Inputs of one hidden unit: V (dense) or C_in·K² (conv)."""
        return self.visible_shape[0] if self.is_dense else self.visible_shape[0] * self.kernel ** 2

    @property
    def hidden_shape(self) -> tuple[int, ...]:
        """(H,) for dense, (C_out, H_out, W_out) for conv."""
        if self.is_dense:
            return (self.hidden,)
        _, h, w = self.visible_shape
        return (self.hidden, conv_out(h, self), conv_out(w, self))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.is_dense:
            return (self.visible_shape[0], self.hidden)
        return (self.hidden, self.visible_shape[0], self.kernel, self.kernel)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LayerSpec":
        d = dict(d)
        d["visible_shape"] = tuple(d["visible_shape"])
        d["visible_units"] = Units(**d["visible_units"])
        d["hidden_units"] = Units(**d["hidden_units"])
        return cls(**d)


def conv_out(size: int, spec: LayerSpec) -> int:
    """Output size of a strided convolution: ⌊(size + 2p − k)/s⌋ + 1."""
    out = (size + 2 * spec.padding - spec.kernel) // spec.stride + 1
    if out < 1:
        raise RbmError(
            f"kernel {spec.kernel} (padding {spec.padding}) does not fit a {size}-pixel input", usage=True
        )
    return out


class RBM(nn.Module):
    """Holds the natural parameters of one layer; the math is in the methods below."""

    def __init__(self, spec: LayerSpec, init_std: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        self.spec = spec
        self.weight = nn.Parameter(torch.randn(spec.weight_shape, generator=generator) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(spec.visible_shape[0]))
        self.hidden_bias = nn.Parameter(torch.zeros(spec.hidden))
        # μ of the centered energy (see `centered`); zero: the paper's uncentered layer.
        self.register_buffer("visible_offset", torch.zeros(spec.visible_shape[0]))
        # A conv layer's μ enters through its bias (`offset_bias`); False skips that work while μ = 0.
        self.conv_centered = False
        vu, hu = spec.visible_units, spec.hidden_units
        # s: physical W = W̃ / s; without the fan-in factor (spec.fan_in_scale False) Adam's steps
        # move the physical weights √fan_in times as far.
        self.scale = math.sqrt(vu.k * vu.n * hu.k * hu.n * (spec.fan_in if spec.fan_in_scale else 1))

    # --- physical parameters -------------------------------------------------------------
    def physical(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W, a, b) of the paper: W̃/s, ã/k_v, b̃/k_h − μW (dense; the uncentered layer with
        the same energy, see `centered`)."""
        s = self.spec
        W, b = self.weight / self.scale, self.hidden_bias / s.hidden_units.k
        if s.is_dense:
            b = b - self.visible_offset @ W
        elif self.conv_centered:
            b = self.offset_bias(b, W)
        return W, self.visible_bias / s.visible_units.k, b

    # --- centering (Montavon & Müller 2012) ----------------------------------------------
    def centered(self, v: torch.Tensor) -> torch.Tensor:
        """v − μ, shape of v (B, *visible_shape): the visible state the weights see in the
        centered energy E(v, h) = −a·v − b·h − (v − μ)Wh. For a fixed μ this is the same family
        of models as the paper's (b ← b − μW); what changes is the gradient ⟨(v − μ)h⟩: with μ
        the mean of the layer's input, the weights follow the covariance of v and h, not the
        mean activity that every input shares. μ = 0 (the default) is the paper's layer. A conv
        layer returns v as it is: its μ (one per channel) is folded into the bias instead
        (`offset_bias`), no work on the full maps."""
        if not self.spec.is_dense:
            return v
        return v.reshape(v.shape[0], -1) - self.visible_offset

    def offset_bias(self, b: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """Conv: b − Σ_{c,taps} W_{jc··} μ_c, shape (C_out,), for b (C_out,) and physical W
        (C_out, C_in, K, K). Then conv2d(v, W) + this bias = W⋆(v − μ) + b with the padding
        outside the image at v = 0 (centered: −μ): every hidden unit subtracts the full
        kernel's share of μ, so the layer stays the paper's conv RBM (one bias per channel)
        whatever μ, and ∂x/∂W = v_patch − μ, the centered gradient."""
        return b - W.sum((2, 3)) @ self.visible_offset

    @torch.no_grad()
    def move_offset(self, mean: torch.Tensor, rate: float) -> None:
        """μ ← μ + rate·(mean − μ), and b ← b + (μ_new − μ)W so that the model (every
        conditional and free energy) is unchanged: only the parametrisation moves. Dense: mean
        (V,); conv: mean (C,), per channel, and b ← b + Σ_taps W (μ_new − μ) (`offset_bias`).
        In the visible units' 0..N_v."""
        step = rate * (mean.to(self.visible_offset) - self.visible_offset)
        W = self.weight / self.scale
        self.hidden_bias += self.spec.hidden_units.k * (step @ W if self.spec.is_dense else W.sum((2, 3)) @ step)
        self.visible_offset += step
        self.conv_centered = not self.spec.is_dense

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """nn.Module's loading, then the conv flag from the loaded μ: a checkpoint or a resumed
        run's conv layers are centered exactly when their stored offset is (one read, at load)."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.conv_centered = not self.spec.is_dense and bool(self.visible_offset.any())

    # --- connection: the only place dense and conv differ --------------------------------
    def hidden_input(self, v: torch.Tensor) -> torch.Tensor:
        """x = b + (v − μ)W, shape (B, *hidden_shape); v of shape (B, *visible_shape); μ = 0
        unless the layer is centered (conv: μ per channel, through `offset_bias`)."""
        s = self.spec
        b = self.hidden_bias / s.hidden_units.k
        v = self.centered(v)
        if torch.is_autocast_enabled(v.device.type):
            # bf16: only the product is low precision; the bias is added (and its gradient, a
            # sum over the batch, reduced) in float32, else that gradient is mostly rounding.
            v2 = v.reshape(v.shape[0], -1) if s.is_dense else v
            xw = (v2 @ self.weight if s.is_dense
                  else F.conv2d(v, self.weight, stride=s.stride, padding=s.padding))
            with torch.autocast(v.device.type, enabled=False):
                if self.conv_centered:
                    b = self.offset_bias(b, self.weight / self.scale)
                b = b.view(-1) if s.is_dense else b.view(-1, 1, 1)
                return xw.to(v.dtype) * (1.0 / self.scale) + b
        if s.is_dense:  # W = W̃/s folded into the matmul: cheaper than scaling W̃ (V·H)
            return torch.addmm(b, v.reshape(v.shape[0], -1), self.weight, alpha=1.0 / self.scale)
        W = self.weight / self.scale
        return F.conv2d(v, W, self.offset_bias(b, W) if self.conv_centered else b, stride=s.stride, padding=s.padding)

    def visible_input(self, h: torch.Tensor) -> torch.Tensor:
        """y = a + hWᵀ (dense) or a + conv_transpose2d(h, W) (conv), shape (B, *visible_shape)."""
        s = self.spec
        a = self.visible_bias / s.visible_units.k
        if torch.is_autocast_enabled(h.device.type):  # as in hidden_input: bias in float32
            y = h @ self.weight.t() if s.is_dense else self._conv_transpose(h, self.weight, None)
            with torch.autocast(h.device.type, enabled=False):
                return y.to(h.dtype) * (1.0 / self.scale) + (a if s.is_dense else a.view(-1, 1, 1))
        if s.is_dense:
            return torch.addmm(a, h, self.weight.t(), alpha=1.0 / self.scale)
        return self._conv_transpose(h, self.weight / self.scale, a)

    def _conv_transpose(self, h: torch.Tensor, W: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
        """conv_transpose2d(h, W) + a, padded back to exactly (B, *visible_shape)."""
        s = self.spec
        _, hh, ww = s.visible_shape
        pad = (hh - ((h.shape[2] - 1) * s.stride - 2 * s.padding + s.kernel),
               ww - ((h.shape[3] - 1) * s.stride - 2 * s.padding + s.kernel))
        return F.conv_transpose2d(h, W, a, stride=s.stride, padding=s.padding, output_padding=pad)

    def visible_term(self, v: torch.Tensor) -> torch.Tensor:
        """a·v per sample, shape (B,); conv: Σ_c a_c Σ_xy v_cxy."""
        a = self.visible_bias / self.spec.visible_units.k
        v = v.reshape(v.shape[0], *self.spec.visible_shape)
        with torch.autocast(v.device.type, enabled=False):  # a bias gradient in bf16 loses too much
            return (v.flatten(2).sum(2) if v.dim() == 4 else v) @ a  # a matrix-vector product

    # --- equations -------------------------------------------------------------------------
    def free_energy(self, v: torch.Tensor, x: torch.Tensor | None = None, exact: bool = False) -> torch.Tensor:
        """F(v) = −a·v − Σ_j ∫^{x_j} f_h (eq. 5), shape (B,). Pass x = hidden_input(v) to
        reuse it. exact=True uses the copies model's Σ_n softplus(x − o_n) instead."""
        x = self.hidden_input(v) if x is None else x
        hu = self.spec.hidden_units
        term = hu.copies_integral(x) if exact else hu.integral(x)
        return -self.visible_term(v) - term.flatten(1).sum(1)

    def hidden_mean(self, v: torch.Tensor) -> torch.Tensor:
        """E[h | v] = f_h(b + vW), shape (B, *hidden_shape)."""
        return self.spec.hidden_units.mean(self.hidden_input(v))

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v | h] = f_v(a + hWᵀ), shape (B, *visible_shape)."""
        return self.spec.visible_units.mean(self.visible_input(h))

    def sample_hidden(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """h ~ p(h | v), values in 0..N_h."""
        return self.spec.hidden_units.sample(self.hidden_input(v), generator)

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """v ~ p(v | h), values in 0..N_v."""
        return self.spec.visible_units.sample(self.visible_input(h), generator)

    def flatten_input(self, v: torch.Tensor) -> torch.Tensor:
        """Reshape a batch to (B, *visible_shape) (dense layers take flattened conv maps)."""
        return v.reshape(v.shape[0], *self.spec.visible_shape)
