"""`rbm train`: options → TrainConfig → rbmcli.train.trainer.train, with a progress display,
a health warning per diverging layer and a clean stop on Ctrl-C (the run saves first)."""

from __future__ import annotations

import os
import signal
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from rbmcli.cli.common import err, esc, given, out, table, warning_line
from rbmcli.errors import RbmError
from rbmcli.train.config import TrainConfig

_D = TrainConfig()  # the defaults shown by --help are the library's


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


def recon_text(event: dict) -> str:
    """The epoch's reconstruction RMSE: `recon rmse 0.0744` for one layer, through each depth
    for a stack (`recon rmse by depth 0.0744 0.1538 0.2000`: layer 1, layers 1-2, ...)."""
    depths = event.get("depth_recon_rmse") or [event["recon_rmse"]]
    return ("recon rmse by depth " if len(depths) > 1 else "recon rmse ") + " ".join(f"{x:.4f}" for x in depths)


def _health_watch(on_event):
    """Wrap an event callback: after each epoch, warn once per layer whose hidden units are
    (almost) all dead or saturated, the mark of a diverged run (shown even with --quiet)."""
    from rbmcli.report.html import layer_warnings

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


def _train_progress(quiet: bool, header=None):
    """A rich progress display (stderr) fed by the trainer's events; plain lines off a terminal.
    `header` (the config table) is printed at the "start" event, once training really starts."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if quiet:
        return None, lambda event: None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=err,
                        disable=not err.is_terminal)
    tasks = {}

    def on_event(e: dict):
        if e["kind"] == "start":
            if header is not None:
                err.print(header)
            tasks["epochs"] = progress.add_task("epochs", total=e["epochs"], completed=e["epoch"], info="")
            tasks["batches"] = progress.add_task("batches", total=e["steps_per_epoch"], info="")
            err.print(f"training on {e['device']}: {e['epochs']} epochs x {e['steps_per_epoch']} steps")
        elif e["kind"] == "step":
            progress.update(tasks["batches"], completed=e["batch"], info=loss_text(e))
        elif e["kind"] == "note":
            progress.console.print(esc(e["text"])) if err.is_terminal else err.print(esc(e["text"]))
        elif e["kind"] == "epoch":
            progress.update(tasks["epochs"], completed=e["epoch"])
            progress.reset(tasks["batches"])
            line = f"epoch {e['epoch']}: {loss_text(e)}  {recon_text(e)}  {e['seconds']:.1f}s"
            progress.console.print(esc(line)) if err.is_terminal else err.print(esc(line))

    return progress, on_event


def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option(help="mnist, colored-mnist (MNIST in class colors, built in), fashion-mnist, cifar10, caltech101, celeba, emoji (npm package emoji-datasource-google, fetched by you) or folder.")] = _D.dataset,
    data_dir: Annotated[Optional[Path], typer.Option(help="Dataset folder (torchvision layout; for 'folder' the images). MNIST needs none.")] = None,
    size: Annotated[Optional[int], typer.Option(help="Center-crop and resize images to SIZE x SIZE.")] = _D.size,
    arch: Annotated[Optional[str], typer.Option(help="Preset (tiny, small, small-dbn, small-conv, paper-classify, paper-generate) or spec like 'conv:64,conv:128,dense:500'. Default: for color images of 32 px or more the paper's generation stack scaled to the size (paper-generate at 64 px), else small; the first line says which.", show_default=False)] = None,
    visible_units: Annotated[int, typer.Option(help="N of the data layer (1 = binary; 255 = pixel levels).")] = _D.visible_units,
    hidden_units: Annotated[int, typer.Option(help="N of every hidden layer.")] = _D.hidden_units,
    k: Annotated[Optional[float], typer.Option(help="Scale k in f(x)=N*g(kx); default 1 for N=1, 4/N (sigmoid), 1/N (relu).")] = _D.k,
    activation: Annotated[str, typer.Option(help="Unit activation g: sigmoid (paper) or relu (capped NReLU).")] = _D.activation,
    binarize: Annotated[str, typer.Option(help="With --visible-units 1: none (gray as probabilities), threshold, sample.")] = _D.binarize,
    recipe: Annotated[str, typer.Option(help="generate: a binary top RBM trained on persistent chains (pcd, lr 0.005 decaying linearly, 10 epochs, a centered data layer without the fan-in weight factor), whose samples vary; paper: the paper's mean-field recipe (meanfield, lr 0.03, 5 epochs, every hidden layer --hidden-units). Options given explicitly override the recipe.")] = _D.recipe,
    binary_top: Annotated[Optional[bool], typer.Option("--binary-top/--no-binary-top", help="Binary hidden units in the top layer unless --arch gives @N (recipe: generate yes, paper no).", show_default=False)] = None,
    center: Annotated[Optional[bool], typer.Option("--center/--no-center", help="Dense layers above the first see their input minus its running mean (a centered energy: same models, better-conditioned gradients; recipe: generate yes, paper no).", show_default=False)] = None,
    center_data: Annotated[Optional[bool], typer.Option("--center-data/--no-center-data", help="Center a dense first layer too, its input being the data (recipe: generate yes, paper no).", show_default=False)] = None,
    center_conv: Annotated[bool, typer.Option("--center-conv/--no-center-conv", help="Center conv layers too (one running mean per channel, where --center/--center-data center a layer), and drop the fan-in factor of their weight scale: conv weights move sqrt(fan-in) times as far. Off: conv layers as in the paper.")] = _D.center_conv,
    weight_scale: Annotated[Optional[str], typer.Option(help="fan-in: weights scaled by 1/sqrt(fan-in) (Adam moves wide layers' weights slowly); unit: dense layers without that factor (weights move sqrt(fan-in) times as far; best with --center --center-data); first: a dense first layer only (recipe: generate first, paper fan-in).", show_default=False)] = None,
    negatives: Annotated[Optional[str], typer.Option(help="Negative samples of the top layer: meanfield (paper), cd, pcd, pt (persistent parallel tempering) or noise (--gibbs-steps k steps from fresh noise: the model learns to make data in k steps, and is sampled with k; the most even classes) (recipe: generate pcd, paper meanfield).", show_default=False)] = None,
    lower_negatives: Annotated[Optional[str], typer.Option(help="Negative samples of the layers below the top (recipe: meanfield).", show_default=False)] = None,
    gibbs_steps: Annotated[int, typer.Option(help="Gibbs steps k for cd/pcd/pt/noise negatives.")] = _D.gibbs_steps,
    mode: Annotated[str, typer.Option(help="detached (all layers at once, inputs detached; measured best), joint (backprop through the stack), or greedy (layer by layer).")] = _D.mode,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs (greedy: per layer; recipe: generate 10, paper 5), or with --resume the run's own.", show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Minibatch size (paper: 128).")] = _D.batch_size,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (recipe: generate 0.005, paper 0.03).", show_default=False)] = None,
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
    graph: Annotated[bool, typer.Option("--graph", help="CUDA: capture the whole step (losses, backward, Adam) as a CUDA graph and replay it; eager elsewhere, said once.")] = _D.graph,
    log_every: Annotated[int, typer.Option(help="Steps between reads of the losses by the host (progress, finiteness checks); also before every save.")] = _D.log_every,
    sample_steps: Annotated[int, typer.Option(help="Gibbs steps for the per-epoch sample grid.")] = _D.sample_steps,
    download: Annotated[bool, typer.Option(help="Allow downloading the dataset (off: local files only).")] = _D.download,
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Skip the filters/curves/hidden-activity pictures each epoch.")] = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also write TensorBoard event files to RUN/tb (pip install 'rbmcli[tensorboard]').")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
):
    """Train an RBM or DBN and write a run folder with checkpoints and sample grids.

    Example: rbm train --dataset fashion-mnist --arch small-conv --epochs 10 --out runs/fm
    """
    from rbmcli.train.trainer import train as run_training

    values = dict(dataset=dataset, data_dir=str(data_dir) if data_dir else None, size=size, arch=arch or _D.arch,
                  visible_units=visible_units, hidden_units=hidden_units, k=k, activation=activation,
                  binarize=binarize, recipe=recipe, binary_top=binary_top, center=center, center_data=center_data, center_conv=center_conv,
                  weight_scale=weight_scale, negatives=negatives, lower_negatives=lower_negatives,
                  gibbs_steps=gibbs_steps, mode=mode, epochs=epochs,
                  batch_size=batch_size, lr=lr, lr_decay=lr_decay, sparsity=sparsity,
                  sparsity_target=sparsity_target, weight_decay=weight_decay, visible_bias_init=visible_bias_init,
                  limit=limit, device=device, seed=seed,
                  save_every=save_every, save_minutes=save_minutes, keep=keep, precision=precision,
                  channels_last=channels_last, compile=compile, graph=graph, log_every=log_every,
                  sample_steps=sample_steps, download=download)
    if resume:
        if out_dir is None:
            raise RbmError("--resume needs --out RUN_DIR", usage=True)
        cfg = _resumed_config(out_dir, {k: v for k, v in values.items() if given(ctx, k)})
    else:
        cfg = TrainConfig(**values).validate()
    quiet = quiet or int(os.environ.get("RANK", "0")) > 0  # torchrun: rank 0 reports for all
    if arch is None and not resume:
        from rbmcli.train.arch_choice import default_arch

        cfg.arch, why = default_arch(cfg)
        if not quiet:
            err.print(esc(why), soft_wrap=True)
    stop = _Stop().install()
    # The config table comes with the trainer's "start" event: after every check (data, device,
    # run folder, architecture) passed, so a refused run prints its one Error: line alone.
    progress, on_event = _train_progress(quiet, header=table("rbm train", asdict(cfg)))
    on_event = _health_watch(on_event)
    if progress is not None:
        progress.start()
    try:
        result = run_training(cfg, out_dir, resume=resume, progress=on_event, should_stop=lambda: stop.requested,
                              subscribers=_pictures(no_plots, tensorboard))
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
    out.print(table("result", {"run folder": result.run_dir, "checkpoint": result.checkpoint,
                                "epochs": result.epochs_done, "seconds": f"{result.seconds:.1f}",
                                "recon rmse": f"{last.get('recon_rmse', float('nan')):.4f}"}))


# Options that --resume applies: where and how the run goes on, not what it trains.
RESUME_MAY_CHANGE = ("epochs", "device", "save_every", "save_minutes", "keep", "sample_steps", "precision",
                     "channels_last", "compile", "graph", "log_every", "download", "data_dir")


def _pictures(no_plots: bool, tensorboard: bool) -> list:
    """The run's subscribers beyond its records and grids: per-epoch plots, TensorBoard."""
    from rbmcli.report.pictures import EpochPictures, TensorBoardLogger

    return ([] if no_plots else [EpochPictures]) + ([TensorBoardLogger.subscribe] if tensorboard else [])


def _resumed_config(run_dir: Path, changed: dict):
    """The run's own config with the options given on the command line (`changed`, by config
    field): those of RESUME_MAY_CHANGE take effect (--epochs only extends the run); any other
    that differs from the run's (architecture, units, data, optimiser, seed) is refused."""
    from rbmcli.train.run_folder import RunFolder

    path = RunFolder(run_dir).config
    if run_dir.is_file():
        raise RbmError(f"--resume: --out {run_dir} is a file, not a run folder", usage=True)
    if not path.is_file():
        raise RbmError(f"--resume: no config.json in {run_dir}")
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
