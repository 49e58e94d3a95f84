"""Training batches: the images as uint8, their binarisation, their order, and the map from
pixels to visible values."""

from __future__ import annotations

import torch

from rbmcli.train.config import TrainConfig
from rbmcli.errors import RbmError


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


def load_training_images(cfg: TrainConfig, split: str = "train", progress=None) -> torch.Tensor:
    """The training images as uint8 (n, C, H, W), limited and binarised as configured."""
    from rbmcli.data.datasets import load_dataset

    ds = load_dataset(cfg.dataset, split, cfg.data_dir, size=cfg.size, limit=cfg.limit, download=cfg.download, seed=cfg.seed)
    if cfg.batch_size > len(ds.images):
        raise RbmError(f"--batch-size {cfg.batch_size} is larger than the {len(ds.images)} training images", usage=True)
    return binarize(ds.images, cfg.binarize, cfg.seed)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run
    replays exactly the batches an uninterrupted one would."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
