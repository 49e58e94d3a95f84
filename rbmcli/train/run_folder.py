"""The run folder of `rbm train`: where it goes, the checks before anything is written, and
`RunFolder`, which owns the name of every file in it and records each finished epoch.

    RUN/config.json        the TrainConfig (JSON), rewritten when --resume changes an option
    RUN/metrics.jsonl      one JSON row per epoch (losses, reconstruction errors, unit activity)
    RUN/model.safetensors  the checkpoint (+ model.state.safetensors for --resume),
                           model-epochNNN.safetensors and best.safetensors (+ best.json) copies
    RUN/*.png              samples, reconstructions, chains, filters, curves and unit activity
    RUN/tb/, RUN/eval.json TensorBoard event files; `rbm evaluate`'s results
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from rbmcli.errors import RbmError
from rbmcli.files import copy_atomic, write_atomic
from rbmcli.train.checkpoint import state_path
from rbmcli.train.config import TrainConfig

MODEL_FILE = "model.safetensors"
CONFIG_FILE, METRICS_FILE, EVAL_FILE = "config.json", "metrics.jsonl", "eval.json"


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder, by name: nothing else spells them. As a subscriber of the
    trainer's events (`__call__`) it appends each finished epoch to metrics.jsonl and keeps
    the per-epoch and best checkpoint copies (`keep` > 0)."""

    path: Path
    keep: int = 0  # per-epoch checkpoint copies kept (0: only model.safetensors)

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    config = property(lambda self: self.path / CONFIG_FILE)
    metrics = property(lambda self: self.path / METRICS_FILE)
    model = property(lambda self: self.path / MODEL_FILE)
    state = property(lambda self: state_path(self.model))
    best_model = property(lambda self: self.path / "best.safetensors")
    best_json = property(lambda self: self.path / "best.json")
    chains_png = property(lambda self: self.path / "chains.png")
    filters_png = property(lambda self: self.path / "filters.png")
    curves_png = property(lambda self: self.path / "curves.png")
    activity_png = property(lambda self: self.path / "hidden-activity.png")
    tensorboard = property(lambda self: self.path / "tb")
    eval_json = property(lambda self: self.path / EVAL_FILE)

    def epoch_model(self, epoch: int) -> Path:
        return self.path / f"model-epoch{epoch:03d}.safetensors"

    def samples_png(self, epoch: int) -> Path:
        return self.path / f"samples-epoch{epoch:03d}.png"

    def recon_png(self, epoch: int) -> Path:
        return self.path / f"recon-epoch{epoch:03d}.png"

    def filters_epoch_png(self, epoch: int) -> Path:
        return self.path / f"filters-epoch{epoch:03d}.png"

    def per_epoch(self, kind: str) -> list[Path]:
        """The per-epoch files of one kind — samples, recon, filters (PNG) or model — oldest first."""
        ext = "safetensors" if kind == "model" else "png"
        return sorted(self.path.glob(f"{kind}-epoch[0-9][0-9][0-9]*.{ext}"))

    def __call__(self, event: dict) -> None:
        if event["kind"] == "epoch":
            self.append_metrics(event["row"])
            self.archive(event["row"])

    def append_metrics(self, row: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(row) + "\n")

    def archive(self, row: dict) -> None:
        """Keep model-epochNNN.safetensors for the last `keep` epochs, and best.safetensors:
        the epoch with the lowest stack reconstruction RMSE (copies, written atomically)."""
        if not self.keep:
            return
        copy_atomic(self.model, self.epoch_model(row["epoch"]))
        for old in self.per_epoch("model")[: -self.keep]:
            old.unlink(missing_ok=True)
        best = json.loads(self.best_json.read_text()) if self.best_json.is_file() else None
        if best is None or row["stack_recon_rmse"] < best["stack_recon_rmse"]:
            copy_atomic(self.model, self.best_model)
            write_atomic(self.best_json, json.dumps({"epoch": row["epoch"], "stack_recon_rmse": row["stack_recon_rmse"]}))


def default_run_dir(cfg: TrainConfig) -> Path:
    arch = "".join(c if c.isalnum() or c in "-_" else "_" for c in cfg.arch)[:40]
    return Path("runs") / f"{cfg.dataset}-{arch}-{datetime.now():%Y%m%d-%H%M%S}"


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse, before any data is loaded or anything is written, an --out that is a file,
    already holds a run (without --resume), holds none (with --resume), or is a non-empty
    folder that is not a run: the user's own files there are never touched."""
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel: only rank 0 writes
        return
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise RbmError(f"--out {run_dir} is a file, not a folder", usage=True)
        if resume:
            if not (run_dir / MODEL_FILE).is_file():
                raise RbmError(f"--resume: no {MODEL_FILE} in {run_dir}")
            return
        if (run_dir / MODEL_FILE).exists() or (run_dir / CONFIG_FILE).exists():
            raise RbmError(f"{run_dir} already holds a run: pass --resume to continue it, or another --out")
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise RbmError(f"{run_dir} is not empty and holds no run of `rbm train`; choose a new or empty "
                           "folder for --out (nothing in it was touched)")
    except OSError as e:  # a name too long, a permission denied
        raise RbmError(f"cannot use --out {run_dir}: {e.strerror or e}") from None


def _update_config(path: Path, cfg: TrainConfig) -> None:
    """Rewrite config.json (atomically) when --resume changed an option (device, cadence, ...),
    so that the next --resume starts from the options last used; untouched otherwise."""
    try:
        same = json.loads(path.read_text()) == asdict(cfg)
    except (OSError, ValueError):
        same = False
    if not same:
        write_atomic(path, json.dumps(asdict(cfg), indent=2, sort_keys=True) + "\n")


def prepare_run_dir(cfg: TrainConfig, out: Path | None, resume: bool) -> Path:
    """Create the run folder and config.json; refuse to overwrite an existing run."""
    run_dir = Path(out) if out else default_run_dir(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # data-parallel: only rank 0 writes
        return run_dir
    check_run_dir(run_dir, resume)
    if resume:
        for tmp in run_dir.glob(".*.tmp"):  # left by a kill during an atomic write; never a final file
            tmp.unlink(missing_ok=True)
        _update_config(run_dir / CONFIG_FILE, cfg)
        return run_dir
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RbmError(f"cannot write the run folder {run_dir}: {e.strerror}") from None
    write_atomic(run_dir / CONFIG_FILE, json.dumps(asdict(cfg), indent=2, sort_keys=True) + "\n")
    return run_dir


def read_metrics(run_dir: Path) -> list[dict]:
    """The rows of run_dir/metrics.jsonl; a missing or corrupt file is an RbmError."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise RbmError(f"{run_dir} has no metrics.jsonl: pass a run folder written by `rbm train` "
                       "(after at least one epoch)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise RbmError(f"{path} line {n} is not JSON; was the file truncated?") from None
    if not rows:
        raise RbmError(f"{path} is empty: no epoch has finished yet")
    if not all(isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in rows):
        raise RbmError(f"{path} is not the metrics file of a run of `rbm train` (rows without an epoch)")
    return rows


RECORDS = (CONFIG_FILE, METRICS_FILE, EVAL_FILE)  # a run's own records: no other command's output


def is_run_record(path: Path) -> bool:
    """Whether `path` is one of a run folder's own records (config.json, metrics.jsonl,
    eval.json in a folder holding model.safetensors or config.json): `rbm sample -o`,
    `reconstruct -o`, `evaluate --json`, `info --json` and `report -o` never replace one."""
    path = Path(path)
    try:
        return path.name in RECORDS and ((path.parent / MODEL_FILE).is_file() or (path.parent / CONFIG_FILE).is_file())
    except OSError:
        return False
