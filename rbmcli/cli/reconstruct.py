"""`rbm reconstruct`: images (files, folders or a dataset's) through the model and back,
written under the originals; with --gray, colorization."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbmcli.cli.common import out, refuse_overwrite, table
from rbmcli.errors import RbmError
from rbmcli.options import MAX_COUNT, SEED_MAX, check_ints


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
    from rbmcli.train.checkpoint import load_model
    from rbmcli.data.datasets import checkpoint_dataset
    from rbmcli.generate.reconstruct import (load_user_images, reconstruct_images, to_gray, user_image_files,
                                             write_reconstructions)

    if bool(images) == bool(dataset):
        raise RbmError("give IMAGE files/folders or --dataset NAME (one of the two)", usage=True)
    check_ints({"-n/--num-samples": (n, 1, 1_000_000), "--steps": (steps, 0, MAX_COUNT),
                "--seed": (seed, 0, SEED_MAX)})
    _, info = load_model(checkpoint)  # inputs before outputs: a missing input is the news, not an old file
    if images:
        user_image_files(images)
    refuse_overwrite({"--out": output}, force)
    c, h, _ = info["input_shape"]
    if images:
        x, _names = load_user_images(images, c, h)
    else:
        x = checkpoint_dataset(info, split, name=dataset, data_dir=data_dir, limit=n).images
    rec = reconstruct_images(checkpoint, x, steps=steps, gray=gray, device=device, seed=seed)
    write_reconstructions(to_gray(x, c) if gray else x, rec, output)
    out.print(table("rbm reconstruct", {"file": output, "images": len(x), "steps": steps, "gray": gray}))
