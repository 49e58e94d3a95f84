"""Exact test log-likelihood of a small binary RBM after a short run, against independent pixels.

    python benchmarks/experiments/likelihood_784_16.py
    python benchmarks/experiments/likelihood_784_16.py --runs "paper:3,generate:3,generate:10"
    python benchmarks/experiments/likelihood_784_16.py --runs "paper:3,generate:3" --scale-divisor 5
    python benchmarks/experiments/likelihood_784_16.py --runs generate:3 --weight-scale fan-in --no-center-data --lr 0.01

A dense 784–16 RBM with binary units is trained as `rbm train` trains it on the first 10,000
MNIST training images, binarised by sampling (seed 0): shuffled batches of 128, each recipe's
loss, rate and schedule, the default initialisation; 16 hidden units make log Z exact (2^16 terms). Its
mean log-likelihood on the first 2,000 test images (binarised with seed 1) is printed next to
that of the independent-pixel model fitted to the same training images (Laplace-smoothed
pixel means). Seconds per run. With --record, rows go to benchmarks/results/likelihood_small.json.

`--scale-divisor D` is an experiment, not an rbmcli option: it divides the weight scale
s = √(k_v N_v k_h N_h · fan_in) of dense layers by D for this process, so that Adam's steps
move the physical weights D times as far (docs/results.md, "Likelihood of the initialisation").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.data.batches import binarize
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.partition import exact_log_partition, log_likelihood
from rbmcli.model.rbm import RBM
from rbmcli.train.config import TrainConfig
from rbmcli.train.checkpoint import load_model
from rbmcli.train.trainer import train


def trained_rbm(cfg: TrainConfig, images: torch.Tensor, epochs: int):
    """The RBM that `rbm train` makes from these images (shuffled batches, the recipe's schedule)."""
    cfg.epochs = epochs
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, Path(tmp) / "run", images=images)
        return load_model(result.checkpoint)[0].layers[0]


def divide_dense_scale(divisor: float) -> None:
    """Patch RBM construction in this process: dense layers get s / divisor."""
    build = RBM.__init__

    def patched(self, spec, *a, **kw):
        build(self, spec, *a, **kw)
        if spec.is_dense:
            self.scale /= divisor

    RBM.__init__ = patched


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="paper:3,generate:3,generate:10,generate:30,paper:10",
                    help="comma-separated RECIPE:EPOCHS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale-divisor", type=float, default=1.0, help="experiment: dense layers' s divided by this")
    ap.add_argument("--weight-scale", default=None, help="as rbm train's --weight-scale (default: the recipe's)")
    ap.add_argument("--center-data", action=argparse.BooleanOptionalAction, default=None,
                    help="as rbm train's --center-data/--no-center-data (default: the recipe's)")
    ap.add_argument("--lr", type=float, default=None, help="as rbm train's --lr (default: the recipe's)")
    add_record_option(ap)
    args = ap.parse_args()
    if args.scale_divisor != 1.0:
        divide_dense_scale(args.scale_divisor)
    train_images = binarize(load_dataset("mnist", "train", None, limit=10_000).images, "sample", 0)
    test_images = binarize(load_dataset("mnist", "test", None, limit=2_000).images, "sample", 1)
    v = test_images.flatten(1).double() / 255
    p = (train_images.flatten(1).double().sum(0) / 255 + 1) / (len(train_images) + 2)
    independent = float((v * p.log() + (1 - v) * (1 - p).log()).sum(1).mean())
    print(f"independent pixels: {independent:.2f} nats")
    rows = []
    for item in args.runs.split(","):
        recipe, epochs = item.split(":")
        cfg = TrainConfig(recipe=recipe, arch="dense:16", visible_units=1, hidden_units=1,
                          device="cpu", seed=args.seed, weight_scale=args.weight_scale,
                          center_data=args.center_data, lr=args.lr)
        t0 = time.time()
        rbm = trained_rbm(cfg, train_images, int(epochs)).double()
        seconds = time.time() - t0
        ll = float(log_likelihood(rbm, v, exact_log_partition(rbm)).mean())
        print(f"{recipe:>9} recipe, {epochs:>3} epochs: {ll:.2f} nats ({ll - independent:+.2f}), {seconds:.0f} s")
        rows.append({"recipe": recipe, "negatives": cfg.negatives, "lr": cfg.lr, "lr_decay": cfg.lr_decay,
                     "epochs": int(epochs), "visible_bias_init": cfg.visible_bias_init, "seed": args.seed,
                     "scale_divisor": args.scale_divisor, "weight_scale": cfg.weight_scale,
                     "center_data": cfg.center_data,
                     "test_log_likelihood_nats": round(ll, 2), "independent_pixels_nats": round(independent, 2),
                     "gain_nats": round(ll - independent, 2), "seconds": round(seconds, 1),
                     "threads": torch.get_num_threads(), "date": str(date.today()), "command": command_line()})
    append_rows("likelihood_small", rows, args.record)


if __name__ == "__main__":
    main()
