"""Do a checkpoint's samples vary? Diversity of `rbm sample` grids, measured.

    python benchmarks/experiments/generation.py runs/mnist-small/model.safetensors [more checkpoints]

For each checkpoint: 64 samples (Gibbs chains from noise, 1,000 steps in the top RBM, seed 0,
as `rbm sample -n 64` draws them) and four figures:
- classes: how many of the ten classes an independent classifier (scikit-learn's logistic
  regression on the first 20,000 training images' pixels; ≈ 92 % test accuracy on MNIST)
  reads among the 64 samples, and its histogram;
- spread: the samples' mean pairwise Euclidean distance over that of 64 real test images
  (1.0: as varied as real data; a grid of copies of one image: ≈ 0);
- near-duplicate pairs: pairs of samples closer than a tenth of the real images' mean distance;
- seconds: wall time of the sampling.
Rows are printed and the grid written as gen-<run>.png under runs/bench-img/; with --record the
grid goes to docs/img/ and the rows are appended to benchmarks/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line, figure_dir, relative  # noqa: E402

from rbmcli.train.checkpoint import load_model
from rbmcli.data.datasets import load_dataset
from rbmcli.generate.samples import sample_images
from rbmcli.data.images import save_png


@lru_cache(maxsize=4)
def classifier(dataset: str):
    """Logistic regression on pixels/255 of the first 20,000 training images (gray datasets)."""
    from sklearn.linear_model import LogisticRegression

    ds = load_dataset(dataset, "train", None, limit=20_000)
    x = ds.images.reshape(len(ds.images), -1).float().numpy() / 255
    return LogisticRegression(max_iter=300, C=0.1).fit(x, ds.labels.numpy())


def mean_pairwise(x: torch.Tensor) -> float:
    """Mean Euclidean distance over the n(n − 1) ordered pairs of rows of x (n, D)."""
    n = len(x)
    return float(torch.cdist(x, x).sum() / (n * (n - 1)))


def diversity(images: torch.Tensor, dataset: str) -> dict:
    """The figures above for float images (n, 1, H, W) in [0, 1]."""
    x = images.reshape(len(images), -1).double()
    pred = classifier(dataset).predict(x.numpy())
    real = load_dataset(dataset, "test", None, limit=len(images)).images.reshape(len(images), -1).double() / 255
    spread_real = mean_pairwise(real)
    d = torch.cdist(x, x)
    dup = int(((d < 0.1 * spread_real).sum() - len(x)) // 2)
    return {"classes": len(set(pred.tolist())), "class_histogram": np.bincount(pred, minlength=10).tolist(),
            "spread": round(mean_pairwise(x) / spread_real, 3), "near_duplicate_pairs": dup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--init", default="noise", choices=["noise", "data"])
    add_record_option(ap)
    args = ap.parse_args()
    rows = []
    for ckpt in args.checkpoints:
        _, info = load_model(ckpt)
        cfg = info["config"]
        t0 = time.time()
        result = sample_images(ckpt, 64, steps=args.steps, init=args.init, device="cpu")
        seconds = time.time() - t0
        grid = figure_dir(args.record) / f"gen-{Path(ckpt).parent.name}.png"
        save_png(result.images, grid, nrow=8)
        rows.append({"checkpoint": ckpt, "dataset": cfg["dataset"], "arch": cfg["arch"],
                     "recipe": cfg.get("recipe", "paper"), "visible_units": cfg["visible_units"],
                     "hidden_units": cfg["hidden_units"], "binary_top": cfg.get("binary_top", False),
                     "negatives": cfg["negatives"], "lr": cfg["lr"], "lr_decay": cfg["lr_decay"],
                     "epochs": cfg["epochs"], "init": args.init, "gibbs_steps": args.steps,
                     **diversity(result.images, cfg["dataset"]), "sampling_seconds": round(seconds, 1),
                     "grid": relative(grid), "threads": torch.get_num_threads(),
                     "date": str(date.today()), "command": command_line()})
        print(json.dumps(rows[-1]))
    append_rows("generation", rows, args.record)


if __name__ == "__main__":
    main()
