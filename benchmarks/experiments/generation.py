"""Do a checkpoint's samples vary? Diversity of `rbm sample` grids, measured.

    python benchmarks/experiments/generation.py runs/mnist-small/model.safetensors [more checkpoints]

    python benchmarks/experiments/generation.py runs/default/model.safetensors --n 1000 --sampler gibbs pt

For each checkpoint and sampler: `--n` samples (default 64; chains from noise, 1,000 steps in
the top RBM, seed 0, as `rbm sample -n N --sampler S` draws them) and these figures:
- classes: how many of the ten classes an independent classifier (scikit-learn's logistic
  regression on the first 20,000 training images' pixels; ≈ 92 % test accuracy on MNIST)
  reads among the samples, and its histogram;
- class balance: the largest class's share of the samples, and the χ² distance
  ½ Σ_c (p_c − q_c)² / (p_c + q_c) (0: the same histogram, 1: disjoint) of the samples' class
  histogram p from that of the first n real test images through the same classifier q;
- swap acceptance (sampler pt): between each pair of neighbouring temperatures;
- spread: the samples' mean pairwise Euclidean distance over that of n real test images
  (1.0: as varied as real data; a grid of copies of one image: ≈ 0);
- near-duplicate pairs: pairs of samples closer than a tenth of the real images' mean distance;
- seconds: wall time of the sampling.
Rows are printed and the grid of the first 64 samples written as gen-<run>[-sampler-pt].png under
runs/bench-img/; with --record the grid goes to docs/img/ and the rows are appended to
benchmarks/results/generation.json.
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
from rbmcli.model.tempering import DEFAULT_BETA_MIN, DEFAULT_TEMPERATURES
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


def chi2_distance(p: np.ndarray, q: np.ndarray) -> float:
    """½ Σ_c (p_c − q_c)² / (p_c + q_c) of two histograms normalised to sum 1 (classes empty in
    both are left out): 0 for equal histograms, 1 for disjoint ones."""
    p, q = p / p.sum(), q / q.sum()
    both = (p + q) > 0
    return float(0.5 * ((p[both] - q[both]) ** 2 / (p[both] + q[both])).sum())


def diversity(images: torch.Tensor, dataset: str) -> dict:
    """The figures above for float images (n, 1, H, W) in [0, 1]."""
    x = images.reshape(len(images), -1).double()
    model = classifier(dataset)
    pred = model.predict(x.numpy())
    real = load_dataset(dataset, "test", None, limit=len(images)).images.reshape(len(images), -1).double() / 255
    hist, real_hist = np.bincount(pred, minlength=10), np.bincount(model.predict(real.numpy()), minlength=10)
    spread_real = mean_pairwise(real)
    d = torch.cdist(x, x)
    dup = int(((d < 0.1 * spread_real).sum() - len(x)) // 2)
    return {"classes": len(set(pred.tolist())), "class_histogram": hist.tolist(),
            "largest_class_share": round(float(hist.max() / hist.sum()), 3),
            "chi2_to_data": round(chi2_distance(hist, real_hist), 4), "data_class_histogram": real_hist.tolist(),
            "spread": round(mean_pairwise(x) / spread_real, 3), "near_duplicate_pairs": dup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--steps", type=int, default=None, help="Gibbs steps per sample (default: the model's, 1000 or the k of --negatives noise)")
    ap.add_argument("--init", default="noise", choices=["noise", "data"])
    add_record_option(ap)
    ap.add_argument("--n", type=int, default=64, help="samples per checkpoint and sampler")
    ap.add_argument("--sampler", nargs="+", default=["gibbs"], choices=["gibbs", "pt"])
    ap.add_argument("--temperatures", type=int, default=DEFAULT_TEMPERATURES, help="pt: K")
    ap.add_argument("--beta-min", type=float, default=DEFAULT_BETA_MIN, help="pt: the lowest β of the ladder")
    args = ap.parse_args()
    rows = []
    for ckpt, sampler in [(c, s) for c in args.checkpoints for s in args.sampler]:
        _, info = load_model(ckpt)
        cfg = info["config"]
        t0 = time.time()
        result = sample_images(ckpt, args.n, steps=args.steps, init=args.init, device="cpu", sampler=sampler,
                               temperatures=args.temperatures, beta_min=args.beta_min)
        seconds = time.time() - t0
        grid = figure_dir(args.record) / f"gen-{Path(ckpt).parent.name}{'-sampler-pt' if sampler == 'pt' else ''}.png"
        save_png(result.images[:64], grid, nrow=8)
        pt = {"temperatures": [round(b, 4) for b in result.betas],
              "swap_acceptance": [round(r, 3) for r in result.swap_rates]} if sampler == "pt" else {}
        rows.append({"checkpoint": ckpt, "dataset": cfg["dataset"], "arch": cfg["arch"],
                     "recipe": cfg.get("recipe", "paper"), "visible_units": cfg["visible_units"],
                     "hidden_units": cfg["hidden_units"], "binary_top": cfg.get("binary_top", False),
                     "negatives": cfg["negatives"], "lr": cfg["lr"], "lr_decay": cfg["lr_decay"],
                     "epochs": cfg["epochs"], "init": args.init, "gibbs_steps": result.steps,
                     "n": args.n, "sampler": sampler, **pt,
                     **diversity(result.images, cfg["dataset"]), "sampling_seconds": round(seconds, 1),
                     "grid": relative(grid), "threads": torch.get_num_threads(),
                     "date": str(date.today()), "command": command_line()})
        print(json.dumps(rows[-1]))
    append_rows("generation", rows, args.record)


if __name__ == "__main__":
    main()
