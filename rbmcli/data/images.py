"""Image I/O: open any common image safely, normalise channels and size, write PNG grids.

Every problem a user can fix (missing, empty, corrupt, truncated or oversized file) becomes
one `RbmError` line. Images are uint8 tensors (C, H, W) with C = 1 (gray) or 3 (RGB).
Resizing uses LANCZOS, which Pillow antialiases when downscaling.
"""

import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from rbmcli.errors import RbmError

IMAGE_EXTENSIONS = frozenset({".bmp", ".gif", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"})
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_WHITE = (255, 255, 255, 255)


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode one image file (any mode); every failure is an `RbmError`."""
    path = Path(path)
    if not path.exists():
        raise RbmError(f"Image not found: {path}; check the path.")
    if path.is_dir():
        raise RbmError(f"Expected an image file at {path} but it is a directory; pass a file.")
    if path.stat().st_size == 0:
        raise RbmError(f"Image file {path} is empty (0 bytes); re-download or remove it.")
    try:
        # PIL's default MAX_IMAGE_PIXELS limit is kept; its warning is made an error.
        with warnings.catch_warnings(), open(path, "rb") as f:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f)
            img.load()
            return img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise RbmError(f"Image {path} is too large ({e}); a decompression bomb? Shrink it.") from e
    except UnidentifiedImageError as e:
        raise RbmError(f"File {path} is not an image Pillow can read; remove or convert it.") from e
    except Exception as e:  # decoders raise OSError, ValueError, SyntaxError, struct.error, ...
        raise RbmError(f"Image {path} is truncated or corrupt ({e}); re-download or remove it.") from e


def _sixteen_bit_to_l(img: Image.Image) -> Image.Image:
    """Scale a 16-bit gray image ('I;16*' or 'I', 0..65535) linearly to 8-bit 'L' (v*255/65535)."""
    a = np.asarray(img).astype(np.int64).clip(0, 65535)  # (H, W)
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def _to_l_or_rgb(img: Image.Image) -> Image.Image:
    """Normalise any mode to 'L' or 'RGB'; transparency is composited over white."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_l(img)
    try:
        if img.mode in ("1", "L", "F"):  # float gray is clipped to 0..255, as Pillow does
            return img.convert("L")
        if img.has_transparency_data:  # RGBA, LA, PA, P or RGB with a tRNS entry
            rgba = img.convert("RGBA")
            return Image.alpha_composite(Image.new("RGBA", img.size, _WHITE), rgba).convert("RGB")
        return img.convert("RGB")  # RGB, P, CMYK, YCbCr, ...
    except ValueError as e:
        raise RbmError(f"Cannot convert image mode {img.mode!r} to RGB; save it as PNG or JPEG.") from e


def to_channels(img: Image.Image, channels: int | None) -> Image.Image:
    """Convert to mode 'L' (channels=1) or 'RGB' (channels=3); None keeps the native one of the two.

    Gray becomes RGB by replication, RGB becomes gray by ITU-R 601-2 luminance.
    """
    if channels not in (None, 1, 3):
        raise RbmError(f"channels must be 1 or 3, got {channels}.", usage=True)
    img = _to_l_or_rgb(img)
    if channels is None:
        return img
    return img.convert("L" if channels == 1 else "RGB")


def center_crop_resize(img: Image.Image, size: int | None) -> Image.Image:
    """Center crop to the largest square, then resize to size x size with LANCZOS (antialiased)."""
    if size is None:
        return img
    if not isinstance(size, int) or size < 1:
        raise RbmError(f"size must be a positive integer, got {size!r}.", usage=True)
    w, h = img.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    if (w, h) != (s, s):
        img = img.crop((left, top, left + s, top + s))
    if s != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return img


def pil_to_uint8(img: Image.Image) -> torch.Tensor:
    """PIL image → uint8 tensor (C, H, W); modes other than 'L'/'RGB' are normalised first."""
    if img.mode not in ("L", "RGB"):
        img = _to_l_or_rgb(img)
    a = np.asarray(img)  # (H, W) or (H, W, 3)
    a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
    return torch.from_numpy(a.copy())  # copy: PIL's buffer is read-only; C order


def load_image(path: str | Path, channels: int | None, size: int | None) -> torch.Tensor:
    """Open, convert and crop/resize one file → uint8 (C, size, size) (native size if None)."""
    return pil_to_uint8(center_crop_resize(to_channels(open_image(path), channels), size))


def load_images(paths: list[Path], channels: int | None = None, size: int | None = None, *, limit: int | None = None,
                skip_bad: bool = False, progress: Callable[[int, int], None] | None = None,
                ) -> tuple[torch.Tensor, list[int], int]:
    """Decode files (until `limit` are kept) → uint8 (n, C, H, W), kept positions in `paths`, number skipped.

    skip_bad=True leaves unreadable files out (counted) instead of raising; progress(done, total).
    """
    tensors, kept, skipped = [], [], 0
    for i, path in enumerate(paths):
        if limit is not None and len(kept) >= limit:
            break
        try:
            tensors.append(load_image(path, channels, size))
            kept.append(i)
        except RbmError:
            if not skip_bad:
                raise
            skipped += 1
        if progress:
            progress(i + 1, len(paths))
    if not tensors:
        where = f" under {Path(paths[0]).parent}" if paths else ""
        raise RbmError(f"No readable images among {len(paths)} files{where}; check that they are images.")
    return stack_images(tensors), kept, skipped


def stack_images(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack (C, H, W) tensors into (n, C, H, W), gray promoted to RGB if mixed; frees the list as it copies."""
    shapes = sorted({tuple(t.shape[1:]) for t in tensors})
    if len(shapes) > 1:
        raise RbmError(f"Images have different sizes (e.g. {shapes[0]} and {shapes[-1]} pixels); "
                       "pass --size N to crop and resize them all to N x N.")
    out = torch.empty((len(tensors), max(t.shape[0] for t in tensors), *shapes[0]), dtype=torch.uint8)
    for i in range(len(tensors)):
        out[i], tensors[i] = tensors[i], None  # broadcasting copies gray into all three channels
    return out


def _as_unit_float(images: torch.Tensor) -> torch.Tensor:
    """Check (n, C, H, W) with C in {1, 3}; uint8 or float in [0, 1] → float in [0, 1]."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or images.shape[0] == 0:
        raise RbmError(f"Expected images of shape (n, 1 or 3, H, W) with n > 0, got {tuple(images.shape)}.")
    if images.dtype == torch.uint8:
        return images.float() / 255
    return torch.nan_to_num(images.detach().float().cpu()).clamp(0, 1)


def _to_pil(image: torch.Tensor) -> Image.Image:
    """Float (C, H, W) in [0, 1] → 'L' (C=1) or 'RGB' (C=3) image."""
    a = image.mul(255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(a[0], mode="L") if a.shape[0] == 1 else Image.fromarray(a.transpose(1, 2, 0), mode="RGB")


def _write_png_atomic(img: Image.Image, path: Path) -> None:
    """Write a PNG atomically (rbmcli.files.write_with: temp file, fsync, 0644, rename)."""
    from rbmcli.files import write_with

    write_with(path, lambda f: img.save(f, format="PNG"))


def image_grid(images: torch.Tensor, nrow: int, padding: int = 2) -> torch.Tensor:
    """Tile (n, C, H, W) into (C, rows*(H+p)+p, nrow*(W+p)+p), zero padding: torchvision's make_grid
    layout (one image comes back unpadded), written here because importing torchvision costs ~2 s."""
    n, c, h, w = images.shape
    if n == 1:
        return images[0]
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.zeros((c, rows * (h + padding) + padding, cols * (w + padding) + padding), dtype=images.dtype)
    for k, image in enumerate(images):
        top, left = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = image
    return grid


def save_png(images: torch.Tensor, path: str | Path, nrow: int | None = None, padding: int = 2) -> Path:
    """Write images (n, C, H, W), float in [0, 1] or uint8, as one grid PNG, atomically.

    nrow images per row (default ceil(sqrt(n))); gray images give a gray PNG.
    """
    x = _as_unit_float(images)  # (n, C, H, W)
    grid = image_grid(x, nrow or math.ceil(math.sqrt(x.shape[0])), padding)  # (C, H', W')
    _write_png_atomic(_to_pil(grid), Path(path))
    return Path(path)


def save_individual(images: torch.Tensor, folder: str | Path, prefix: str = "image") -> list[Path]:
    """Write each image (n, C, H, W) as `<folder>/<prefix>_<index>.png`, index zero-padded (≥ 4 digits)."""
    x = _as_unit_float(images)
    width = max(4, len(str(x.shape[0] - 1)))
    paths = [Path(folder) / f"{prefix}_{i:0{width}d}.png" for i in range(x.shape[0])]
    for image, path in zip(x, paths):
        _write_png_atomic(_to_pil(image), path)
    return paths


def list_image_files(folder: str | Path, recursive: bool = True) -> list[Path]:
    """The image files under `folder` (recursive), or directly in it, sorted; extensions as
    IMAGE_EXTENSIONS, any case."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RbmError(f"Expected a folder of images at {folder}, but it is missing or not a folder.")
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in found if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
