"""Training for the RBM and DBN estimators: the trainer's loop (rbmcli.train.trainer) without its
run folder: the same model construction, losses, Adam, learning-rate decay, visible-bias
initialisation, centering offsets and epoch order, on data already in visible units.

Data maps onto the visible units 0..N_v as the CLI's (rbmcli.data.batches.to_visible): uint8
pixels v = x·N_v/255; any other dtype is taken as intensities in [0, 1], v = x·N_v.
"""

from __future__ import annotations

import time
from dataclasses import fields

import numpy as np
import torch

from rbmcli.train.config import TrainConfig

TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


def to_visible_units(X: np.ndarray, n_visible: int, device: torch.device) -> torch.Tensor:
    """uint8 pixels → x·N_v/255; other dtypes (intensities in [0, 1]) → x·N_v; float32 tensor."""
    scale = n_visible / 255.0 if X.dtype == np.uint8 else float(n_visible)
    return torch.as_tensor(np.require(X, requirements="W"), device=device).to(torch.float32) * scale


def make_config(params: dict, device: str, seed: int) -> TrainConfig:
    """The TrainConfig of an estimator's parameters; `options` may set any other field.
    Raises RbmError on an invalid value (the caller turns it into ValueError)."""
    from rbmcli.errors import RbmError

    options = dict(params.get("options") or {})
    unknown = sorted(set(options) - TRAIN_FIELDS)
    if unknown:
        raise RbmError(f"options has unknown fields {unknown}; known: {sorted(TRAIN_FIELDS)}")
    values = dict(arch=params["arch"], visible_units=params["visible_units"], hidden_units=params["hidden_units"],
                  k=params["k"], activation=params["activation"], recipe=params["recipe"],
                  negatives=params["negatives"], gibbs_steps=params["gibbs_steps"], mode=params["mode"],
                  epochs=params["n_iter"], batch_size=params["batch_size"], lr=params["learning_rate"],
                  device=device, seed=seed, dataset="array", keep=0)
    cfg = TrainConfig(**{**values, **options})
    from rbmcli.train.trainer import check_choices

    check_choices(cfg)
    return cfg.validate()


def fit_dbn(cfg: TrainConfig, v: torch.Tensor, generator: torch.Generator, verbose: int = 0, name: str = "DBN"):
    """Train a fresh DBN on v (n, C, H, W) in visible units, as `rbm train` does (its model,
    initialisation, epoch order, rate schedule, centering and its eager optimiser step,
    rbmcli.train.step.EagerStep); returns (dbn, optimiser steps). The batch is
    min(batch_size, n); a last partial batch is dropped."""
    from rbmcli.data.batches import epoch_permutation
    from rbmcli.model.loss import dbn_losses
    from rbmcli.train import trainer as T
    from rbmcli.train.distributed import World
    from rbmcli.train.step import EagerStep

    dbn = T.build_dbn(cfg, tuple(v.shape[1:])).to(v.device)
    centered = T.centered_layers(dbn.specs, cfg)
    if cfg.visible_bias_init == "data":
        dbn.init_visible_biases(v[:T.INIT_IMAGES])
    if centered:
        dbn.move_offsets(v[:T.INIT_IMAGES], 1.0, centered)
    opt = T.make_optimiser(dbn, cfg, fused=v.device.type in ("cpu", "cuda"))
    chains, negatives = [None] * len(dbn.layers), cfg.layer_negatives(len(dbn.layers))

    def losses(batch: torch.Tensor, layers: list[int] | None) -> list[torch.Tensor]:
        with torch.autocast(v.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            return dbn_losses(dbn, batch, negatives, steps=cfg.gibbs_steps, generator=generator, mode=cfg.mode,
                              chains=chains, layers=layers, sparsity=cfg.sparsity, sparsity_target=cfg.sparsity_target)

    step_fn = EagerStep(dbn, opt, losses, World())
    n, B = len(v), min(cfg.batch_size, len(v))
    per_epoch, epochs, step = n // B, T.total_epochs(cfg, len(dbn.layers)), 0
    for epoch in range(epochs):
        layers, perm, t0 = T.layers_for_epoch(cfg, len(dbn.layers), epoch), epoch_permutation(n, cfg.seed, epoch), time.time()
        stats = []  # (2·L + 1,) per step: losses, gradient sums, parameter sum
        for b in range(per_epoch):
            batch = v[perm[b * B:(b + 1) * B].to(v.device)]
            stats.append(step_fn(batch, layers, T.learning_rate(cfg.lr, cfg.lr_decay, step, epochs * per_epoch)))
            if centered and (step + 1) % T.OFFSET_EVERY == 0:
                dbn.move_offsets(batch, T.OFFSET_RATE, centered)
            step += 1
        stats = torch.stack(stats)  # one read per epoch
        if not torch.isfinite(stats).all():
            raise ValueError(f"training diverged in epoch {epoch + 1}: a loss, gradient or parameter is not finite; "
                             "lower learning_rate")
        if verbose:
            trained = (stats.shape[1] - 1) // 2
            print(f"[{name}] epoch {epoch + 1}/{epochs}, loss = {float(stats[:, :trained].sum(1).mean()):.4g}, "
                  f"time = {time.time() - t0:.2f}s")
    return dbn.eval(), step
