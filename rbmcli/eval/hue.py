"""Hue measures of color images: how close the stroke colors of a reconstruction (or a
sample) are to the true ones, as circular errors in degrees.

A pixel's hue is that of the hexcone HSV model (rbmcli.data.colored.hsv_to_rgb's inverse). A pixel
whose chroma max(R, G, B) − min(R, G, B) is below ACHROMATIC has no hue (gray); it counts as a
miss: an error of 90° in the mean (what a uniformly random hue scores on average) and an
offset of 180° in the median. Stroke pixels are those whose reference value max(R, G, B) is at
least STROKE_VALUE (and, for a true color image, whose saturation is at least
STROKE_SATURATION, so that the true hue is defined).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rbmcli.errors import RbmError

ACHROMATIC = 0.02  # chroma (in [0, 1]) below which a pixel is gray: ≈ 5 of 255 levels
STROKE_VALUE = 0.5  # a stroke pixel's value max(R, G, B) is at least this
STROKE_SATURATION = 0.2  # and the true image's saturation at least this
MISS_ERROR, MISS_OFFSET = 90.0, 180.0  # a gray pixel's hue error (mean) and offset (median), degrees
TOLERANCE = 18.0  # ± degrees: half the 36° between consecutive colored-mnist classes


def rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float RGB (n, 3, H, W) in [0, 1] → hue in degrees [0, 360) (NaN where the chroma
    C = max − min < ACHROMATIC), saturation C / max (0 where max = 0), value max; each (n, H, W).

    Hue = 60°·((G − B)/C mod 6) where max = R, 60°·((B − R)/C + 2) where max = G,
    60°·((R − G)/C + 4) where max = B."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise RbmError(f"hue needs RGB images (n, 3, H, W), got {tuple(rgb.shape)}")
    r, g, b = rgb.double().unbind(1)
    v, argmax = rgb.double().max(1)
    c = v - rgb.double().min(1).values
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(argmax == 0, torch.remainder((g - b) / safe, 6.0),
                    torch.where(argmax == 1, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    h = torch.where(c < ACHROMATIC, torch.full_like(h, math.nan), torch.remainder(h, 360.0))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return h, s, v


def wrap(degrees: torch.Tensor) -> torch.Tensor:
    """Angles wrapped to [−180°, 180°): the signed circular difference."""
    return torch.remainder(degrees + 180.0, 360.0) - 180.0


def hue_offsets(rgb: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel of rgb (n, 3, H, W): the circular error |wrap(h − reference)| and the signed
    offset wrap(h − reference) in degrees, reference broadcast to (n, H, W); both (n, H·W), NaN
    outside mask (n, H, W). A gray pixel scores MISS_ERROR and MISS_OFFSET."""
    h, _, _ = rgb_to_hsv(rgb)
    offset = wrap(h - reference)
    gray = torch.isnan(h)
    error = torch.where(gray, torch.full_like(h, MISS_ERROR), offset.abs())
    offset = torch.where(gray, torch.full_like(h, MISS_OFFSET), offset)
    nan = torch.full_like(h, math.nan)
    return torch.where(mask, error, nan).flatten(1), torch.where(mask, offset, nan).flatten(1)


@dataclass
class HueScore:
    mean_error_deg: float  # mean over images of the mean circular error of their stroke pixels
    within_percent: float  # images whose median stroke offset is within ±TOLERANCE
    n: int  # images scored (those with at least one stroke pixel)

    def as_dict(self) -> dict:
        return {"hue_error_deg": round(self.mean_error_deg, 2), "within_18deg_percent": round(self.within_percent, 2)}


def _score(error: torch.Tensor, offset: torch.Tensor, tolerance: float) -> HueScore:
    """HueScore from per-pixel errors and offsets (n, P), NaN for non-stroke pixels; images
    without a stroke pixel are left out (and a set with none at all is an error)."""
    has = ~torch.isnan(error).all(1)
    if not bool(has.any()):
        raise RbmError("no image has stroke pixels with a defined true hue: are these color images?")
    per_image = torch.nanmean(error[has], 1)
    median = torch.nanmedian(offset[has], 1).values
    return HueScore(float(per_image.mean()), 100.0 * float((median.abs() <= tolerance).double().mean()), int(has.sum()))


def stroke_mask(true_rgb: torch.Tensor) -> torch.Tensor:
    """bool (n, H, W): the true image's pixels with value ≥ STROKE_VALUE and saturation ≥
    STROKE_SATURATION, where its hue is defined."""
    _, s, v = rgb_to_hsv(true_rgb)
    return (v >= STROKE_VALUE) & (s >= STROKE_SATURATION)


def colorization_score(pred_rgb: torch.Tensor, true_rgb: torch.Tensor, tolerance: float = TOLERANCE) -> HueScore:
    """Hue of a colorization pred (n, 3, H, W) in [0, 1] against the true images (same shape) on
    the true strokes: each stroke pixel's circular error against its true hue, averaged per image
    then over images; and the share of images whose median signed offset is within ±tolerance."""
    if pred_rgb.shape != true_rgb.shape:
        raise RbmError(f"colorization {tuple(pred_rgb.shape)} and truth {tuple(true_rgb.shape)} differ in shape")
    h_true, _, _ = rgb_to_hsv(true_rgb)
    error, offset = hue_offsets(pred_rgb, torch.nan_to_num(h_true), stroke_mask(true_rgb))
    return _score(error, offset, tolerance)


def class_hue_match(rgb: torch.Tensor, class_hues: torch.Tensor, tolerance: float = TOLERANCE) -> tuple[float, int]:
    """(percent of images whose median stroke hue lies within ±tolerance of its class hue,
    images with strokes) for images rgb (n, 3, H, W) in [0, 1] and hues (n,) in degrees. Strokes
    are each image's own pixels of value ≥ STROKE_VALUE; an image without any counts as a miss."""
    _, _, v = rgb_to_hsv(rgb)
    mask = v >= STROKE_VALUE
    _, offset = hue_offsets(rgb, class_hues.double()[:, None, None], mask)
    has = mask.flatten(1).any(1)
    median = torch.full((len(rgb),), math.inf, dtype=torch.float64)
    if bool(has.any()):
        median[has] = torch.nanmedian(offset[has], 1).values
    return 100.0 * float((median.abs() <= tolerance).double().mean()), int(has.sum())


def stroke_hue_statistics(images: torch.Tensor, chunk: int = 4096) -> tuple[float, float]:
    """(circular mean hue in degrees [0, 360), mean saturation) of every stroke pixel of uint8
    images (n, 3, H, W), in chunks of `chunk` images: the hue is atan2(Σ sin h, Σ cos h)."""
    sin = cos = sat = 0.0
    count = 0
    for part in images.split(chunk):
        rgb = part.float() / 255 if part.dtype == torch.uint8 else part.float()
        h, s, _ = rgb_to_hsv(rgb)
        mask = stroke_mask(rgb)
        rad = torch.deg2rad(h[mask])
        sin, cos = sin + float(rad.sin().sum()), cos + float(rad.cos().sum())
        sat, count = sat + float(s[mask].sum()), count + int(mask.sum())
    if count == 0:
        raise RbmError("no stroke pixels with a defined hue in the training images: are they color images?")
    return math.degrees(math.atan2(sin, cos)) % 360.0, sat / count
