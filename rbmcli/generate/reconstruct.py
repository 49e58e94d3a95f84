"""Reconstructions from a checkpoint: the library behind `rbm reconstruct`.

The mean pass up, optionally Gibbs steps in the top RBM, the mean pass down; with gray inputs
this is colorization (gray in, color out), with an occluded input the restoration of the
hidden part.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from rbmcli.data.batches import to_visible
from rbmcli.data.images import list_image_files, load_image, save_png
from rbmcli.errors import RbmError
from rbmcli.model.sampling import gibbs_chain, to_pixels
from rbmcli.train.checkpoint import load_model
from rbmcli.train.devices import resolve_device


def to_gray(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (n, C, H, W) → luminance (ITU-R 601-2, as Pillow's 'L') replicated to `channels`."""
    if images.shape[1] == 3:
        r, g, b = images.int().unbind(1)  # (n, H, W) each; 0.299, 0.587, 0.114 in 16-bit fixed point
        images = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]
    return images.expand(-1, channels, -1, -1).contiguous()


def _reconstruct(dbn, v: torch.Tensor, steps: int, generator) -> torch.Tensor:
    """steps = 0: mean pass up to the top hidden layer and down. steps > 0: mean pass up to the
    top RBM's visible units, `steps` Gibbs steps there (last visible a mean), mean pass down."""
    if steps == 0:
        return dbn.down(dbn.up(v))
    top = dbn.layers[-1]
    v_top = top.flatten_input(dbn.up(v, upto=len(dbn.layers) - 1))
    return to_pixels(dbn, gibbs_chain(top, v_top, steps, generator, mean_last=True))


def reconstruct_images(ckpt_path: str | Path, images: torch.Tensor, *, steps: int = 0, gray: bool = False,
                       device: str = "auto", seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Reconstructions float (n, C, H, W) in [0, 1] of uint8 images (n, C, H, W) in the
    model's input shape. gray=True feeds their luminance (replicated to C channels)."""
    if steps < 0:
        raise RbmError("--steps must be >= 0", usage=True)
    dbn, info = load_model(ckpt_path)
    shape = tuple(info["input_shape"])
    if images.dim() != 4 or tuple(images.shape[1:]) != shape or len(images) == 0:
        raise RbmError(f"images of shape {tuple(images.shape)} do not fit the model's input (n, {shape})")
    dev = resolve_device(device)
    dbn, n_v = dbn.to(dev).eval(), dbn.specs[0].visible_units.n
    x = to_gray(images, shape[0]) if gray else images
    g = torch.Generator(device=dev).manual_seed(seed)
    out = []
    with torch.inference_mode():
        for chunk in x.split(batch_size):
            rec = _reconstruct(dbn, to_visible(chunk.to(dev), n_v), steps, g)
            out.append((rec.reshape(chunk.shape) / n_v).clamp(0, 1).cpu())
    return torch.cat(out)


def user_image_files(paths: list[str | Path]) -> list[Path]:
    """Image files and folders → the image files (folders expanded recursively, sorted),
    without opening any: a missing path or an empty folder raises RbmError naming it, so a
    command checks its inputs before its outputs and before any work."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_image_files(p)
            if not found:
                raise RbmError(f"No image files in folder {p}; expected .png, .jpg, ... files.")
            files += found
        elif not p.exists():
            raise RbmError(f"Image not found: {p}; check the path.")
        else:
            files.append(p)  # open_image reports an unreadable file by name
    if not files:
        raise RbmError("no images given", usage=True)
    return files


def load_user_images(paths: list[str | Path], channels: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """Image files and folders (expanded by `user_image_files`) → uint8
    (n, channels, size, size) and the file names.

    Each image is center-cropped to a square and resized (LANCZOS) to the model's input.
    Conversions: transparency is composited over white, 16-bit gray scaled to 8 bits,
    palette/CMYK made RGB; a color image for a gray model becomes its luminance
    (ITU-R 601-2), a gray image for a color model is replicated to 3 channels. A missing path,
    empty folder, non-image, empty, truncated or oversized file raises RbmError naming it."""
    files = user_image_files(paths)
    images = [load_image(f, channels, size) for f in files]
    return torch.stack(images), [str(f) for f in files]


def write_reconstructions(originals: torch.Tensor, recons: torch.Tensor, out_png: str | Path,
                          per_row: int = 16) -> Path:
    """One PNG: originals (uint8 or float in [0, 1]) above their reconstructions, in row pairs
    of up to per_row images (a short last pair is padded with white). Atomic."""
    if originals.shape != recons.shape:
        raise RbmError(f"originals {tuple(originals.shape)} and reconstructions {tuple(recons.shape)} differ")
    orig = originals.float() / 255 if originals.dtype == torch.uint8 else originals.float()
    n, w = len(orig), min(len(orig), per_row)
    pad = torch.ones(math.ceil(n / w) * w - n, *orig.shape[1:])
    rows_o, rows_r = torch.cat([orig.cpu(), pad]).split(w), torch.cat([recons.float().cpu(), pad]).split(w)
    grid = torch.cat([t for pair in zip(rows_o, rows_r) for t in pair])  # (2·rows·w, C, H, W)
    return save_png(grid, out_png, nrow=w)
