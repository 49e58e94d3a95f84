"""The `rbm` command: a thin Typer layer over the library (the only module using typer/rich).

Each command validates its options, builds a config, calls one library function with a
progress callback and renders the result. Errors: one `Error:` line; exit 1 for a domain
error, 2 for a usage error, 130 after Ctrl-C (training saves first). Text from the user or
the file system is escaped before rich prints it (`esc`), and help texts are not read as
markup (`rich_markup_mode=None`), so `[x]` always prints as itself.
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
from rich.markup import escape
from rich.table import Table

from rbmcli import __version__
from rbmcli.config import TrainConfig
from rbmcli.errors import RbmError

_D = TrainConfig()  # the defaults shown by --help are the library's

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Restricted Boltzmann machines trained by backprop: train, sample, reconstruct, evaluate, report, info.")
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


def esc(value) -> str:
    """Any value as text that rich prints literally (user paths may hold `[bold]` or `[/x]`)."""
    return escape(str(value))


def error_line(message: str) -> None:
    """The one `Error:` line on stderr, the message escaped."""
    err.print(f"[red]Error:[/] {esc(message)}", highlight=False, soft_wrap=True)


def warning_line(message: str) -> None:
    """One `Warning:` line on stderr, the message escaped."""
    err.print(f"[yellow]Warning:[/] {esc(message)}", highlight=False, soft_wrap=True)


def domain_errors(fn):
    """Print an RbmError (or an OSError no library call turned into one) as one `Error:` line
    and exit 1 (2 for a usage error): no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RbmError as e:
            error_line(str(e))
            raise typer.Exit(2 if e.usage else 1) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            error_line(f"{where}{e.strerror or e}")
            raise typer.Exit(1) from None
    return wrapper


def _table(title: str, rows: dict) -> Table:
    """A two-column table of escaped keys and values."""
    t = Table(title=esc(title), show_header=False)
    for k, v in rows.items():
        t.add_row(esc(k), esc(v))
    return t


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option `name` (the parameter's name) was set on the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


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


def loss_text(event: dict) -> str:
    """The per-layer loss of a batch or epoch event, labelled: the free-energy gap per visible
    unit, e.g. `loss/unit L0 -0.213 L1 -0.051` (events without it: the raw summed loss)."""
    per_unit = event.get("loss_per_unit")
    if per_unit:
        return "loss/unit " + " ".join(f"L{k} {v:.4g}" for k, v in per_unit.items())
    raw = event.get("loss")
    values = raw.items() if isinstance(raw, dict) else enumerate(raw or [])
    return "loss " + " ".join(f"L{k} {v:.4g}" for k, v in values)


def _health_watch(on_event):
    """Wrap an event callback: after each epoch, warn once per layer whose hidden units are
    (almost) all dead or saturated, the mark of a diverged run (shown even with --quiet)."""
    from rbmcli.report import layer_warnings

    warned = set()

    def watch(e: dict):
        on_event(e)
        if e["kind"] == "epoch":
            for text in layer_warnings(e):
                layer = text.split(":", 1)[0]
                if layer not in warned:
                    warned.add(layer)
                    warning_line(text)
    return watch


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
            progress.update(tasks["batches"], completed=e["batch"], info=loss_text(e))
        elif e["kind"] == "epoch":
            progress.update(tasks["epochs"], completed=e["epoch"])
            progress.reset(tasks["batches"])
            line = f"epoch {e['epoch']}: {loss_text(e)}  recon rmse {e['recon_rmse']:.4f}  {e['seconds']:.1f}s"
            progress.console.print(esc(line)) if err.is_terminal else err.print(esc(line))

    return progress, on_event


@app.command()
@domain_errors
def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="mnist, colored-mnist (MNIST in class colors, built in), fashion-mnist, cifar10, caltech101, celeba or folder.")] = _D.dataset,
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
    negatives: Annotated[Optional[str], typer.Option(help="Negative samples of the top layer: meanfield (paper), cd or pcd (recipe: generate pcd, paper meanfield).", show_default=False)] = None,
    lower_negatives: Annotated[Optional[str], typer.Option(help="Negative samples of the layers below the top (recipe: meanfield).", show_default=False)] = None,
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

    values = dict(dataset=dataset, data_dir=str(data_dir) if data_dir else None, size=size, arch=arch,
                  visible_units=visible_units, hidden_units=hidden_units, k=k, activation=activation,
                  binarize=binarize, recipe=recipe, binary_top=binary_top, negatives=negatives, lower_negatives=lower_negatives,
                  gibbs_steps=gibbs_steps, mode=mode, epochs=epochs,
                  batch_size=batch_size, lr=lr, lr_decay=lr_decay, sparsity=sparsity,
                  sparsity_target=sparsity_target, weight_decay=weight_decay, visible_bias_init=visible_bias_init,
                  limit=limit, device=device, seed=seed,
                  save_every=save_every, save_minutes=save_minutes, keep=keep, precision=precision,
                  channels_last=channels_last, compile=compile, sample_steps=sample_steps, download=download)
    if resume:
        if out_dir is None:
            raise RbmError("--resume needs --out RUN_DIR", usage=True)
        cfg = _resumed_config(out_dir, {k: v for k, v in values.items() if given(ctx, k)})
    else:
        cfg = TrainConfig(**values).validate()
    quiet = quiet or int(os.environ.get("RANK", "0")) > 0  # torchrun: rank 0 reports for all
    if not quiet:
        err.print(_table("rbm train", asdict(cfg)))
    stop = _Stop().install()
    progress, on_event = _train_progress(quiet)
    on_event = _health_watch(on_event)
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
        err.print(esc(f"Interrupted: checkpoint saved to {result.checkpoint}; continue with "
                      f"rbm train --resume --out {result.run_dir}"))
        raise typer.Exit(130)
    last = result.metrics[-1] if result.metrics else {}
    out.print(_table("result", {"run folder": result.run_dir, "checkpoint": result.checkpoint,
                                "epochs": result.epochs_done, "seconds": f"{result.seconds:.1f}",
                                "recon rmse": f"{last.get('recon_rmse', float('nan')):.4f}"}))


# Options that --resume applies: where and how the run goes on, not what it trains.
RESUME_MAY_CHANGE = ("epochs", "device", "save_every", "save_minutes", "keep", "sample_steps", "precision",
                     "channels_last", "compile", "download", "data_dir")


def _resumed_config(run_dir: Path, changed: dict):
    """The run's own config with the options given on the command line (`changed`, by config
    field): those of RESUME_MAY_CHANGE take effect (--epochs only extends the run); any other
    that differs from the run's (architecture, units, data, optimiser, seed) is refused."""
    path = run_dir / "config.json"
    if run_dir.is_file():
        raise RbmError(f"--resume: --out {run_dir} is a file, not a run folder", usage=True)
    if not path.is_file():
        raise RbmError(f"--resume: no config.json in {run_dir}", usage=True)
    try:
        cfg = TrainConfig.from_json(path.read_text())
    except (ValueError, TypeError, AttributeError) as e:
        raise RbmError(f"--resume: {path} is not a valid config ({e})") from None
    for name, value in changed.items():
        if name == "epochs":
            cfg.epochs = max(cfg.epochs, value)  # without --epochs: the run's own, not the default
        elif name in RESUME_MAY_CHANGE:
            setattr(cfg, name, value)
        elif value != getattr(cfg, name, None):
            raise RbmError(f"--resume: --{name.replace('_', '-')} {value} differs from the run's "
                           f"{getattr(cfg, name, None)}; a run's architecture, units, data and training options are "
                           "fixed: drop the option, or start a new run with another --out", usage=True)
    return cfg.validate()


from rbmcli import cli_generate  # noqa: E402  (sample, reconstruct)
cli_generate.register(app)


@app.command()
@domain_errors
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by rbm train.")],
    out_html: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file (default RUN_DIR/report.html).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing HTML file.")] = False,
):
    """Write one self-contained HTML page (images inlined) for sharing a run.

    Example: rbm report runs/mnist-small -o report.html
    """
    from rbmcli.report import write_report

    out.print(f"wrote {esc(write_report(run_dir, out_html, force=force))}")


@app.command()
@domain_errors
def info(
    ckpt: Annotated[Path, typer.Argument(help="A checkpoint (.safetensors) or a run folder.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the description as JSON to FILE ('-': stdout).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
):
    """Describe a checkpoint without loading any data: model, units, config, training progress.

    Example: rbm info runs/fm/model.safetensors
    """
    from rbmcli.checkpoint import describe_checkpoint
    from rbmcli.files import check_output, write_text_or_stdout

    check_output(json_out, force=force, option="--json")
    if ckpt.is_dir() and (ckpt / "model.safetensors").is_file():
        ckpt = ckpt / "model.safetensors"
    d = describe_checkpoint(ckpt)
    if json_out is not None and str(json_out) == "-":
        write_text_or_stdout("-", json.dumps(d, indent=2))
        return
    out.print(_table(f"rbm info: {ckpt}", {"format": d["format"], "rbmcli version": d["rbmcli_version"],
                                            "dataset": d["dataset"], "input (C, H, W)": tuple(d["input_shape"]),
                                            "parameters": f"{d['parameters']:,}", "training": d["progress"]}))
    layers = Table(title="layers")
    for col in ["layer", "kind", "visible", "hidden", "visible units", "hidden units"]:
        layers.add_column(col)
    for i, layer in enumerate(d["layers"]):
        layers.add_row(*(esc(x) for x in (i, layer["kind"], layer["visible_shape"], layer["hidden_shape"],
                                          layer["visible_units"], layer["hidden_units"])))
    out.print(layers)
    if d["config"]:
        out.print(_table("config", d["config"]))
    if json_out is not None:
        err.print(f"wrote {esc(write_text_or_stdout(json_out, json.dumps(d, indent=2)))}")


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
    paths: Annotated[Optional[list[Path]], typer.Argument(help="CKPT (default: the newest runs/*/model.safetensors), or two PATHs for FID between folders of images / .npz statistics (as pytorch-fid), or FOLDER OUT.npz with --save-stats.", show_default=False)] = None,
    svm: Annotated[bool, typer.Option("--svm", help="SVM test error on top-layer features (Table 1).")] = False,
    fid: Annotated[bool, typer.Option("--fid", help="FID of generated samples against real images (Table 2).")] = False,
    ais: Annotated[bool, typer.Option("--ais", help="Test log-likelihood: exact log Z or AIS.")] = False,
    colorize: Annotated[bool, typer.Option("--colorize", help="Color models: hue error of the test images' luminance reconstructed in color, next to a gray and a mean-hue output.")] = False,
    occlusion: Annotated[bool, typer.Option("--occlusion", help="RMSE inside a bright bar across the test images after reconstruction, and a classifier's accuracy on clean, occluded and restored images.")] = False,
    hue_match: Annotated[bool, typer.Option("--hue-match", help="colored-mnist models: share of samples whose stroke hue is their class's (class read from luminance).")] = False,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the checkpoint's).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder (default: the checkpoint's).")] = None,
    limit_train: Annotated[Optional[int], typer.Option(help="Use the first N training images.")] = None,
    limit_test: Annotated[Optional[int], typer.Option(help="Use the first N test images.")] = None,
    kernel: Annotated[str, typer.Option(help="SVM kernel: linear; nystroem (RBF through 4,096 Nyström features, fits 60k); rbf (exact libsvm, C in 3, 10, 30: the most accurate on 60k, ≈ 8–16 min per fit on a CPU core).")] = "linear",
    fid_samples: Annotated[int, typer.Option(help="Generated (and real) images for FID.")] = 10_000,
    fid_steps: Annotated[int, typer.Option(help="Gibbs steps per generated image.")] = 1000,
    inception_weights: Annotated[Optional[Path], typer.Option(help="pytorch-fid Inception weights (.pth).")] = None,
    real_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the real images (or give two PATHs).")] = None,
    fake_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the generated images.")] = None,
    save_stats: Annotated[bool, typer.Option("--save-stats", help="Write the FID statistics of FOLDER to OUT.npz (two PATHs).")] = False,
    ais_runs: Annotated[int, typer.Option(help="AIS runs.")] = 100,
    ais_betas: Annotated[int, typer.Option(help="AIS inverse temperatures.")] = 14_500,
    hue_samples: Annotated[int, typer.Option(help="Samples for --hue-match (Gibbs steps: --fid-steps).")] = 1000,
    recon_steps: Annotated[int, typer.Option(help="Gibbs steps in the top RBM for --colorize/--occlusion (0: mean pass up and down).")] = 0,
    download: Annotated[bool, typer.Option(help="Allow downloading data or Inception weights.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed for sampling, AIS and the validation split.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON to FILE ('-': stdout).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json (or --save-stats) file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
):
    """Evaluate a checkpoint: SVM error, FID, log-likelihood, colorization, occlusion removal,
    hue match of samples. Results also go to the run folder's eval.json, which `rbm report` shows.

    Example: rbm evaluate runs/mnist/model.safetensors --svm --ais --json results.json
    """
    from rbmcli.evaluate import EvalOptions, record_results
    from rbmcli.evaluate import evaluate as run_evaluation
    from rbmcli.files import check_output, write_text_or_stdout

    paths = list(paths or [])
    folders = _fid_paths(paths, real_dir, fake_dir, svm=svm or colorize or occlusion or hue_match, ais=ais,
                         save_stats=save_stats)
    weights = str(inception_weights) if inception_weights else None
    if folders is None:  # a checkpoint: every option checked before any work
        opts = EvalOptions(svm, fid, ais, dataset, str(data_dir) if data_dir else None, limit_train, limit_test,
                           kernel, fid_samples, fid_steps, weights, download, ais_runs, ais_betas, device,
                           seed, colorize=colorize, occlusion=occlusion, hue_match=hue_match,
                           hue_samples=hue_samples, recon_steps=recon_steps).validate()
    check_output(json_out, force=force, option="--json")
    if save_stats:
        check_output(paths[1], force=force, option="--save-stats")
    progress, update = _task_progress(quiet or (json_out is not None and str(json_out) == "-"))
    with progress:
        if save_stats:
            from rbmcli.fid import save_folder_statistics

            written = save_folder_statistics(paths[0], paths[1], weights, device=str(_device(device)),
                                             progress=lambda d, t: update("FID statistics", d, t))
            out.print(f"wrote {esc(written)}")
            return
        if folders is not None:
            source, rows = _fid_between(folders, weights, device, update)
        else:
            source, rows = run_evaluation(paths[0] if paths else None, opts, update)
    if not paths and folders is None:
        err.print(f"evaluated the newest checkpoint: {esc(source)}")
    table = Table(title=f"rbm evaluate: {esc(source)}")
    for col in ["metric", "value", "details", "seconds"]:
        table.add_column(col)
    for r in rows:
        table.add_row(esc(r.metric), f"{r.value:.4f}", esc(", ".join(f"{k}={v}" for k, v in r.details.items())),
                      f"{r.seconds:.1f}")
    (err if json_out is not None and str(json_out) == "-" else out).print(table)
    if folders is None:
        recorded = record_results(source, rows)
        if recorded is not None and not quiet:
            err.print(f"results recorded in {esc(recorded)}")
    if json_out is not None:
        text = json.dumps({"checkpoint": str(source), "results": [r.to_dict() for r in rows]}, indent=2)
        where = write_text_or_stdout(json_out, text)
        if where != "stdout" and not quiet:
            err.print(f"wrote {esc(where)}")


def _fid_paths(paths: list[Path], real_dir: Optional[Path], fake_dir: Optional[Path], *, svm: bool, ais: bool,
               save_stats: bool) -> Optional[tuple[Path, Path]]:
    """The two FID paths (real, fake) when the command compares folders/statistics, else None
    (a checkpoint); refuses every option that would be silently ignored with them (`svm`: any
    measure of a checkpoint other than FID and AIS)."""
    if save_stats:
        if len(paths) != 2 or real_dir or fake_dir or svm or ais:
            raise RbmError("--save-stats takes two PATHs, FOLDER OUT.npz, and no --svm, --ais, --real-dir, "
                           "--fake-dir (nor --colorize, --occlusion, --hue-match)", usage=True)
        return None
    if real_dir or fake_dir:
        if not (real_dir and fake_dir):
            raise RbmError("--real-dir and --fake-dir go together", usage=True)
        if paths or svm or ais:
            raise RbmError("--real-dir/--fake-dir compare two folders: give no CKPT, --svm, --ais, --colorize, "
                           "--occlusion or --hue-match with them", usage=True)
        return real_dir, fake_dir
    if len(paths) > 2:
        raise RbmError(f"give one CKPT, or two PATHs for FID, not {len(paths)}", usage=True)
    if len(paths) == 2:
        if svm or ais:
            raise RbmError("two PATHs compute FID between them: --svm, --ais, --colorize, --occlusion and --hue-match need one CKPT", usage=True)
        return paths[0], paths[1]
    return None


def _fid_between(folders: tuple[Path, Path], weights: Optional[str], device: str, update):
    """(source text, [the FID row]) between two folders or .npz statistics."""
    import time

    from rbmcli.evaluate import Row
    from rbmcli.fid import fid_between_paths

    real, fake = folders
    t0 = time.time()
    value = fid_between_paths(real, fake, weights, device=str(_device(device)), progress=lambda d, t: update("FID", d, t))
    return f"{real} vs {fake}", [Row("fid", value, {"real": str(real), "fake": str(fake)}, time.time() - t0)]


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
