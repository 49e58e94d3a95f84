"""Where tensors live: choosing the device, and placing the training set on it."""

from __future__ import annotations

import torch

from rbmcli.errors import RbmError


def resolve_device(name: str) -> torch.device:
    """'auto' → cuda, then mps, then cpu. An unknown name is a usage error (exit 2); a known
    device this machine lacks is a domain error (exit 1), like missing data: the command line
    is right, the machine is not (docs/guide.md, "Exit codes")."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise RbmError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N", usage=True) from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise RbmError(f"device {name} is not available on this machine (use --device cpu)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RbmError("device mps is not available on this machine (use --device cpu)")
    return dev


def stage_images(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Where the batches are cut from. On a GPU, the whole uint8 set is copied there once when
    it takes at most a quarter of the free memory (MNIST 47 MB, CelebA 64×64 2.4 GB): no
    host→device copy per step at all. Otherwise (CPU, or too large) the host tensor."""
    if device.type != "cuda":
        return images
    free, _ = torch.cuda.mem_get_info(device)
    return images.to(device) if images.numel() * images.element_size() <= free // 4 else images
