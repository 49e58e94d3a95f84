"""What an epoch of `rbm train` spends besides training, against the epoch itself, in one process.

    python benchmarks/perf/bench_extras.py [--arch small] [--device cpu] [--repeats 3]

For the default job (MNIST, generate recipe) or --arch: ms per training step of batch 128
(`Trainer.train_step`, losses read every 50 steps) and per Gibbs step of the grid's 64
chains, their ratio, the epoch's training time (steps per epoch × ms per step), and the
seconds of each per-epoch extra as `rbm train` runs it after its first epoch: the grids
(train.grids.EpochGrids), the pictures (report.pictures.EpochPictures), the epoch's metrics,
the checkpoint; then their sum as a share of the epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from rbmcli.model.sampling import gibbs_chain, top_chain_start
from rbmcli.report.pictures import EpochPictures
from rbmcli.train.config import TrainConfig
from rbmcli.train.grids import EpochGrids
from rbmcli.train.trainer import Trainer, load_training_images


def per_call(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cfg = TrainConfig(arch=args.arch, device=args.device)
    t = Trainer(cfg, tempfile.mkdtemp(), load_training_images(cfg))
    v = t.images[:cfg.batch_size].to(t.device).float() * (cfg.visible_units / 255)
    top, g = t.dbn.layers[-1], torch.Generator(device=t.device).manual_seed(0)
    chains = top_chain_start(t.dbn, 64, g, device=t.device)

    def steps50():
        for _ in range(50):
            t.train_step(v, None)
        t.read_pending()

    steps50()  # warm-up
    for _ in range(args.repeats):
        step = per_call(steps50, 4) / 50
        with torch.no_grad():
            gibbs = per_call(lambda: gibbs_chain(top, chains, 1, g), 200)
        print(f"training step {step * 1e3:.2f} ms, grid Gibbs step (64 chains) {gibbs * 1e3:.2f} ms: "
              f"ratio {gibbs / step:.3f}; epoch of {t.steps_per_epoch} steps {step * t.steps_per_epoch:.2f} s")
    epoch = step * t.steps_per_epoch
    row = t.epoch_metrics([0.0], 1, None, epoch)
    row["epoch"] = 1
    t.folder.append_metrics(row)
    grids, pictures = EpochGrids(t), EpochPictures(t)
    first = once(lambda: pictures({"kind": "epoch", "row": row}))  # the first epoch also imports matplotlib
    costs = {"grids": once(lambda: grids.write(1)), "pictures": once(lambda: pictures({"kind": "epoch", "row": row})),
             "metrics": once(lambda: t.epoch_metrics([0.0], 1, None, epoch)), "checkpoint": once(t.save)}
    for name, sec in costs.items():
        print(f"  {name:11s} {sec:.3f} s = {sec / epoch:.1%} of the epoch")
    total = sum(costs.values())
    print(f"per-epoch extras {total:.2f} s = {total / epoch:.1%} of a {epoch:.2f} s epoch "
          f"(grid: {grids.steps} Gibbs steps an epoch); the first epoch's pictures {first:.2f} s (matplotlib's import)")


if __name__ == "__main__":
    main()
