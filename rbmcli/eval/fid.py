"""Fréchet Inception Distance, the pipeline of pytorch-fid's fid_score.py.

Heusel et al. (2017), "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium": fit a Gaussian to the pool3 features of each image set and report

    d² = ‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}).

    images (n, C, H, W) uint8 -> inception_activations (n, 2048)
        -> activation_statistics (μ (2048,), Σ (2048, 2048)) -> frechet_distance

The network and its weights live in rbmcli.eval.inception; real-data statistics are cached as
.npz files by `cached_statistics`. FID on fewer than 2048 images has a singular Σ: it is
still defined (the eps path below) but biased upwards, so compare like with like.
"""

import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn

from rbmcli.errors import RbmError
from rbmcli.data.images import IMAGE_EXTENSIONS, list_image_files, load_image
from rbmcli.eval.inception import build_inception, resolve_inception_weights
from rbmcli.files import write_with

Statistics = tuple[np.ndarray, np.ndarray]  # μ (d,), Σ (d, d)
Progress = Callable[[int, int | None], None]  # (images done, total or None if unknown)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """d² = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^{1/2}); μ (d,), Σ (d, d)."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise RbmError(f"FID statistics disagree in shape: μ {mu1.shape} vs {mu2.shape}, "
                       f"Σ {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = sqrtm_product(sigma1, sigma2, eps)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """(Σ1 Σ2)^{1/2}, real, (d, d).

    If the square root of the product is not finite (a singular product), eps·I is added to
    both factors, as pytorch-fid does. Round-off gives Σ1Σ2 (whose eigenvalues are real and
    ≥ 0) a tiny imaginary part, which is dropped; a large one means too few images.
    """
    with warnings.catch_warnings():  # "singular" is expected for n < d; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            biggest = np.abs(covmean.imag).max()
            raise RbmError(f"FID is ill-conditioned (imaginary part {biggest:.3g} in "
                           "(Σ1Σ2)^1/2): use more images")
        covmean = covmean.real
    return covmean


def activation_statistics(acts: np.ndarray) -> Statistics:
    """μ = mean of the rows (d,) and Σ = their covariance with ddof=1 (d, d); acts (n, d)."""
    acts = np.asarray(acts, dtype=np.float64)
    if acts.ndim != 2 or acts.shape[0] < 2:
        raise RbmError(f"FID needs at least 2 images, got activations of shape {acts.shape}")
    return acts.mean(axis=0), np.cov(acts, rowvar=False)


def to_unit_rgb(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (b, 1 or 3, H, W) -> float (b, 3, H, W) in [0, 1]; gray is replicated."""
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] not in (1, 3):
        raise RbmError("FID images must be uint8 tensors (n, 1 or 3, H, W), got "
                       f"{batch.dtype} {tuple(batch.shape)}")
    return batch.expand(-1, 3, -1, -1).float() / 255


def _features(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Model output as (b, d): the first of a list (pytorch-fid), spatial dims averaged."""
    out = model(x)
    if isinstance(out, (list, tuple)):
        out = out[0]
    if out.ndim > 2:
        out = out.mean(dim=tuple(range(2, out.ndim)))
    return out.float().cpu().numpy()


def inception_activations(images: torch.Tensor | Iterable[torch.Tensor], model: nn.Module,
                          *, batch_size: int = 50, device: str | torch.device = "cpu",
                          progress: Progress | None = None,
                          total: int | None = None) -> np.ndarray:
    """Pool3 features (n, d) of uint8 images (n, C, H, W) or of an iterable of such batches.

    `model` must already be on `device`; `total` (for `progress`) defaults to len(images)
    for a tensor and to None for an iterable.
    """
    if torch.is_tensor(images):
        total, images = len(images), [images]
    feats, done = [], 0
    with torch.inference_mode():
        for batch in images:
            for chunk in batch.split(batch_size):
                feats.append(_features(model, to_unit_rgb(chunk).to(device)))
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    if not feats:
        raise RbmError("FID got no images")
    return np.concatenate(feats).astype(np.float64)


def image_statistics(images, model: nn.Module, *, batch_size: int = 50, device="cpu",
                     progress: Progress | None = None, total: int | None = None) -> Statistics:
    """(μ, Σ) of the features of `images` (see inception_activations)."""
    return activation_statistics(
        inception_activations(images, model, batch_size=batch_size, device=device, progress=progress, total=total))


def _model_or_inception(model: nn.Module | None, weights: str | None, device) -> nn.Module:
    """`model` if given, else the FID Inception with the resolved weights (no download)."""
    if model is not None:
        return model
    return build_inception(resolve_inception_weights(weights), device)


def fid_from_images(fake, real, *, weights: str | None = None, device="cpu", batch_size: int = 50,
                    progress: Progress | None = None, model: nn.Module | None = None) -> float:
    """FID between two uint8 image sets (tensors or iterables of batches), never downloads.

    `model` replaces the Inception network (any net mapping [0,1] images to features).
    """
    model = _model_or_inception(model, weights, device)
    mu1, sigma1 = image_statistics(fake, model, batch_size=batch_size, device=device, progress=progress)
    mu2, sigma2 = image_statistics(real, model, batch_size=batch_size, device=device, progress=progress)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside `folder`, sorted (not its sub-folders: pytorch-fid's rule)."""
    if not Path(folder).is_dir():
        raise RbmError(f"image folder not found: {folder}")
    files = list_image_files(folder, recursive=False)
    if not files:
        raise RbmError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {folder}")
    return files


def image_batches(files: list[Path], batch_size: int = 50) -> Iterator[torch.Tensor]:
    """uint8 batches (b, 3, H, W) of consecutive files; a new batch starts when H, W change."""
    batch: list[torch.Tensor] = []
    for path in files:
        img = load_image(path, channels=3, size=None)
        if batch and (len(batch) == batch_size or img.shape != batch[0].shape):
            yield torch.stack(batch)
            batch = []
        batch.append(img)
    if batch:
        yield torch.stack(batch)


def folder_statistics(folder: str | Path, model: nn.Module, batch_size: int = 50,
                      device="cpu", progress: Progress | None = None) -> Statistics:
    """(μ, Σ) of the features of every image in `folder` (any size, read as RGB)."""
    files = list_images(folder)
    return image_statistics(image_batches(files, batch_size), model, batch_size=batch_size, device=device,
                            progress=progress, total=len(files))


def fid_between_folders(real_dir: str | Path, fake_dir: str | Path, *, weights: str | None = None,
                        device="cpu", batch_size: int = 50,
                        progress: Progress | None = None,
                        model: nn.Module | None = None) -> float:
    """FID between two folders of images (pytorch-fid's command line), never downloads."""
    list_images(real_dir)  # fail on a bad path before loading the network
    list_images(fake_dir)
    model = _model_or_inception(model, weights, device)
    mu1, sigma1 = folder_statistics(fake_dir, model, batch_size, device, progress)
    mu2, sigma2 = folder_statistics(real_dir, model, batch_size, device, progress)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def default_cache_dir() -> Path:
    """$RBMCLI_CACHE/fid, where RBMCLI_CACHE defaults to ~/.cache/rbmcli."""
    return Path(os.environ.get("RBMCLI_CACHE") or "~/.cache/rbmcli").expanduser() / "fid"


def cached_statistics(key: str, compute: Callable[[], Statistics],
                      cache_dir: str | Path | None = None) -> Statistics:
    """(μ, Σ) from `<cache_dir>/<key>.npz`, else from `compute()` and then saved there.

    `key` names the data exactly (e.g. "mnist-train-28-n10000"); an unreadable cache file
    is recomputed. Files are read with allow_pickle=False and written atomically.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", key):
        raise RbmError(f"bad FID statistics cache key {key!r}: use letters, digits, . _ -")
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                return npz["mu"], npz["sigma"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache file: compute again and replace it
    mu, sigma = compute()
    write_with(path, lambda f: np.savez(f, mu=mu, sigma=sigma))
    return mu, sigma


def load_statistics(path: str | Path) -> Statistics:
    """(μ, Σ) from a pytorch-fid style `.npz` (arrays `mu`, `sigma`), read without pickle."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            mu, sigma = npz["mu"], npz["sigma"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise RbmError(f"{path} is not FID statistics (.npz with arrays mu and sigma): {e}") from None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise RbmError(f"{path}: mu {mu.shape} and sigma {sigma.shape} are not (d,) and (d, d)")
    return mu, sigma


def check_fid_path(path: str | Path) -> None:
    """A folder of images or an `.npz` of statistics, checked before the network loads."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return
    list_images(path)


def path_statistics(path: str | Path, model: Callable[[], nn.Module], batch_size: int = 50, device="cpu",
                    progress: Progress | None = None) -> Statistics:
    """(μ, Σ) of a folder of images, or read from an `.npz`; model() builds the network only
    when a folder needs it."""
    path = Path(path)
    if path.suffix.lower() == ".npz" and path.is_file():
        return load_statistics(path)
    return folder_statistics(path, model(), batch_size, device, progress)


def fid_between_paths(first: str | Path, second: str | Path, *, weights: str | None = None, device="cpu",
                      batch_size: int = 50, progress: Progress | None = None) -> float:
    """FID between two folders of images or `.npz` statistics, in any mix (pytorch-fid's
    `python -m pytorch_fid PATH PATH`); never downloads."""
    check_fid_path(first)
    check_fid_path(second)
    built: list[nn.Module] = []

    def model() -> nn.Module:
        if not built:
            built.append(build_inception(resolve_inception_weights(weights), device))
        return built[0]
    mu1, sigma1 = path_statistics(second, model, batch_size, device, progress)
    mu2, sigma2 = path_statistics(first, model, batch_size, device, progress)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def save_folder_statistics(folder: str | Path, out_npz: str | Path, *, weights: str | None = None, device="cpu",
                           batch_size: int = 50, progress: Progress | None = None) -> Path:
    """Write (μ, Σ) of a folder of images as `.npz` (arrays mu, sigma), atomically: pytorch-fid's
    `--save-stats`; compare it later against folders or other statistics."""
    list_images(folder)
    mu, sigma = folder_statistics(folder, build_inception(resolve_inception_weights(weights), device), batch_size,
                                  device, progress)
    return write_with(Path(out_npz), lambda f: np.savez(f, mu=mu, sigma=sigma))
