"""Quick recipe screening for Table 1, on the training set only (the test set is never read).

    python benchmarks/screen.py runs/scr-sp003 [--kernels linear,nystroem,rbf] [--fit 10000]

For every kept epoch checkpoint of a run (model-epochNNN.safetensors, `rbm train --keep`):
top-layer features of the 60k training images, the same stratified 10 % validation split as
the Table 1 protocol, an SVM fit on the first `--fit` images of the other 90 % for each C of a
short grid, and the validation error at each C. A point costs ≈ 1–2 minutes instead of the
full protocol's 15, so recipes can be compared at the same budget before one is run in full
(benchmarks/learning_curve.py). Rows go to benchmarks/results/screen.json:
{run, epoch, recipe, kernel, fit, val_error_percent (best over the grid), C, scan, seconds, command, date}.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date
from pathlib import Path

from rows import append_rows, command_line
from sklearn.model_selection import train_test_split

from rbmcli.checkpoint import load_model
from rbmcli.evaluate import EvalOptions, _data
from rbmcli.svm import extract_features, scan_c

GRIDS = {"linear": (0.01, 0.03, 0.1), "nystroem": (1.0, 3.0, 10.0, 30.0), "rbf": (1.0, 10.0)}
RECIPE_KEYS = ("arch", "visible_units", "hidden_units", "lr", "lr_decay", "negatives", "mode", "sparsity",
               "sparsity_target", "activation", "batch_size", "weight_decay", "seed")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--kernels", default="linear")
    ap.add_argument("--fit", type=int, default=10_000, help="training images the SVM is fit on")
    ap.add_argument("--landmarks", type=int, default=4096)
    ap.add_argument("--epochs", default="", help="comma-separated epochs (default: every kept checkpoint)")
    args = ap.parse_args()
    wanted = {int(e) for e in args.epochs.split(",") if e}
    config = json.loads((args.run / "config.json").read_text())
    recipe = {k: config.get(k) for k in RECIPE_KEYS}
    for ckpt in sorted(args.run.glob("model-epoch*.safetensors")):
        epoch = int(ckpt.stem.removeprefix("model-epoch"))
        if wanted and epoch not in wanted:
            continue
        dbn, info = load_model(ckpt)
        dbn.eval()
        ds, _ = _data(info, EvalOptions(svm=True), "train", None)
        x = extract_features(dbn, ds.images, dbn.specs[0].visible_units.n, 512, "cpu")
        fx, vx, fy, vy = train_test_split(x, ds.labels.numpy(), test_size=0.1, stratify=ds.labels.numpy(),
                                          random_state=0)  # the Table 1 protocol's split
        fx, fy = fx[:args.fit], fy[:args.fit]
        for kernel in args.kernels.split(","):
            t0 = time.perf_counter()
            _, scan = scan_c(fx, fy, vx, vy, kernel, GRIDS[kernel], landmarks=args.landmarks)
            best = min(scan, key=lambda s: s["val_error_percent"])  # ties: the smallest C
            row = {"run": str(args.run), "epoch": epoch, "recipe": recipe, "kernel": kernel,
                   "landmarks": args.landmarks if kernel == "nystroem" else None, "fit": len(fy),
                   "val_error_percent": round(best["val_error_percent"], 3), "C": best["C"], "scan": scan,
                   "seconds": round(time.perf_counter() - t0, 1), "command": command_line(), "date": str(date.today())}
            print(json.dumps(row), flush=True)
            append_rows("screen", [row])


if __name__ == "__main__":
    main()
