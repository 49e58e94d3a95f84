"""colored-mnist: a built-in color dataset derived deterministically from MNIST, so that the
color path (color generation, colorization, occlusion) can be trained and tested offline,
like scikit-learn's generated datasets.

Each MNIST digit of class c becomes a 3×28×28 RGB image in HSV terms:

    hue h = 36°·c + δh,   δh ~ U(−HUE_JITTER, +HUE_JITTER)     (class 0 red, 3 green-ish, 6 blue, ...)
    saturation s ~ U(SATURATION_LOW, SATURATION_HIGH)
    value v = I / 255                                           (I: the MNIST pixel, 0..255)

one (δh, s) per image, drawn from a `torch.Generator` seeded with SPLIT_SEEDS[split], so the
same split always gives the same images whatever the training seed. The background
(I = 0) stays black; max(R, G, B) equals the MNIST pixel (up to rounding). Splits and labels
are MNIST's.
"""

from __future__ import annotations

import torch

CLASS_HUE_STEP = 36.0  # degrees of hue between consecutive classes: class c has hue 36°·c
HUE_JITTER = 6.0  # half-width in degrees of the per-image uniform hue jitter
SATURATION_LOW, SATURATION_HIGH = 0.75, 1.0  # the per-image saturation is uniform in this range
SPLIT_SEEDS = {"train": 20_240, "test": 20_241}  # fixed: the dataset does not depend on --seed


def class_hue(labels: torch.Tensor) -> torch.Tensor:
    """Nominal hue in degrees of each class: 36°·c, float (n,)."""
    return labels.double() * CLASS_HUE_STEP


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV → RGB (hexcone model), every input broadcast to one shape S; returns (3, *S) in [0, 1].

    For channel offsets n = 5 (R), 3 (G), 1 (B): k = (n + h/60) mod 6 and
    f(n) = v − v·s·max(0, min(k, 4 − k, 1)); h in degrees, s and v in [0, 1]."""
    h, s, v = torch.broadcast_tensors(h.double(), s.double(), v.double())
    out = []
    for n in (5, 3, 1):
        k = torch.remainder(n + h / 60.0, 6.0)
        out.append(v - v * s * torch.clamp(torch.minimum(torch.minimum(k, 4 - k), torch.ones_like(k)), min=0))
    return torch.stack(out)


def split_jitter(n: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-image (hue offset in degrees, saturation), each float64 (n,), of a split's first n
    images: both drawn from one generator seeded with SPLIT_SEEDS[split]."""
    g = torch.Generator().manual_seed(SPLIT_SEEDS[split])
    u = torch.rand(2, n, generator=g, dtype=torch.float64)
    return (2 * u[0] - 1) * HUE_JITTER, SATURATION_LOW + (SATURATION_HIGH - SATURATION_LOW) * u[1]


def image_hues(labels: torch.Tensor, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(hue in degrees mod 360, saturation), float64 (n,), of every image of a split given all
    its labels (n,) in order."""
    dh, s = split_jitter(len(labels), split)
    return torch.remainder(class_hue(labels) + dh, 360.0), s


def colorize_digits(gray: torch.Tensor, hue: torch.Tensor, saturation: torch.Tensor) -> torch.Tensor:
    """uint8 gray digits (n, 1, H, W) → uint8 RGB (n, 3, H, W): each image's strokes at its hue
    (degrees) and saturation (n,), the value channel v = I/255."""
    v = gray[:, 0].double() / 255.0  # (n, H, W)
    rgb = hsv_to_rgb(hue[:, None, None], saturation[:, None, None], v)  # (3, n, H, W)
    return (rgb.permute(1, 0, 2, 3) * 255.0).round().clamp(0, 255).to(torch.uint8)


def colored_mnist(gray: torch.Tensor, labels: torch.Tensor, split: str, limit: int | None = None) -> torch.Tensor:
    """The colored images of a split's first `limit` MNIST digits (all when None), given the
    whole split's gray digits (N, 1, 28, 28) and labels (N,): the jitter of image i is the same
    whatever `limit` is."""
    hue, s = image_hues(labels, split)
    n = len(labels) if limit is None else min(limit, len(labels))
    return colorize_digits(gray[:n], hue[:n], s[:n])
