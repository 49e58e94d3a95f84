"""`rbm sample` and `rbm reconstruct`: thin Typer commands over `rbmcli.generate`.

Registered onto the app by `cli.py` (`cli_generate.register(app)`); errors follow cli.py:
one `Error:` line, exit 1 for a domain error, 2 for a usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbmcli.cli import _table, domain_errors, err, out
from rbmcli.errors import RbmError
from rbmcli.files import check_output
from rbmcli.options import MAX_COUNT, SEED_MAX, check_ints

DEFAULT_STEPS = 1000  # = rbmcli.generate.DEFAULT_STEPS (not imported: keeps `rbm --help` free of torch)


def _refuse_overwrite(paths: dict[str, Optional[Path]], force: bool) -> None:
    """Check every output before any work ({option: path}): never overwrite one silently
    (exit 1 unless --force); a name too long, a folder or an unwritable place is refused."""
    for option, p in paths.items():
        check_output(p, force=force, option=option)


def _progress(total_label: str, quiet: bool = False):
    """A rich progress bar on stderr (off a terminal or with quiet: nothing) and its callback(done, total)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(total_label), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                   TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=True)
    task = bar.add_task(total_label, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def sample(
    checkpoint: Annotated[Path, typer.Argument(help="A model .safetensors written by `rbm train`.")],
    n: Annotated[int, typer.Option("-n", "--num-samples", "--n", help="Number of samples.")] = 64,
    output: Annotated[Path, typer.Option("-o", "--out", help="Grid PNG to write.")] = Path("samples.png"),
    steps: Annotated[int, typer.Option(help="Gibbs steps in the top RBM per chain.")] = DEFAULT_STEPS,
    init: Annotated[str, typer.Option(help="Chain start: noise, or data (dataset images pushed up).")] = "noise",
    dataset: Annotated[Optional[str], typer.Option(help="Dataset for --init data (default: the checkpoint's).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder for --init data.")] = None,
    split: Annotated[str, typer.Option(help="Dataset split for --init data.")] = "train",
    seed: Annotated[int, typer.Option(help="Seed of the chains (same seed, same PNG).")] = 0,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu), cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[int, typer.Option(help="Chains run at once (bounds memory).")] = 256,
    every: Annotated[int, typer.Option(help="Keep the first 8 chains every K steps for --strip (0: off).")] = 0,
    individual: Annotated[Optional[Path], typer.Option(help="Also write one PNG per sample into this folder (for FID).")] = None,
    strip: Annotated[Optional[Path], typer.Option(help="Chain-evolution PNG (rows: chains, columns: time); needs --every.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing outputs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display and no summary table.")] = False,
):
    """Draw samples from a trained model and write them as a PNG grid.

    Example: rbm sample runs/fm/model.safetensors -n 64 --steps 1000 -o samples.png
    """
    from rbmcli.generate import sample_images, write_samples

    if strip is not None and every < 1:
        raise RbmError("--strip needs --every K (K >= 1)", usage=True)
    check_ints({"-n/--num-samples": (n, 1, 1_000_000), "--steps": (steps, 0, MAX_COUNT),
                "--seed": (seed, 0, SEED_MAX), "--batch-size": (batch_size, 1, 1_000_000),
                "--every": (every, 0, MAX_COUNT)})
    check_output(individual, force=force, option="--individual", folder=True)
    _refuse_overwrite({"--out": output, "--strip": strip}, force)
    bar, on_progress = _progress("sampling", quiet)
    with bar:
        result = sample_images(checkpoint, n, steps, init, dataset, str(data_dir) if data_dir else None, split,
                               seed, device, batch_size, every, on_progress)
    write_samples(result, output, individual_dir=individual, strip_png=strip)
    rate = n / result.seconds if result.seconds > 0 else float("inf")
    rows = {"file": output, "n": n, "steps": steps, "device": result.device, "seconds": f"{result.seconds:.2f}",
            "samples/s": f"{rate:.1f}"}
    rows.update({"individual": individual} if individual else {})
    rows.update({"strip": strip} if strip else {})
    if not quiet:
        out.print(_table("rbm sample", rows))


def reconstruct(
    checkpoint: Annotated[Path, typer.Argument(help="A model .safetensors written by `rbm train`.")],
    images: Annotated[Optional[list[Path]], typer.Argument(help="Image files and/or folders of images.")] = None,
    output: Annotated[Path, typer.Option("-o", "--out", help="PNG to write: originals above reconstructions.")] = Path("reconstructions.png"),
    steps: Annotated[int, typer.Option(help="Gibbs steps in the top RBM (0: mean pass up and down).")] = 0,
    gray: Annotated[bool, typer.Option(help="Feed the images' luminance (colorization demo: gray in, color out).")] = False,
    dataset: Annotated[Optional[str], typer.Option(help="Reconstruct the first -n images of this dataset instead of IMAGE.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder for --dataset (default: the checkpoint's).")] = None,
    split: Annotated[str, typer.Option(help="Dataset split for --dataset.")] = "test",
    n: Annotated[int, typer.Option("-n", "--num-samples", "--n", help="Number of dataset images with --dataset.")] = 16,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu), cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the Gibbs steps.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output.")] = False,
):
    """Reconstruct images through the model (up the stack and down) and write them under the originals.

    Example: rbm reconstruct runs/fm/model.safetensors photos/ cat.png -o recon.png --gray
    """
    from rbmcli.checkpoint import load_model
    from rbmcli.generate import load_user_images, reconstruct_images, to_gray, write_reconstructions

    if bool(images) == bool(dataset):
        raise RbmError("give IMAGE files/folders or --dataset NAME (one of the two)", usage=True)
    check_ints({"-n/--num-samples": (n, 1, 1_000_000), "--steps": (steps, 0, MAX_COUNT),
                "--seed": (seed, 0, SEED_MAX)})
    _refuse_overwrite({"--out": output}, force)
    _, info = load_model(checkpoint)
    c, h, _ = info["input_shape"]
    if images:
        x, _names = load_user_images(images, c, h)
    else:
        x = _dataset_images(info, dataset, data_dir, split, n, c, h)
    rec = reconstruct_images(checkpoint, x, steps, gray, device, seed)
    write_reconstructions(to_gray(x, c) if gray else x, rec, output)
    out.print(_table("rbm reconstruct", {"file": output, "images": len(x), "steps": steps, "gray": gray}))


def _dataset_images(info: dict, name: str, data_dir: Optional[Path], split: str, n: int, c: int, h: int):
    """The first n images of a dataset split in the model's shape (data_dir: the checkpoint's
    own when it was trained on that dataset)."""
    from rbmcli.data import load_dataset

    cfg = info.get("config", {})
    if data_dir is None and name == cfg.get("dataset") and cfg.get("data_dir"):
        data_dir = Path(cfg["data_dir"])
    return load_dataset(name, split, data_dir, size=h, limit=n, channels=c).images


def register(app: typer.Typer) -> None:
    """Add `sample` and `reconstruct` to the `rbm` app."""
    app.command("sample")(domain_errors(sample))
    app.command("reconstruct")(domain_errors(reconstruct))
