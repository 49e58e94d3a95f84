"""`rbm sample`: a grid (and optionally one PNG per sample and a chain strip) from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbmcli.cli.common import bar_progress, out, refuse_overwrite, table
from rbmcli.errors import RbmError
from rbmcli.files import check_output
from rbmcli.options import MAX_COUNT, SEED_MAX, check_ints

DEFAULT_TEMPERATURES, DEFAULT_BETA_MIN = 4, 0.8  # = rbmcli.model.tempering's (not imported, as above)


def sample(
    checkpoint: Annotated[Path, typer.Argument(help="A model .safetensors written by `rbm train`.")],
    n: Annotated[int, typer.Option("-n", "--num-samples", "--n", help="Number of samples.")] = 64,
    output: Annotated[Path, typer.Option("-o", "--out", help="Grid PNG to write.")] = Path("samples.png"),
    steps: Annotated[Optional[int], typer.Option(help="Gibbs steps in the top RBM per chain (default: 1000, or the k of a model trained with --negatives noise).", show_default=False)] = None,
    sampler: Annotated[str, typer.Option(help="gibbs (one block-Gibbs chain per sample) or pt (parallel tempering in the top RBM).")] = "gibbs",
    temperatures: Annotated[int, typer.Option(help="pt: chains per sample, at inverse temperatures from 1 down to --beta-min (geometric); costs about K times gibbs.")] = DEFAULT_TEMPERATURES,
    beta_min: Annotated[float, typer.Option(help="pt: the lowest inverse temperature of the ladder, 0 < beta_min < 1.")] = DEFAULT_BETA_MIN,
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
    from rbmcli.generate.samples import sample_images, write_samples

    if strip is not None and every < 1:
        raise RbmError("--strip needs --every K (K >= 1)", usage=True)
    check_ints({"-n/--num-samples": (n, 1, 1_000_000), "--steps": (steps, 0, MAX_COUNT),
                "--seed": (seed, 0, SEED_MAX), "--batch-size": (batch_size, 1, 1_000_000),
                "--every": (every, 0, MAX_COUNT), "--temperatures": (temperatures, 1, 1000)})
    if sampler not in ("gibbs", "pt") or not 0 < beta_min < 1:
        raise RbmError(f"--sampler must be gibbs or pt and --beta-min strictly between 0 and 1, got {sampler!r}, {beta_min}",
                       usage=True)
    check_output(individual, force=force, option="--individual", folder=True)
    refuse_overwrite({"--out": output, "--strip": strip}, force)
    bar, on_progress = bar_progress("sampling", quiet)
    with bar:
        result = sample_images(checkpoint, n, steps=steps, init=init, dataset=dataset, data_dir=str(data_dir) if data_dir else None, split=split,
                               seed=seed, device=device, batch_size=batch_size, every=every, progress=on_progress,
                               sampler=sampler, temperatures=temperatures, beta_min=beta_min)
    write_samples(result, output, individual_dir=individual, strip_png=strip)
    rate = n / result.seconds if result.seconds > 0 else float("inf")
    rows = {"file": output, "n": n, "steps": result.steps, "device": result.device, "seconds": f"{result.seconds:.2f}",
            "samples/s": f"{rate:.1f}", "sampler": sampler}
    if sampler == "pt":
        rows["temperatures"] = " ".join(f"{b:.3g}" for b in result.betas)
        rows["swap acceptance"] = " ".join(f"{r:.2f}" for r in result.swap_rates)
    rows.update({"individual": individual} if individual else {})
    rows.update({"strip": strip} if strip else {})
    if not quiet:
        out.print(table("rbm sample", rows))
