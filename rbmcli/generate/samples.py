"""Samples from a checkpoint: the library behind `rbm sample`.

A block-Gibbs chain in the top RBM (the last visible a mean), or parallel tempering there
(sampler "pt": K chains per sample on a ladder of temperatures, the β = 1 chain kept), then
one mean pass down through every lower layer to pixels v/N_v ∈ [0, 1]
(rbmcli.model.sampling.run_top_chain).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from rbmcli.train.checkpoint import load_model
from rbmcli.errors import RbmError
from rbmcli.data.images import save_individual, save_png
from rbmcli.model.sampling import SAMPLERS, run_top_chain, top_chain_start
from rbmcli.model.tempering import DEFAULT_BETA_MIN, DEFAULT_TEMPERATURES, SwapCounts, check_units, ladder
from rbmcli.data.batches import binarize, to_visible
from rbmcli.train.devices import resolve_device

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
    sampler: str = "gibbs"
    betas: tuple[float, ...] = (1.0,)  # the PT ladder (gibbs: just β = 1)
    swap_rates: list[float] = field(default_factory=list)  # PT: acceptance of swaps between β_i and β_i+1


def model_steps(info: dict) -> int:
    """The chain length a checkpoint is sampled with by default: DEFAULT_STEPS, or the k of a
    model whose top layer was trained with --negatives noise. Such a model learned to turn
    noise into data in exactly k steps; longer chains drift toward its equilibrium, which it was
    not trained to match (measured: 12.5 % largest class at k = 10, 47.6 % after 1,000 steps)."""
    config = info.get("config") or {}
    return int(config.get("gibbs_steps", 1)) if config.get("negatives") == "noise" else DEFAULT_STEPS


def _init_images(info: dict, n: int, *, dataset: str | None, data_dir, split: str, seed: int) -> torch.Tensor:
    """The first n images (cycled if fewer) of a dataset split as uint8 (n, C, H, W) in the
    model's shape (rbmcli.data.datasets.checkpoint_dataset), binarised as in training."""
    from rbmcli.data.datasets import checkpoint_dataset

    images = checkpoint_dataset(info, split, name=dataset, data_dir=data_dir, limit=n).images
    if len(images) == 0:
        raise RbmError(f"dataset {dataset or info['config'].get('dataset')} ({split}) holds no images")
    images = binarize(images, info.get("config", {}).get("binarize", "none"), seed)  # as the model saw them in training
    return images[torch.arange(n) % len(images)]


def sample_images(ckpt_path: str | Path, n: int = 64, *, steps: int | None = None, init: str = "noise",
                  dataset: str | None = None, data_dir: str | Path | None = None, split: str = "train",
                  seed: int = 0, device: str = "auto", batch_size: int = 256, every: int = 0,
                  progress: Callable[[int, int], None] | None = None, sampler: str = "gibbs",
                  temperatures: int = DEFAULT_TEMPERATURES, beta_min: float = DEFAULT_BETA_MIN) -> SampleResult:
    """n samples of the checkpoint's DBN as float (n, C, H, W) in [0, 1], after `steps` Gibbs
    steps (None: the model's own, `model_steps`).

    Chains run in chunks of batch_size (bounded memory), all from one generator seeded with
    `seed` (same seed, device and batch_size ⇒ same images). init "noise" starts the top chain
    from a draw at zero input, "data" from dataset images pushed up the stack. With every > 0,
    `frames` holds the first STRIP_CHAINS chains every `every` steps. progress(done, total)
    counts chain-steps (n·steps in all). sampler "pt" runs `temperatures` chains per sample
    (tempering.ladder(temperatures, beta_min)); `swap_rates` then holds each neighbouring
    pair's swap acceptance, read once at the end."""
    if n < 1 or (steps is not None and steps < 0) or batch_size < 1 or every < 0 or init not in INITS or sampler not in SAMPLERS:
        raise RbmError(f"need n >= 1, steps >= 0, batch size >= 1, every >= 0, init in {INITS}, "
                       f"sampler in {SAMPLERS}", usage=True)
    betas = ladder(temperatures, beta_min) if sampler == "pt" else (1.0,)
    dbn, info = load_model(ckpt_path)
    steps = model_steps(info) if steps is None else steps
    if sampler == "pt":
        check_units(dbn.specs[-1])
    dev = resolve_device(device)
    dbn = dbn.to(dev).eval()
    shape, n_v = info["input_shape"], dbn.specs[0].visible_units.n
    data = _init_images(info, n, dataset=dataset, data_dir=data_dir, split=split, seed=seed) if init == "data" else None
    g = torch.Generator(device=dev).manual_seed(seed)
    counts = SwapCounts.zeros(len(betas), dev)
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
            pix, fr = run_top_chain(dbn, v, steps, g, every=every, keep=keep, on_step=lambda: tick(m), sampler=sampler,
                                    temperatures=len(betas), beta_min=beta_min, counts=counts)
            images.append((pix.reshape(m, *shape) / n_v).clamp(0, 1).cpu())
            frames += [(f.reshape(-1, *shape) / n_v).clamp(0, 1).cpu() for f in fr]
    return SampleResult(torch.cat(images), frames, time.time() - t0, steps, str(dev), sampler, betas,
                        counts.rates() if sampler == "pt" else [])


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
