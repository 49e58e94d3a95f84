"""The `rbm` command: a thin Typer layer over the library (the only module using typer/rich).

Each command validates its options, builds a config, calls one library function with a
progress callback and renders the result. Errors: one `Error:` line; exit 1 for a domain
error, 2 for a usage error, 130 after Ctrl-C (training saves first).
"""

from __future__ import annotations

import functools
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from rbmcli import __version__
from rbmcli.config import TrainConfig
from rbmcli.errors import RbmError

_D = TrainConfig()  # the defaults shown by --help are the library's

app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Restricted Boltzmann machines trained by backprop: train, sample, reconstruct, evaluate.")
out = Console()
err = Console(stderr=True)


def _version(value: bool):
    if value:
        print(f"rbmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False):
    """Restricted Boltzmann machines trained by backprop (contrastive free energy)."""


def domain_errors(fn):
    """Print an RbmError as one `Error:` line and exit 1 (2 for a usage error): no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RbmError as e:
            err.print(f"[red]Error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2 if e.usage else 1) from None
    return wrapper


def _table(title: str, rows: dict) -> Table:
    t = Table(title=title, show_header=False)
    for k, v in rows.items():
        t.add_row(str(k), str(v))
    return t


class _Stop:
    """SIGINT/SIGTERM: ask training to save and stop at the next step; twice: stop now."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        err.print("[yellow]Stopping: saving a checkpoint at the end of this step (again to abort)...[/]")

    def install(self):
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)
        return self


def _train_progress(quiet: bool):
    """A rich progress display (stderr) fed by the trainer's events; plain lines off a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if quiet:
        return None, lambda event: None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err,
                        disable=not err.is_terminal)
    tasks = {}

    def on_event(e: dict):
        if e["kind"] == "start":
            tasks["epochs"] = progress.add_task("epochs", total=e["epochs"], completed=e["epoch"], info="")
            tasks["batches"] = progress.add_task("batches", total=e["steps_per_epoch"], info="")
            err.print(f"training on {e['device']}: {e['epochs']} epochs x {e['steps_per_epoch']} steps")
        elif e["kind"] == "batch":
            loss = " ".join(f"{x:.4g}" for x in e["loss"])
            progress.update(tasks["batches"], completed=e["batch"], info=f"loss {loss}")
        elif e["kind"] == "epoch":
            progress.update(tasks["epochs"], completed=e["epoch"])
            progress.reset(tasks["batches"])
            losses = " ".join(f"{k}:{v:.4g}" for k, v in e["loss"].items())
            line = f"epoch {e['epoch']}: loss {losses}  recon rmse {e['recon_rmse']:.4f}  {e['seconds']:.1f}s"
            progress.console.print(line) if err.is_terminal else err.print(line)

    return progress, on_event


@app.command()
@domain_errors
def train(
    dataset: Annotated[str, typer.Option(help="mnist, fashion-mnist, cifar10, caltech101, celeba or folder.")] = _D.dataset,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder (torchvision layout; for 'folder' the images). MNIST needs none.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Center-crop and resize images to SIZE x SIZE.")] = _D.size,
    arch: Annotated[str, typer.Option(help="Preset (tiny, small, small-dbn, small-conv, paper-classify, paper-generate) or spec like 'conv:64,conv:128,dense:500'.")] = _D.arch,
    visible_units: Annotated[int, typer.Option(help="N of the data layer (1 = binary; 255 = pixel levels).")] = _D.visible_units,
    hidden_units: Annotated[int, typer.Option(help="N of every hidden layer.")] = _D.hidden_units,
    k: Annotated[Optional[float], typer.Option(help="Scale k in f(x)=N*g(kx); default 1 for N=1, 4/N (sigmoid), 1/N (relu).")] = _D.k,
    activation: Annotated[str, typer.Option(help="Unit activation g: sigmoid (paper) or relu (capped NReLU).")] = _D.activation,
    binarize: Annotated[str, typer.Option(help="With --visible-units 1: none (gray as probabilities), threshold, sample.")] = _D.binarize,
    negatives: Annotated[str, typer.Option(help="Negative samples: meanfield (paper), cd or pcd.")] = _D.negatives,
    gibbs_steps: Annotated[int, typer.Option(help="Gibbs steps for cd/pcd negatives.")] = _D.gibbs_steps,
    mode: Annotated[str, typer.Option(help="joint (backprop through the stack), detached, or greedy.")] = _D.mode,
    epochs: Annotated[int, typer.Option(help="Training epochs (greedy: per layer).")] = _D.epochs,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (paper: 128).")] = _D.batch_size,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 0.03; see docs/results.md).")] = _D.lr,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first LIMIT training images.")] = _D.limit,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu), cpu, cuda or cuda:N.")] = _D.device,
    seed: Annotated[int, typer.Option(help="Seed for every random choice (same seed, same weights).")] = _D.seed,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default runs/DATASET-ARCH-TIME).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    save_every: Annotated[int, typer.Option(help="Also checkpoint every N optimiser steps (0: epoch ends).")] = _D.save_every,
    sample_steps: Annotated[int, typer.Option(help="Gibbs steps for the per-epoch sample grid.")] = _D.sample_steps,
    download: Annotated[bool, typer.Option(help="Allow downloading the dataset (off: local files only).")] = _D.download,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
):
    """Train an RBM or DBN and write a run folder with checkpoints and sample grids.

    Example: rbm train --dataset fashion-mnist --arch small-conv --epochs 10 --out runs/fm
    """
    from rbmcli.train import train as run_training

    if resume:
        if out_dir is None:
            raise RbmError("--resume needs --out RUN_DIR", usage=True)
        cfg = _resumed_config(out_dir, epochs)
    else:
        cfg = TrainConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None, size=size, arch=arch,
                          visible_units=visible_units, hidden_units=hidden_units, k=k, activation=activation,
                          binarize=binarize, negatives=negatives, gibbs_steps=gibbs_steps, mode=mode, epochs=epochs,
                          batch_size=batch_size, lr=lr, limit=limit, device=device, seed=seed,
                          save_every=save_every, sample_steps=sample_steps, download=download).validate()
    if not quiet:
        err.print(_table("rbm train", asdict(cfg)))
    stop = _Stop().install()
    progress, on_event = _train_progress(quiet)
    if progress is not None:
        progress.start()
    try:
        result = run_training(cfg, out_dir, resume, on_event, lambda: stop.requested)
    finally:
        if progress is not None:
            progress.stop()
    if result.interrupted:
        err.print(f"Interrupted: checkpoint saved to {result.checkpoint}; continue with "
                  f"rbm train --resume --out {result.run_dir}")
        raise typer.Exit(130)
    last = result.metrics[-1] if result.metrics else {}
    out.print(_table("result", {"run folder": result.run_dir, "checkpoint": result.checkpoint,
                                "epochs": result.epochs_done, "seconds": f"{result.seconds:.1f}",
                                "recon rmse": f"{last.get('recon_rmse', float('nan')):.4f}"}))


def _resumed_config(run_dir: Path, epochs: int):
    """The run's own config (architecture included); only --epochs may extend it."""

    path = run_dir / "config.json"
    if not path.is_file():
        raise RbmError(f"--resume: no config.json in {run_dir}", usage=True)
    try:
        cfg = TrainConfig.from_json(path.read_text())
    except (ValueError, TypeError) as e:
        raise RbmError(f"--resume: {path} is not a valid config ({e})") from None
    cfg.epochs = max(cfg.epochs, epochs)
    return cfg.validate()


def main():
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("Aborted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
