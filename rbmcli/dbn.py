"""A deep belief network: conv RBMs then dense RBMs (paper §4), and the architecture presets.

Layer l + 1's visible input is layer l's hidden mean activity f_h(x_l); its visible units are
layer l's hidden units (same N, k, g). Sampling runs a Gibbs chain in the top RBM, then one
mean pass down through every lower layer's generative direction f_v(a + hWᵀ).
"""

from __future__ import annotations

import torch
from torch import nn

from rbmcli.errors import RbmError
from rbmcli.rbm import RBM, LayerSpec
from rbmcli.units import Units

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


def parse_arch(arch: str) -> list[tuple[str, int, int, int, int]]:
    """'conv:64,conv:128:4:2:1,dense:500' → [(kind, size, kernel, stride, padding), ...].

    A conv item is conv:CHANNELS[:KERNEL[:STRIDE[:PADDING]]] (defaults 4, 2, 1); a dense item
    dense:UNITS. Dense layers come after the conv layers. A preset name is expanded first."""
    text = PRESETS.get(arch, arch)
    items, seen_dense = [], False
    for part in filter(None, (p.strip() for p in text.split(","))):
        fields = part.split(":")
        kind = fields[0]
        try:
            nums = [int(f) for f in fields[1:]]
        except ValueError:
            nums = []
        bad_nums = not nums or min(nums[:3]) < 1 or min(nums) < 0 or len(nums) > (4 if kind == "conv" else 1)
        if kind not in ("conv", "dense") or bad_nums:
            raise RbmError(f"bad architecture item {part!r} in {arch!r}: expected conv:C[:K[:S[:P]]] or "
                           f"dense:H, or a preset ({', '.join(PRESETS)})", usage=True)
        if kind == "conv" and seen_dense:
            raise RbmError(f"architecture {arch!r}: conv layers must come before dense layers", usage=True)
        seen_dense |= kind == "dense"
        k, s, p = (nums[1:] + [4, 2, 1][len(nums) - 1:])[:3] if kind == "conv" else (0, 0, 0)
        items.append((kind, nums[0], k, s, p))
    if not items:
        raise RbmError(f"architecture {arch!r} has no layers", usage=True)
    return items


def build_specs(arch: str, input_shape: tuple[int, int, int], visible: Units, hidden: Units) -> list[LayerSpec]:
    """Layer specs for images of input_shape (C, H, W): the data's units feed layer 0, every
    hidden layer uses `hidden` units; a dense layer's input size follows the layer below."""
    specs, shape, vis = [], tuple(input_shape), visible
    for kind, size, k, s, p in parse_arch(arch):
        if kind == "dense":
            shape = (int(torch.Size(shape).numel()),)
        spec = LayerSpec(kind, shape, size, vis, hidden, k, s, p)
        shape, vis = spec.hidden_shape, hidden
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

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """Top-layer mean activities, flattened: (B, D). Used for the SVM (Table 1)."""
        return self.up(v).flatten(1)
