"""A synthetic occluder for the accessory-removal measure: a horizontal bar ("glasses") across
each image, and the RMSE inside the occluded band.

The bar is `bar_height(H)` rows high (H/7 rounded: 4 rows of 28) and spans the full width in one
value in every channel. Its top row is ⌊c·H⌋ − height/2 + j with j uniform in
−bar_shift(H)..+bar_shift(H) (2 rows of 28), drawn per image from a seeded generator. The center
c and the value depend on the dataset (OCCLUDERS): by default a bright bar (255) across the
middle (c = 0.5), where a digit's strokes are; on emoji a black bar across the eyes (c = 0.4:
the eyes of Google's face emoji lie in rows 21–30 of 64), sunglasses on a face.
"""

from __future__ import annotations

import torch

from rbmcli.errors import RbmError

DEFAULT_OCCLUDER = (0.5, 255)  # (center of the bar as a fraction of the height, its value)
OCCLUDERS = {"emoji": (0.4, 0)}  # datasets whose bar goes elsewhere: emoji, black across the eyes


def occluder(dataset: str) -> tuple[float, int]:
    """(center fraction, value) of the bar on a dataset's images."""
    return OCCLUDERS.get(dataset, DEFAULT_OCCLUDER)


def bar_height(side: int) -> int:
    """Rows of the bar on images `side` rows high: round(side/7), at least 1 (4 for 28)."""
    return max(1, round(side / 7))


def bar_shift(side: int) -> int:
    """The largest shift of the bar's top row from centred: side // 14 (2 for 28)."""
    return side // 14


def bar_tops(n: int, side: int, generator: torch.Generator, center: float = 0.5) -> torch.Tensor:
    """Top row of each of n bars, int64 (n,): ⌊center·side⌋ − height//2 + j, j uniform in
    ±bar_shift (center 0.5: side//2)."""
    height, shift = bar_height(side), bar_shift(side)
    j = torch.randint(-shift, shift + 1, (n,), generator=generator)
    return (int(center * side) - height // 2 + j).clamp(0, side - height)


def band_masks(tops: torch.Tensor, side: int) -> torch.Tensor:
    """bool (n, side): row r of image i is occluded iff tops[i] <= r < tops[i] + bar_height(side)."""
    rows = torch.arange(side)[None, :]
    return (rows >= tops[:, None]) & (rows < tops[:, None] + bar_height(side))


def occlude(images: torch.Tensor, generator: torch.Generator, center: float = 0.5,
            value: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (n, C, H, W) → (copies with a bar of `value` across the occluded rows, the
    row masks bool (n, H)); the bar's rows are centered near center·H (bar_tops)."""
    if images.dim() != 4 or images.dtype != torch.uint8:
        raise RbmError(f"occlude needs uint8 images (n, C, H, W), got {images.dtype} {tuple(images.shape)}")
    bands = band_masks(bar_tops(len(images), images.shape[2], generator, center), images.shape[2])
    out = images.clone()
    out[bands[:, None, :, None].expand_as(out)] = value
    return out, bands


def band_rmse(images: torch.Tensor, clean: torch.Tensor, bands: torch.Tensor) -> float:
    """Root mean square difference between images and clean (n, C, H, W), both in [0, 1], over
    every channel and column of the occluded rows bands (n, H): sqrt(Σ_band (x − y)² / count)."""
    if images.shape != clean.shape or bands.shape != (images.shape[0], images.shape[2]):
        raise RbmError(f"band RMSE needs images and clean images of one shape and bands (n, H); got "
                       f"{tuple(images.shape)}, {tuple(clean.shape)}, {tuple(bands.shape)}")
    mask = bands[:, None, :, None].expand_as(images)
    if not bool(mask.any()):
        raise RbmError("band RMSE: the bands cover no pixel")
    diff = (images.double() - clean.double())[mask]
    return float(diff.pow(2).mean().sqrt())
