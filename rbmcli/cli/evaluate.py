"""`rbm evaluate`: SVM error, FID, log-likelihood and the reconstruction demos of a
checkpoint, or FID between two folders / statistics files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rbmcli.cli.common import duration, err, esc, out, refuse_overwrite, task_progress
from rbmcli.errors import RbmError


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
    fid_samples: Annotated[int, typer.Option(help="Generated (and real) images for FID: minutes on a CPU; papers report 10000 (about an hour on a 2-core CPU).")] = 1_000,
    fid_steps: Annotated[Optional[int], typer.Option(help="Gibbs steps per generated image (default: 1000, or the k of a model trained with --negatives noise).", show_default=False)] = None,
    inception_weights: Annotated[Optional[Path], typer.Option(help="pytorch-fid Inception weights (.pth).")] = None,
    real_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the real images (or give two PATHs).")] = None,
    fake_dir: Annotated[Optional[Path], typer.Option(help="FID between two folders: the generated images.")] = None,
    save_stats: Annotated[bool, typer.Option("--save-stats", help="Write the FID statistics of FOLDER to OUT.npz (two PATHs).")] = False,
    ais_runs: Annotated[int, typer.Option(help="AIS runs.")] = 100,
    ais_betas: Annotated[int, typer.Option(help="AIS inverse temperatures, in Salakhutdinov & Murray's proportions (their schedule: 14,501).")] = 14_501,
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
    from rbmcli.eval.evaluate import EvalOptions, check_evaluation, latest_checkpoint, record_results
    from rbmcli.eval.evaluate import evaluate as run_evaluation
    from rbmcli.files import write_text_or_stdout

    paths = list(paths or [])
    folders = _fid_paths(paths, real_dir, fake_dir, svm=svm or colorize or occlusion or hue_match, ais=ais,
                         save_stats=save_stats)
    weights = str(inception_weights) if inception_weights else None
    if folders is None:  # a checkpoint: every option checked before any work
        opts = EvalOptions(svm=svm, fid=fid, ais=ais, dataset=dataset, data_dir=str(data_dir) if data_dir else None, limit_train=limit_train, limit_test=limit_test,
                           kernel=kernel, fid_samples=fid_samples, fid_steps=fid_steps, inception_weights=weights, download=download, ais_runs=ais_runs, ais_betas=ais_betas, device=device,
                           seed=seed, colorize=colorize, occlusion=occlusion, hue_match=hue_match,
                           hue_samples=hue_samples, recon_steps=recon_steps).validate()
    refuse_overwrite({"--json": json_out, "--save-stats": paths[1] if save_stats else None}, force)
    if folders is None and not save_stats:
        ckpt = paths[0] if paths else latest_checkpoint()
        dbn, _ = check_evaluation(ckpt, opts)  # a bad checkpoint or demo option: the one line, before ours
        if not paths or (opts.fid and not quiet):  # the chosen checkpoint is news even with --quiet
            _announce(ckpt, dbn, opts, newest=not paths)
    progress, update = task_progress(quiet or (json_out is not None and str(json_out) == "-"))
    with progress:
        if save_stats:
            from rbmcli.eval.fid import save_folder_statistics
            from rbmcli.train.devices import resolve_device

            written = save_folder_statistics(paths[0], paths[1], weights=weights, device=str(resolve_device(device)),
                                             progress=lambda d, t: update("FID statistics", d, t))
            out.print(f"wrote {esc(written)}")
            return
        if folders is not None:
            source, rows = _fid_between(folders, weights, device, update)
        else:
            source, rows = run_evaluation(ckpt, opts, update)
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


def _announce(ckpt: Path, dbn, opts, newest: bool) -> None:
    """The first line: the checkpoint (and that it is the newest run's, when none was named)
    and, with --fid, its estimated time; below an n of 10,000, how to get the figure papers report."""
    from rbmcli.eval.evaluate import FID_SAMPLES_PAPERS, fid_estimate

    line = f"evaluating {ckpt}" + (", the newest checkpoint under runs/ (pass CKPT to choose another)" if newest else "")
    if opts.fid:
        est = fid_estimate(dbn, opts)
        line += (f"; FID of {opts.fid_samples:,} samples x {opts.fid_steps:,} Gibbs steps: about "
                 f"{duration(est['seconds'])} at one CPU thread (less with more threads or a GPU)")
    err.print(esc(line), highlight=False, soft_wrap=True)
    if opts.fid and opts.fid_samples < FID_SAMPLES_PAPERS:
        err.print(esc(f"FID is biased upwards at small n: the figure papers report takes --fid-samples "
                      f"{FID_SAMPLES_PAPERS} (about {duration(est['papers_seconds'])} at one CPU thread)"),
                  highlight=False, soft_wrap=True)


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

    from rbmcli.eval.row import Row
    from rbmcli.eval.fid import fid_between_paths
    from rbmcli.train.devices import resolve_device

    real, fake = folders
    t0 = time.time()
    value = fid_between_paths(real, fake, weights=weights, device=str(resolve_device(device)), progress=lambda d, t: update("FID", d, t))
    return f"{real} vs {fake}", [Row("fid", value, {"real": str(real), "fake": str(fake)}, time.time() - t0)]
