"""A deep belief network: conv RBMs then dense RBMs (paper §4), and the architecture presets.

Layer l + 1's visible input is layer l's hidden mean activity f_h(x_l); its visible units are
layer l's hidden units (same N, k, g). Sampling runs a Gibbs chain in the top RBM, then one
mean pass down through every lower layer's generative direction f_v(a + hWᵀ).
"""

from __future__ import annotations

import torch
from torch import nn

from rbmcli.errors import RbmError
from rbmcli.model.rbm import RBM, LayerSpec
from rbmcli.model.units import Units, balanced_k

# Presets: spec strings (see `parse_arch`). "paper-*" follow §4; the small ones train in
# minutes on 2 CPU cores.
PRESETS = {
    "tiny": "dense:64",
    "small": "dense:500",
    "small-dbn": "dense:500,dense:200",
    "small-conv": "conv:32,conv:64,dense:200",
    "paper-classify": "conv:64,conv:128,conv:256",
    "paper-generate": "conv:64,conv:128,conv:256,conv:256,conv:256,dense:1000,dense:500,dense:200,dense:100",
}


def parse_arch(arch: str) -> list[tuple[str, int, int, int, int, int | None]]:
    """'conv:64,conv:128:4:2:1,dense:500@1' → [(kind, size, kernel, stride, padding, n), ...].

    A conv item is conv:CHANNELS[:KERNEL[:STRIDE[:PADDING]]] (defaults 4, 2, 1); a dense item
    dense:UNITS. Either may end in @N: that layer's hidden units take values 0..N (n = N; without
    it n = None, the configured --hidden-units). Dense layers come after the conv layers. A
    preset name is expanded first."""
    text = PRESETS.get(arch, arch)
    items, seen_dense = [], False
    for part in filter(None, (p.strip() for p in text.split(","))):
        body, at, units = part.partition("@")
        fields = body.split(":")
        kind = fields[0]
        try:
            nums = [int(f) for f in fields[1:]]
            n = int(units) if at else None
        except ValueError:
            nums, n = [], None
        bad_nums = not nums or min(nums[:3]) < 1 or min(nums) < 0 or len(nums) > (4 if kind == "conv" else 1)
        if kind not in ("conv", "dense") or bad_nums or (n is not None and not 1 <= n <= 65535):
            raise RbmError(f"bad architecture item {part!r} in {arch!r}: expected conv:C[:K[:S[:P]]] or "
                           f"dense:H, optionally ending in @N (hidden units 0..N, 1 <= N <= 65535), "
                           f"or a preset ({', '.join(PRESETS)})", usage=True)
        if kind == "conv" and seen_dense:
            raise RbmError(f"architecture {arch!r}: conv layers must come before dense layers", usage=True)
        seen_dense |= kind == "dense"
        k, s, p = (nums[1:] + [4, 2, 1][len(nums) - 1:])[:3] if kind == "conv" else (0, 0, 0)
        items.append((kind, nums[0], k, s, p, n))
    if not items:
        raise RbmError(f"architecture {arch!r} has no layers", usage=True)
    return items


def build_specs(arch: str, input_shape: tuple[int, int, int], visible: Units, hidden: Units,
                *, k: float | None = None, top_n: int | None = None, weight_scale: str = "fan-in",
                center_conv: bool = False) -> list[LayerSpec]:
    """Layer specs for images of input_shape (C, H, W). Every hidden layer uses `hidden` units
    unless its item ends in @N (then N, with k for N > 1, the default k for N = 1); top_n, if
    given, is the top layer's N when its item has no @N. Layer 0's
    visible units take visible.n values (the data), layer l + 1's those of layer l's hidden
    units; each layer's visible k is balanced against its own hidden units (units.balanced_k),
    which for a shared N and k is that k. A dense layer's input size follows the layer below;
    weight_scale "unit" drops the fan-in factor of dense layers' weight scale, "first" that of a
    dense first layer only; conv layers keep it (TrainConfig.weight_scale) unless center_conv
    (centered conv layers: TrainConfig.center_conv)."""
    specs, shape, n_v = [], tuple(input_shape), visible.n
    items = parse_arch(arch)
    if top_n is not None and items[-1][5] is None:
        items[-1] = items[-1][:5] + (top_n,)
    for i, (kind, size, kern, s, p, n) in enumerate(items):
        unit_scale = (kind == "dense" and (weight_scale == "unit" or (weight_scale == "first" and i == 0))
                      or kind == "conv" and center_conv)
        if kind == "dense":
            shape = (int(torch.Size(shape).numel()),)
        hid = hidden if n is None else Units.make(n, k if n > 1 else None, hidden.activation)
        vis = Units.make(n_v, balanced_k(n_v, hid), hid.activation)
        spec = LayerSpec(kind=kind, visible_shape=shape, hidden=size, visible_units=vis, hidden_units=hid, kernel=kern,
                         stride=s, padding=p, fan_in_scale=not unit_scale)
        shape, n_v = spec.hidden_shape, hid.n
        specs.append(spec)
    return specs


class DBN(nn.Module):
    """A stack of RBM layers; holds parameters only."""

    def __init__(self, specs: list[LayerSpec], init_std: float = 0.01, generator: torch.Generator | None = None):
        super().__init__()
        self.layers = nn.ModuleList(RBM(s, init_std, generator) for s in specs)

    @property
    def specs(self) -> list[LayerSpec]:
        return [layer.spec for layer in self.layers]

    def up(self, v: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """Mean activity of hidden layer `upto` (default: the top), shape (B, *hidden_shape)."""
        for layer in self.layers[: upto if upto is not None else len(self.layers)]:
            v = layer.hidden_mean(layer.flatten_input(v))
        return v

    def down(self, h: torch.Tensor, start: int | None = None) -> torch.Tensor:
        """Mean pass down from the hidden activity of layer `start` (default: top) to pixels
        in 0..N_v, shape (B, *input_shape)."""
        start = len(self.layers) - 1 if start is None else start
        for layer in reversed(self.layers[: start + 1]):
            h = layer.visible_mean(h.reshape(h.shape[0], *layer.spec.hidden_shape))
        return h

    def reconstructions(self, v: torch.Tensor) -> list[torch.Tensor]:
        """For each depth d = 1..L, the mean pass up through the first d layers and back down to
        pixels 0..N_v, shape of v (B, *input_shape): what the stack up to that depth keeps of v.
        One pass up serves every depth."""
        out, h = [], v
        for d, layer in enumerate(self.layers):
            h = layer.hidden_mean(layer.flatten_input(h))
            out.append(self.down(h, d).reshape(v.shape))
        return out

    @torch.no_grad()
    def move_offsets(self, v: torch.Tensor, rate: float, layers: set[int], reduce=None) -> None:
        """Move the centering offset μ of each layer in `layers` toward the mean of its input
        (per unit for dense layers, per channel for conv; layer l's hidden means of the batch
        v (B, *input_shape) in 0..N_v):
        μ ← μ + rate·(⟨input⟩ − μ), the model unchanged (RBM.move_offset). The offsets follow
        the inputs as the layers below learn (Melchior, Fischer & Wiskott 2016). reduce, if
        given, maps each batch mean to the mean over data-parallel processes."""
        last = max(layers, default=-1)  # no need to go further up
        for i, layer in enumerate(self.layers[:last + 1]):
            v = layer.flatten_input(v)
            if i in layers:
                mean = v.reshape(v.shape[0], -1).mean(0) if v.dim() == 2 else v.mean((0, 2, 3))
                layer.move_offset(reduce(mean) if reduce else mean, rate)
            if i < last:
                v = layer.hidden_mean(v)

    @torch.no_grad()
    def init_visible_biases(self, v: torch.Tensor) -> None:
        """Set each layer's visible bias so that its visible mean at zero hidden input is the
        mean of its input (Hinton's practical guide §8: a_i = log(p_i / (1 − p_i)) for binary
        units): ã = g⁻¹(⟨v⟩/N_v), per unit (dense) or per channel (conv). v (B, *input_shape) in
        0..N_v; layer l + 1 sees layer l's hidden means of v at the current weights."""
        for layer in self.layers:
            v = layer.flatten_input(v)
            mean = v.mean(0) if v.dim() == 2 else v.mean((0, 2, 3))  # (V,) or (C,)
            layer.visible_bias.copy_(layer.spec.visible_units.natural_input(mean))
            v = layer.hidden_mean(v)

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Top-layer mean activities, flattened: (B, D). Used for the SVM (Table 1)."""
        return self.up(v).flatten(1)
