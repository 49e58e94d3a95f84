"""Images as a model sees them: their binarisation, their order within an epoch, and the map
from uint8 pixels to visible values."""

from __future__ import annotations

import torch


def to_visible(images: torch.Tensor, n_visible: int) -> torch.Tensor:
    """uint8 pixels (B, C, H, W) → visible values v = pixel·N_v/255 in [0, N_v], float32.
    For N_v = 1 gray levels become probabilities in [0, 1] (unless binarised beforehand)."""
    return images.float() * (n_visible / 255.0)


def binarize(images: torch.Tensor, how: str, seed: int) -> torch.Tensor:
    """uint8 → uint8 in {0, 255}: 'threshold' at 128, 'sample' one Bernoulli(pixel/255) draw
    (fixed by the seed: the usual stochastically binarised MNIST); 'none' leaves it."""
    if how == "threshold":
        return (images >= 128).to(torch.uint8) * 255
    if how == "sample":
        g = torch.Generator().manual_seed(seed)
        return (torch.rand(images.shape, generator=g) < images.float() / 255).to(torch.uint8) * 255
    return images


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run
    replays exactly the batches an uninterrupted one would."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
