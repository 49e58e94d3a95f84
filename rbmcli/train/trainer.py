"""Training: sum the layer losses and minimise with Adam (paper §4).

The trainer owns the training state of one run (model, Adam, sampling generator, persistent
chains, position) and its loop, and writes the checkpoints; nothing else. What else a run
leaves behind subscribes to its events, plain dicts passed to every listener in turn:

    start  {epochs, steps_per_epoch, epoch, device}
    note   {text}                                    said once (e.g. a capture that fell back)
    step   {epoch, batch, step, loss, loss_per_unit}  every --log-every steps
    save   {step, checkpoint}
    epoch  {row, and the row's keys}                 after the epoch's checkpoint
    end    {}

`train()` subscribes the run folder's records (RunFolder: metrics.jsonl, checkpoint copies)
and the per-epoch grids (grids.EpochGrids); callers add more (the CLI: report.pictures).

The step never waits for the device (rbmcli.train.step): losses, gradient and parameter sums
stay there, and the host reads them once per log interval, before every save and at each
epoch's end; a non-finite value found then stops the run before anything is saved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import torch

from rbmcli.data.batches import binarize, epoch_permutation, to_visible
from rbmcli.data.datasets import load_dataset
from rbmcli.train.adam import Adam, AdamW
from rbmcli.train.checkpoint import load_model, load_state, save_model, save_state
from rbmcli.train.config import TrainConfig
from rbmcli.train.grids import EpochGrids
from rbmcli.train.run_folder import RunFolder, check_run_dir, default_run_dir, prepare_run_dir
from rbmcli.train.step import EagerStep, GraphStep
from rbmcli.train.devices import resolve_device, stage_images
from rbmcli.model.activity import activity_fractions, unit_activity
from rbmcli.model.dbn import DBN, build_specs, parse_arch
from rbmcli.train.distributed import all_mean, all_mean_tensor, init_world, rank_slice
from rbmcli.errors import RbmError
from rbmcli.model.loss import MODES, dbn_losses
from rbmcli.model.sampling import NEGATIVES
from rbmcli.model.units import Units

OFFSET_EVERY, OFFSET_RATE = 10, 0.1  # centering offsets move every 10 steps by a tenth (DBN.move_offsets)
INIT_IMAGES = 4096  # images whose mean sets the visible biases (--visible-bias-init data)
MAX_PARAMETERS = 2**30  # float32 parameters of a model (4 GiB, before Adam's two moments)


@dataclass(kw_only=True)
class TrainResult:
    run_dir: Path
    checkpoint: Path
    epochs_done: int
    metrics: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False


def check_choices(cfg: TrainConfig) -> None:
    """The choices, the units and the architecture's syntax: usage errors that need no data,
    raised before the dataset is loaded (whether the layers fit the images is checked later)."""
    if cfg.negatives not in NEGATIVES or cfg.lower_negatives not in NEGATIVES:
        raise RbmError(f"--negatives and --lower-negatives must be one of {NEGATIVES}", usage=True)
    if cfg.mode not in MODES:
        raise RbmError(f"--mode must be one of {MODES}", usage=True)
    parse_arch(cfg.arch)
    for n in (cfg.visible_units, cfg.hidden_units):
        Units.make(n, cfg.k if n > 1 else None, cfg.activation)


def load_training_images(cfg: TrainConfig, split: str = "train", progress=None) -> torch.Tensor:
    """The training images as uint8 (n, C, H, W), limited and binarised as configured."""
    ds = load_dataset(cfg.dataset, split, cfg.data_dir, size=cfg.size, limit=cfg.limit, download=cfg.download, seed=cfg.seed)
    if cfg.batch_size > len(ds.images):
        raise RbmError(f"--batch-size {cfg.batch_size} is larger than the {len(ds.images)} training images", usage=True)
    return binarize(ds.images, cfg.binarize, cfg.seed)


def build_dbn(cfg: TrainConfig, input_shape: tuple[int, int, int]) -> DBN:
    """A freshly initialised DBN for cfg (same seed ⇒ same weights)."""
    check_choices(cfg)
    vis = Units.make(cfg.visible_units, cfg.k if cfg.visible_units > 1 else None, cfg.activation)
    hid = Units.make(cfg.hidden_units, cfg.k if cfg.hidden_units > 1 else None, cfg.activation)
    specs = build_specs(cfg.arch, input_shape, vis, hid, k=cfg.k, top_n=1 if cfg.binary_top else None,
                        weight_scale=cfg.weight_scale, center_conv=cfg.center_conv)
    n_params = sum(math.prod(s.weight_shape) + s.visible_shape[0] + s.hidden for s in specs)
    if n_params > MAX_PARAMETERS:
        raise RbmError(f"--arch {cfg.arch} has {n_params:,} parameters on {tuple(input_shape)} images, more than "
                       f"{MAX_PARAMETERS:,} (4 GiB): use fewer hidden units or channels", usage=True)
    return DBN(specs, cfg.init_std, torch.Generator().manual_seed(cfg.seed))


def layers_for_epoch(cfg: TrainConfig, n_layers: int, epoch: int) -> list[int] | None:
    """Greedy: the one layer trained in this epoch (cfg.epochs epochs each); else all."""
    return [min(epoch // cfg.epochs, n_layers - 1)] if cfg.mode == "greedy" else None


def learning_rate(lr: float, decay: str, step: int, total_steps: int) -> float:
    """Adam's rate at optimiser step t of T (t = 0 first): none → lr; linear → lr·(1 − t/T);
    cosine → lr·½(1 + cos(πt/T)). A function of the step alone, so a resumed run replays it."""
    if decay == "none" or total_steps <= 0:
        return lr
    frac = min(step / total_steps, 1.0)
    if decay == "linear":
        return lr * (1.0 - frac)
    return lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def centered_layers(specs, cfg: TrainConfig) -> set[int]:
    """Indices of the centered layers: those above the first under --center, the first under
    --center-data; conv layers only with --center-conv."""
    return {i for i, s in enumerate(specs) if (s.is_dense or cfg.center_conv) and (cfg.center if i else cfg.center_data)}


def total_epochs(cfg: TrainConfig, n_layers: int) -> int:
    return cfg.epochs * (n_layers if cfg.mode == "greedy" else 1)


def make_optimiser(dbn: torch.nn.Module, cfg: TrainConfig, fused: bool, capturable: bool = False) -> Adam:
    """Adam (paper: betas 0.9/0.999) on every parameter; with cfg.weight_decay = λ > 0, AdamW
    whose decoupled decay w ← w·(1 − lr·λ) acts on the weights only (one group), not the biases
    (a second group with λ = 0). λ = 0 keeps plain Adam with one group, so older runs resume.
    capturable: safe inside a CUDA graph (its rate a device tensor, filled before each step).
    rbmcli.train.adam's, not torch.optim's: the same update bit for bit, without importing
    torch._dynamo (seconds of every run's start)."""
    device = next(dbn.parameters()).device
    lr = torch.tensor(cfg.lr, device=device) if capturable else cfg.lr
    opts = dict(lr=lr, betas=(0.9, 0.999), fused=fused, capturable=capturable)
    if cfg.weight_decay == 0:
        return Adam(dbn.parameters(), **opts)
    weights = [p for n, p in dbn.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in dbn.named_parameters() if not n.endswith("weight")]
    return AdamW([{"params": weights, "weight_decay": cfg.weight_decay},
                  {"params": biases, "weight_decay": 0.0}], **opts)


class Trainer:
    """Owns the training state of one run; `run()` trains and saves as it goes.

    subscribers: callables f(trainer) → listener (or None), called once on the main process;
    each listener then receives every event (progress, if given, receives them everywhere)."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, images: torch.Tensor, *, resume: bool = False,
                 progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 subscribers: Iterable[Callable[["Trainer"], Callable[[dict], None] | None]] = ()):
        self.cfg, self.folder = cfg, RunFolder(run_dir, keep=cfg.keep)
        self.run_dir = self.folder.path
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(cfg.device)
        self.world = init_world(self.device.type)
        if self.world.size > 1 and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
            torch.cuda.set_device(self.device)
        self.images = stage_images(images, self.device)
        if cfg.batch_size % self.world.size:
            raise RbmError(f"--batch-size {cfg.batch_size} must divide evenly over {self.world.size} processes",
                           usage=True)
        self.input_shape = tuple(images.shape[1:])
        self.steps_per_epoch = len(images) // cfg.batch_size  # a last partial batch is dropped
        self.dbn = build_dbn(cfg, self.input_shape).to(self.device)
        self.centered = centered_layers(self.dbn.specs, cfg)
        if not resume and (cfg.visible_bias_init == "data" or self.centered):
            first = to_visible(self.images[:INIT_IMAGES].to(self.device), cfg.visible_units)
            if cfg.visible_bias_init == "data":
                self.dbn.init_visible_biases(first)
            if self.centered:
                self.dbn.move_offsets(first, 1.0, self.centered)
        self.names = [n for n, _ in self.dbn.named_parameters()]
        graph = cfg.graph and self.device.type == "cuda" and self.world.size == 1
        # The fused kernel halves Adam's cost on the CPU (measured 134 vs 280 µs for 784×500).
        self.opt = make_optimiser(self.dbn, cfg, fused=self.device.type in ("cpu", "cuda"), capturable=graph)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed + 1 + 1000 * self.world.rank)
        self.last_save = time.time()
        self.chains: list = [None] * len(self.dbn.layers)
        self.negatives = cfg.layer_negatives(len(self.dbn.layers))
        # Compiled once per process; recompiles only if the input shapes change (e.g. greedy layers).
        self.losses_fn = torch.compile(dbn_losses) if cfg.compile else dbn_losses
        self.epoch, self.batch, self.step = 0, 0, 0
        self.pending: list[torch.Tensor] = []  # stats of the steps not yet read (rbmcli.train.step)
        self.sums: list[float] = []  # the epoch's summed layer losses, of the steps read so far
        self.listeners = [progress] if progress else []
        self.noted: set[str] = set()
        self.step_fn = (GraphStep(self.dbn, self.opt, self.layer_losses, self.world, chains=self.chains,
                                  generator=self.gen, note=self.note) if graph
                        else EagerStep(self.dbn, self.opt, self.layer_losses, self.world))
        if cfg.graph and not graph:
            self.note(f"--graph captures CUDA graphs of a single process; training runs eagerly on {self.device}")
        if resume:
            self._resume()
        if self.world.main:
            self.listeners += [h for h in (make(self) for make in subscribers) if h is not None]

    @property
    def checkpoint(self) -> Path:
        return self.folder.model

    def emit(self, event: dict) -> None:
        for listener in self.listeners:
            listener(event)

    def note(self, text: str) -> None:
        """Tell the listeners something once (e.g. a fallback), as a "note" event."""
        if text not in self.noted:
            self.noted.add(text)
            self.emit({"kind": "note", "text": text})

    def _resume(self) -> None:
        dbn, info = load_model(self.checkpoint)
        if [s.to_dict() for s in dbn.specs] != [s.to_dict() for s in self.dbn.specs]:
            raise RbmError(f"--resume: the checkpoint in {self.run_dir} has another architecture "
                           "than the options given", usage=True)
        self.dbn.load_state_dict(dbn.state_dict())
        step = str(info.get("step", ""))
        self.chains[:], c = load_state(self.folder.state, self.opt, names=self.names, generators={"sample": self.gen},
                                       n_layers=len(self.dbn.layers), device=self.device,
                                       model_step=int(step) if step.isdigit() else None)
        self.epoch, self.batch, self.step = c["epoch"], c["batch"], c["step"]

    def save(self) -> None:
        """Model and training state at the current position (epoch, next batch, step), once the
        pending steps are read and found finite; rank 0 only."""
        self.read_pending()
        if not self.world.main:
            return
        self.last_save = time.time()
        extra = {"config": self.cfg.to_json(), "dataset": self.cfg.dataset, "size": str(self.input_shape[-1]),
                 "epoch": str(self.epoch), "step": str(self.step)}
        # State first: a model file never points at a state older than itself.
        save_state(self.folder.state, self.opt, names=self.names, generators={"sample": self.gen}, chains=self.chains,
                   counters={"epoch": self.epoch, "batch": self.batch, "step": self.step})
        save_model(self.checkpoint, self.dbn, self.input_shape, extra)
        self.emit({"kind": "save", "step": self.step, "checkpoint": self.checkpoint})

    def layer_losses(self, v: torch.Tensor, layers: list[int] | None) -> list[torch.Tensor]:
        """Each trained layer's loss on the batch v (rbmcli.model.loss.dbn_losses), as configured."""
        cfg = self.cfg
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16",
                            cache_enabled=not cfg.graph):  # a captured graph must not keep autocast's cache
            return self.losses_fn(self.dbn, v, self.negatives, steps=cfg.gibbs_steps, generator=self.gen, mode=cfg.mode,
                                  chains=self.chains, layers=layers, sparsity=cfg.sparsity,
                                  sparsity_target=cfg.sparsity_target)

    def train_step(self, v: torch.Tensor, layers: list[int] | None) -> torch.Tensor:
        """One Adam step on the summed layer losses at this step's rate; its stats (2·L + 1,)
        stay on the device, pending until `read_pending` (no host synchronisation here)."""
        cfg = self.cfg
        lr = learning_rate(cfg.lr, cfg.lr_decay, self.step, total_epochs(cfg, len(self.dbn.layers)) * self.steps_per_epoch)
        stats = self.step_fn(v, layers, lr)
        self.pending.append(stats.clone())  # a graph's stats are overwritten by its next replay
        return stats

    def read_pending(self) -> list[float] | None:
        """Read the pending steps' stats at once (one synchronisation): stop on the first step
        whose loss, gradients or updated parameters are not finite; add the losses to the
        epoch's sums. Returns the last step's layer losses (None if nothing was pending)."""
        if not self.pending:
            return None
        rows, first = torch.stack(self.pending).tolist(), self.step - len(self.pending)
        self.pending.clear()
        layers = layers_for_epoch(self.cfg, len(self.dbn.layers), self.epoch)
        ids = layers if layers is not None else list(range(len(self.dbn.layers)))
        for r, row in enumerate(rows):
            self._check_finite(row, ids, first + r)
        n = len(ids)
        self.sums = [sum(col) for col in zip(*[row[:n] for row in rows], self.sums or [0.0] * n)]
        values = all_mean(rows[-1][:n], self.world)
        self.emit({"kind": "step", "epoch": self.epoch, "batch": self.batch, "step": self.step, "loss": values,
                   "loss_per_unit": self.per_unit(values, layers)})
        return values

    def _check_finite(self, row: list[float], ids: list[int], step: int) -> None:
        """row = (losses, gradient sums, parameter sum) of 0-based optimiser step `step`."""
        n = len(ids)
        for i, loss, grad in zip(ids, row[:n], row[n:2 * n]):
            if not (math.isfinite(loss) and math.isfinite(grad)):
                raise RbmError(f"training diverged: layer {i} loss is {loss} at step {step} "
                               f"(epoch {self.epoch + 1}); lower --lr.{self._last_good()}")
        if not math.isfinite(row[-1]):  # e.g. a huge --lr: never save these
            raise RbmError(f"training diverged: the parameters are not finite after step {step} "
                           f"(epoch {self.epoch + 1}); lower --lr.{self._last_good()}")

    def _last_good(self) -> str:
        return f" The last good checkpoint is {self.checkpoint}" if self.checkpoint.is_file() else ""

    def run(self) -> TrainResult:
        try:
            return self._run()
        finally:
            self.emit({"kind": "end"})

    def _run(self) -> TrainResult:
        cfg, t0 = self.cfg, time.time()
        n, B, every = len(self.images), self.cfg.batch_size, self.cfg.log_every
        epochs = total_epochs(cfg, len(self.dbn.layers))
        metrics = []
        self.emit({"kind": "start", "epochs": epochs, "steps_per_epoch": self.steps_per_epoch, "epoch": self.epoch,
                   "device": str(self.device)})
        while self.epoch < epochs:
            layers = layers_for_epoch(cfg, len(self.dbn.layers), self.epoch)
            perm, t_epoch, self.sums = epoch_permutation(n, cfg.seed, self.epoch), time.time(), []
            perm = perm.to(self.images.device)  # batches are cut where the images are: no copy of indices per step
            count = self.batch
            while self.batch < self.steps_per_epoch:
                idx = rank_slice(perm[self.batch * B:(self.batch + 1) * B], self.world)
                v = to_visible(self.images[idx].to(self.device, non_blocking=True), cfg.visible_units)
                if cfg.channels_last and v.dim() == 4:
                    v = v.contiguous(memory_format=torch.channels_last)
                self.train_step(v, layers)
                if self.centered and (self.step + 1) % OFFSET_EVERY == 0:
                    self.dbn.move_offsets(v, OFFSET_RATE, self.centered, reduce=lambda t: all_mean_tensor(t, self.world))
                self.batch, self.step = self.batch + 1, self.step + 1
                if self.step % every == 0:
                    self.read_pending()
                if (cfg.save_every and self.step % cfg.save_every == 0) or \
                        (cfg.save_minutes and time.time() - self.last_save > 60 * cfg.save_minutes):
                    self.save()
                if self.should_stop():
                    self.save()
                    return TrainResult(run_dir=self.run_dir, checkpoint=self.checkpoint, epochs_done=self.epoch,
                                       metrics=metrics, seconds=time.time() - t0, interrupted=True)
            self.read_pending()
            sums, count = self.sums, self.batch - count
            self.epoch, self.batch = self.epoch + 1, 0
            row = self.epoch_metrics(sums, count, layers, time.time() - t_epoch)
            self.save()
            metrics.append(row)
            self.emit({"kind": "epoch", "row": row, **row})
        return TrainResult(run_dir=self.run_dir, checkpoint=self.checkpoint, epochs_done=self.epoch, metrics=metrics,
                           seconds=time.time() - t0)

    @torch.no_grad()
    def epoch_metrics(self, sums, count, layers, seconds) -> dict:
        """Mean loss per trained layer, reconstruction RMSE in [0, 1] pixel units (up through
        each depth and back down: layer 0 alone, ..., the whole stack), dead/saturated
        hidden-unit fractions."""
        n_v = self.cfg.visible_units
        v = to_visible(self.images[:256].to(self.device), n_v)
        ids = layers if layers is not None else list(range(len(self.dbn.layers)))
        row = {"epoch": self.epoch, "step": self.step, "seconds": round(seconds, 3),
               "loss": {str(i): (s / max(count, 1)) for i, s in zip(ids, sums or [])}}
        row["loss_per_unit"] = self.per_unit([s / max(count, 1) for s in sums or []], layers)
        depths = [float(((rec - v) / n_v).pow(2).mean().sqrt()) for rec in self.dbn.reconstructions(v)]
        row["recon_rmse"], row["stack_recon_rmse"] = depths[0], depths[-1]
        row["depth_recon_rmse"] = depths  # through layers 1..d and back, for each depth d
        row["dead_fraction"], row["saturated_fraction"] = activity_fractions(unit_activity(self.dbn, v))
        return row

    def per_unit(self, values: list[float], layers: list[int] | None) -> dict[str, float]:
        """Layer losses divided by the layer's visible units: the free-energy gap per visible
        unit, {layer: value}, comparable across image sizes, architectures and runs."""
        ids = layers if layers is not None else list(range(len(self.dbn.layers)))
        return {str(i): v / math.prod(self.dbn.specs[i].visible_shape) for i, v in zip(ids, values)}


def train(cfg: TrainConfig, out: Path | None = None, *, resume: bool = False, progress=None,
          should_stop=None, images: torch.Tensor | None = None, subscribers=()) -> TrainResult:
    """Train a DBN as configured; the library entry point behind `rbm train`. The run folder
    records every epoch (metrics.jsonl, checkpoint copies) and its sample and reconstruction
    grids; `subscribers` (see Trainer) add more, such as report.pictures.EpochPictures."""
    cfg.validate()
    run_dir = Path(out) if out else default_run_dir(cfg)
    check_choices(cfg)  # usage errors before the dataset is loaded
    resolve_device(cfg.device)
    check_run_dir(run_dir, resume)
    torch.manual_seed(cfg.seed)
    if images is None:
        images = load_training_images(cfg)
    build_dbn(cfg, tuple(images.shape[1:]))  # architecture errors before anything is written
    run_dir = prepare_run_dir(cfg, run_dir, resume)
    trainer = Trainer(cfg, run_dir, images, resume=resume, progress=progress, should_stop=should_stop,
                      subscribers=[lambda t: t.folder, EpochGrids, *subscribers])
    return trainer.run()
