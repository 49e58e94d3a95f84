"""Samples and reconstructions from a checkpoint: the library behind `rbm sample` and
`rbm reconstruct`.

Sampling (paper §4): a block-Gibbs chain in the top RBM (the last visible a mean), then one
mean pass down through every lower layer to pixels v/N_v ∈ [0, 1]. Reconstruction: the mean
pass up, optionally Gibbs steps in the top RBM, the mean pass down; with gray inputs this is
the paper's colorization demo (gray in, color out).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from rbmcli.checkpoint import load_model
from rbmcli.errors import RbmError
from rbmcli.images import list_image_files, load_image, save_individual, save_png
from rbmcli.sampling import gibbs_chain, gibbs_step, top_chain_start
from rbmcli.batches import binarize, to_visible
from rbmcli.devices import resolve_device

# Default chain length, measured on a 784-500 binary RBM (PCD, 5 epochs on 20k MNIST images),
# 64 chains from noise, seed 0: at 10-30 steps every chain is still the gray start state (mean
# pixel std across chains 0.02-0.03); at 100 about a sixth have become digits (std 0.12), at
# 300 about half, at 1000 all but a few. Fewer steps give a grid of near-
# identical gray tiles; 1000 is where the samples stop changing in kind, at ~2-3 s per 64
# samples of that model on 2 CPU cores. (A meanfield-trained N=255 model barely leaves the
# start state at any length: use --init data or more steps for such models.)
DEFAULT_STEPS = 1000
STRIP_CHAINS = 8  # chains kept, every `every` steps, for the evolution strip
INITS = ("noise", "data")


@dataclass
class SampleResult:
    images: torch.Tensor  # float (n, C, H, W) in [0, 1]
    frames: list[torch.Tensor] = field(default_factory=list)  # per `every` steps: (m, C, H, W), m ≤ STRIP_CHAINS
    seconds: float = 0.0
    steps: int = 0
    device: str = "cpu"


def _pixels(dbn, v_top: torch.Tensor) -> torch.Tensor:
    """Mean pass from the top RBM's visible state down to layer 0's visible units (0..N_v)."""
    return v_top if len(dbn.layers) == 1 else dbn.down(v_top, start=len(dbn.layers) - 2)


def _chains(dbn, v: torch.Tensor, steps: int, generator, every: int, keep: int,
            on_step: Callable[[], None]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """`steps` Gibbs steps in the top RBM from v (n, *visible_shape), the last visible a mean
    (as `sampling.generate`); returns pixels (n, ...) and the first `keep` chains' pixels
    after every `every` steps."""
    top, frames = dbn.layers[-1], []
    for i in range(steps):
        v = gibbs_step(top, v, generator, mean_visible=i == steps - 1)
        if every and keep and (i + 1) % every == 0:
            frames.append(_pixels(dbn, v[:keep]))
        on_step()
    return _pixels(dbn, v), frames


def _init_images(info: dict, n: int, dataset: str | None, data_dir, split: str, seed: int) -> torch.Tensor:
    """The first n images (cycled if fewer) of a dataset split as uint8 (n, C, H, W) in the
    model's shape; dataset/data_dir default to those the checkpoint was trained on."""
    from rbmcli.data import load_dataset

    cfg = info.get("config", {})
    name = dataset or cfg.get("dataset")
    if not name:
        raise RbmError("--init data needs --dataset (the checkpoint names none)", usage=True)
    if data_dir is None and name == cfg.get("dataset"):
        data_dir = cfg.get("data_dir")
    c, h, _ = info["input_shape"]
    images = load_dataset(name, split, data_dir, size=h, limit=n, channels=c, seed=seed).images
    if len(images) == 0:
        raise RbmError(f"dataset {name} ({split}) holds no images")
    images = binarize(images, cfg.get("binarize", "none"), seed)  # as the model saw them in training
    return images[torch.arange(n) % len(images)]


def sample_images(ckpt_path: str | Path, n: int = 64, steps: int = DEFAULT_STEPS, init: str = "noise",
                  dataset: str | None = None, data_dir: str | Path | None = None, split: str = "train",
                  seed: int = 0, device: str = "auto", batch_size: int = 256, every: int = 0,
                  progress: Callable[[int, int], None] | None = None) -> SampleResult:
    """n samples of the checkpoint's DBN as float (n, C, H, W) in [0, 1].

    Chains run in chunks of batch_size (bounded memory), all from one generator seeded with
    `seed` (same seed, device and batch_size ⇒ same images). init "noise" starts the top chain
    from a draw at zero input, "data" from dataset images pushed up the stack. With every > 0,
    `frames` holds the first STRIP_CHAINS chains every `every` steps. progress(done, total)
    counts chain-steps (n·steps in all)."""
    if n < 1 or steps < 0 or batch_size < 1 or every < 0 or init not in INITS:
        raise RbmError(f"need n >= 1, steps >= 0, batch size >= 1, every >= 0, init in {INITS}", usage=True)
    dbn, info = load_model(ckpt_path)
    dev = resolve_device(device)
    dbn = dbn.to(dev).eval()
    shape, n_v = info["input_shape"], dbn.specs[0].visible_units.n
    data = _init_images(info, n, dataset, data_dir, split, seed) if init == "data" else None
    g = torch.Generator(device=dev).manual_seed(seed)
    done, images, frames, t0 = [0], [], [], time.time()

    def tick(m: int):
        done[0] += m
        if progress:
            progress(done[0], n * steps)

    with torch.inference_mode():
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            x = None if data is None else to_visible(data[start:start + m].to(dev), n_v)
            v = top_chain_start(dbn, m, g, x, dev)
            keep = min(STRIP_CHAINS, m) if start == 0 else 0
            pix, fr = _chains(dbn, v, steps, g, every, keep, lambda: tick(m))
            images.append((pix.reshape(m, *shape) / n_v).clamp(0, 1).cpu())
            frames += [(f.reshape(-1, *shape) / n_v).clamp(0, 1).cpu() for f in fr]
    return SampleResult(torch.cat(images), frames, time.time() - t0, steps, str(dev))


def write_samples(result: SampleResult, out_png: str | Path, nrow: int | None = None,
                  individual_dir: str | Path | None = None, strip_png: str | Path | None = None) -> list[Path]:
    """The grid (about √n per row), optionally one PNG per sample (`sample_NNNN.png`, what FID
    tools read) and the chain-evolution strip (rows = chains, columns = time). Every file is
    written atomically; returns the paths written."""
    written = []
    if individual_dir is not None:
        written += save_individual(result.images, individual_dir, prefix="sample")
    if strip_png is not None:
        if not result.frames:
            raise RbmError("the chain-evolution strip needs frames: sample with every > 0", usage=True)
        strip = torch.stack(result.frames, 1)  # (m, T, C, H, W): a row per chain
        written.append(save_png(strip.flatten(0, 1), strip_png, nrow=len(result.frames)))
    written.append(save_png(result.images, out_png, nrow=nrow))
    return written


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
    return _pixels(dbn, gibbs_chain(top, v_top, steps, generator, mean_last=True))


def reconstruct_images(ckpt_path: str | Path, images: torch.Tensor, steps: int = 0, gray: bool = False,
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


def load_user_images(paths: list[str | Path], channels: int, size: int) -> tuple[torch.Tensor, list[str]]:
    """Image files and folders (expanded to their image files, recursively, sorted) → uint8
    (n, channels, size, size) and the file names.

    Each image is center-cropped to a square and resized (LANCZOS) to the model's input.
    Conversions: transparency is composited over white, 16-bit gray scaled to 8 bits,
    palette/CMYK made RGB; a color image for a gray model becomes its luminance
    (ITU-R 601-2), a gray image for a color model is replicated to 3 channels. A missing path,
    empty folder, non-image, empty, truncated or oversized file raises RbmError naming it."""
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_image_files(p)
            if not found:
                raise RbmError(f"No image files in folder {p}; expected .png, .jpg, ... files.")
            files += found
        else:
            files.append(p)  # open_image reports a missing or unreadable file by name
    if not files:
        raise RbmError("no images given", usage=True)
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
