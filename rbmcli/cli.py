"""The `rbm` command: a thin Typer layer over the library (the only module using typer/rich).

Each command validates its options, builds a config, calls one library function with a
progress callback and renders the result. Errors: one `Error:` line; exit 1 for a domain
error, 2 for a usage error, 130 after Ctrl-C (training saves first).
"""

from __future__ import annotations

import functools
import json
import os
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
    from rbmcli.allocator import keep_freed_memory

    keep_freed_memory()  # before any tensor exists: glibc's 32 MiB mmap trap (rbmcli/allocator.py)


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
    recipe: Annotated[str, typer.Option(help="generate: a binary top RBM trained on persistent chains (pcd, lr 0.01 decaying linearly, 10 epochs), whose samples vary; paper: the paper's mean-field recipe (meanfield, lr 0.03, 5 epochs, every hidden layer --hidden-units). Options given explicitly override the recipe.")] = _D.recipe,
    binary_top: Annotated[Optional[bool], typer.Option("--binary-top/--no-binary-top", help="Binary hidden units in the top layer unless --arch gives @N (recipe: generate yes, paper no).", show_default=False)] = None,
    negatives: Annotated[Optional[str], typer.Option(help="Negative samples: meanfield (paper), cd or pcd (recipe: generate pcd, paper meanfield).", show_default=False)] = None,
    gibbs_steps: Annotated[int, typer.Option(help="Gibbs steps for cd/pcd negatives.")] = _D.gibbs_steps,
    mode: Annotated[str, typer.Option(help="detached (all layers at once, inputs detached; measured best), joint (backprop through the stack), or greedy (layer by layer).")] = _D.mode,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (greedy: per layer; recipe: generate 10, paper 5), or with --resume the run's own.", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (paper: 128).")] = _D.batch_size,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (recipe: generate 0.01, paper 0.03).", show_default=False)] = None,
    lr_decay: Annotated[Optional[str], typer.Option(help="none, linear or cosine: the rate falls to 0 by the last step (recipe: generate linear, paper none).", show_default=False)] = None,
    sparsity: Annotated[float, typer.Option(help="Weight of a penalty pulling each hidden channel's mean activity to --sparsity-target (0: off, the paper).")] = _D.sparsity,
    sparsity_target: Annotated[float, typer.Option(help="Target mean activity of hidden units, as a fraction of N.")] = _D.sparsity_target,
    weight_decay: Annotated[float, typer.Option(help="Decoupled (AdamW) weight decay λ of the weights, not the biases: w ← w·(1 − lr·λ) each step (0: off, the paper).")] = _D.weight_decay,
    visible_bias_init: Annotated[str, typer.Option(help="data: each layer's visible biases start at its input's mean activity (Hinton's guide §8); zero.")] = _D.visible_bias_init,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first LIMIT training images.")] = _D.limit,
    device: Annotated[str, typer.Option(help="auto (cuda, mps, cpu), cpu, cuda or cuda:N.")] = _D.device,
    seed: Annotated[int, typer.Option(help="Seed for every random choice (same seed, same weights).")] = _D.seed,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run folder (default runs/DATASET-ARCH-TIME).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    save_every: Annotated[int, typer.Option(help="Also checkpoint every N optimiser steps (0: epoch ends).")] = _D.save_every,
    save_minutes: Annotated[float, typer.Option(help="Also checkpoint when this many minutes passed since the last save.")] = _D.save_minutes,
    keep: Annotated[int, typer.Option(help="Keep the last KEEP per-epoch checkpoints and best.safetensors (0: only the latest).")] = _D.keep,
    precision: Annotated[str, typer.Option(help="fp32, or bf16 autocast (matmuls/convs in bfloat16; for GPUs).")] = _D.precision,
    channels_last: Annotated[bool, typer.Option(help="channels_last memory format for conv inputs (GPUs).")] = _D.channels_last,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the layer losses (fuses the unit math; compiles ~30 s first).")] = _D.compile,
    sample_steps: Annotated[int, typer.Option(help="Gibbs steps for the per-epoch sample grid.")] = _D.sample_steps,
    download: Annotated[bool, typer.Option(help="Allow downloading the dataset (off: local files only).")] = _D.download,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the filters/curves/hidden-activity pictures each epoch.")] = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard event files to RUN/tb (pip install 'rbmcli[tensorboard]').")] = False,
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
                          binarize=binarize, recipe=recipe, binary_top=binary_top, negatives=negatives,
                          gibbs_steps=gibbs_steps, mode=mode, epochs=epochs,
                          batch_size=batch_size, lr=lr, lr_decay=lr_decay, sparsity=sparsity,
                          sparsity_target=sparsity_target, weight_decay=weight_decay, visible_bias_init=visible_bias_init, limit=limit, device=device, seed=seed,
                          save_every=save_every, save_minutes=save_minutes, keep=keep, precision=precision,
                          channels_last=channels_last, compile=compile, sample_steps=sample_steps,
                          download=download).validate()
    quiet = quiet or int(os.environ.get("RANK", "0")) > 0  # torchrun: rank 0 reports for all
    if not quiet:
        err.print(_table("rbm train", asdict(cfg)))
    stop = _Stop().install()
    progress, on_event = _train_progress(quiet)
    if progress is not None:
        progress.start()
    try:
        result = run_training(cfg, out_dir, resume, on_event, lambda: stop.requested, plots=not no_plots,
                              tensorboard=tensorboard)
    except OSError as e:  # metrics.jsonl, epoch copies: disk full, folder removed, ...
        raise RbmError(f"cannot write the run folder ({e}); free space or choose another --out") from None
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


def _resumed_config(run_dir: Path, epochs: Optional[int]):
    """The run's own config (architecture included); only --epochs may extend it."""

    path = run_dir / "config.json"
    if not path.is_file():
        raise RbmError(f"--resume: no config.json in {run_dir}", usage=True)
    try:
        cfg = TrainConfig.from_json(path.read_text())
    except (ValueError, TypeError, AttributeError) as e:
        raise RbmError(f"--resume: {path} is not a valid config ({e})") from None
    cfg.epochs = max(cfg.epochs, epochs or 0)  # without --epochs: the run's own, not the default
    return cfg.validate()


from rbmcli import cli_generate  # noqa: E402  (sample, reconstruct)
cli_generate.register(app)


@app.command()
@domain_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by rbm train.")],
    out_html: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file (default RUN_DIR/report.html).")] = None,
):
    """Write one self-contained HTML page (images inlined) for sharing a run.

    Example: rbm report runs/mnist-small -o report.html
    """
    from rbmcli.report import write_report

    out.print(f"wrote {write_report(run_dir, out_html)}")


def _task_progress(quiet: bool):
    """A rich progress display with one bar per named task: callback(task, done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=quiet or not err.is_terminal)
    tasks = {}

    def update(task: str, done: int, total: int | None):
        if task not in tasks:
            tasks[task] = progress.add_task(task, total=total)
        progress.update(tasks[task], completed=done, total=total)

    return progress, update


@app.command()
@domain_errors
def evaluate(
    ckpt: Annotated[Optional[Path], typer.Argument(help="Checkpoint (default: the newest runs/*/model.safetensors).")] = None,
    svm: Annotated[bool, typer.Option("--svm", help="SVM test error on top-layer features (Table 1).")] = False,
    fid: Annotated[bool, typer.Option("--fid", help="FID of generated samples against real images (Table 2).")] = False,
    ais: Annotated[bool, typer.Option("--ais", help="Test log-likelihood: exact log Z or AIS.")] = False,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the checkpoint's).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder (default: the checkpoint's).")] = None,
    limit_train: Annotated[Optional[int], typer.Option(help="Use the first N training images.")] = None,
    limit_test: Annotated[Optional[int], typer.Option(help="Use the first N test images.")] = None,
    kernel: Annotated[str, typer.Option(help="SVM kernel: linear; nystroem (RBF through 4,096 Nyström features, fits 60k); rbf (exact libsvm, C in 3, 10, 30: the most accurate on 60k, ≈ 8–16 min per fit on a CPU core).")] = "linear",
    fid_samples: Annotated[int, typer.Option(help="Generated (and real) images for FID.")] = 10_000,
    fid_steps: Annotated[int, typer.Option(help="Gibbs steps per generated image.")] = 1000,
    inception_weights: Annotated[Optional[Path], typer.Option(help="pytorch-fid Inception weights (.pth).")] = None,
    real_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the real images.")] = None,
    fake_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the generated images.")] = None,
    ais_runs: Annotated[int, typer.Option(help="AIS runs.")] = 100,
    ais_betas: Annotated[int, typer.Option(help="AIS inverse temperatures.")] = 14_500,
    download: Annotated[bool, typer.Option(help="Allow downloading data or Inception weights.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for sampling, AIS and the validation split.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to FILE.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
):
    """Evaluate a checkpoint: SVM error, FID, log-likelihood.

    Example: rbm evaluate runs/mnist/model.safetensors --svm --ais --json results.json
    """
    from rbmcli.evaluate import EvalOptions, Row
    from rbmcli.evaluate import evaluate as run_evaluation

    progress, update = _task_progress(quiet)
    with progress:
        if real_dir or fake_dir:
            import time

            from rbmcli.fid import fid_between_folders

            if not (real_dir and fake_dir):
                raise RbmError("--real-dir and --fake-dir go together", usage=True)
            t0 = time.time()
            value = fid_between_folders(real_dir, fake_dir, str(inception_weights) if inception_weights else None,
                                        device=str(_device(device)), progress=lambda d, t: update("FID", d, t))
            source, rows = f"{real_dir} vs {fake_dir}", [Row("fid", value, {"real_dir": str(real_dir),
                                                                            "fake_dir": str(fake_dir)}, time.time() - t0)]
        else:
            opts = EvalOptions(svm, fid, ais, dataset, str(data_dir) if data_dir else None, limit_train, limit_test,
                               kernel, fid_samples, fid_steps, str(inception_weights) if inception_weights else None,
                               download, ais_runs, ais_betas, device, seed)
            source, rows = run_evaluation(ckpt, opts, update)
    if ckpt is None and not (real_dir or fake_dir):
        err.print(f"evaluated the newest checkpoint: {source}")
    table = Table(title=f"rbm evaluate: {source}")
    for col in ["metric", "value", "details", "seconds"]:
        table.add_column(col)
    for r in rows:
        table.add_row(r.metric, f"{r.value:.4f}", ", ".join(f"{k}={v}" for k, v in r.details.items()), f"{r.seconds:.1f}")
    out.print(table)
    if json_out:
        json_out.write_text(json.dumps({"checkpoint": str(source), "results": [r.to_dict() for r in rows]}, indent=2))


def _device(name: str):
    from rbmcli.devices import resolve_device

    return resolve_device(name)


def main():
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("Aborted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
