"""Quick recipe screening for Table 1, on the training set only (the test set is never read).

    python benchmarks/experiments/screen.py runs/scr-sp003 [--kernels linear,nystroem,rbf] [--fit 10000]
    python benchmarks/experiments/screen.py runs/t1-conv-mnist-N255-e2 --epochs 2 --features "top;1;1+2;0p2+1+2"

For every kept epoch checkpoint of a run (model-epochNNN.safetensors, `rbm train --keep`):
top-layer features of the 60k training images, the same stratified 10 % validation split as
the Table 1 protocol, an SVM fit on the first `--fit` images of the other 90 % for each C of a
short grid, and the validation error at each C. A point costs ≈ 1–2 minutes instead of the
full protocol's 15, so recipes can be compared at the same budget before one is run in full
(benchmarks/experiments/learning_curve.py). With --record, rows go to benchmarks/results/screen.json:
{run, epoch, recipe, kernel, features, fit, val_error_percent (best over the grid), C, scan, seconds, command, date}.

--features screens other feature sets than the top layer (the paper's and the default):
";"-separated sets, each a "+"-joined list of layers, 0 = the first hidden layer, "top" = the
last, an optional "pK" average-pools that layer's maps K×K first (e.g. "0p2+1+2").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.train.checkpoint import load_model
from rbmcli.eval.evaluate import EvalOptions, _data
from rbmcli.eval.svm import extract_features, scan_c, validation_split

GRIDS = {"linear": (0.01, 0.03, 0.1), "nystroem": (1.0, 3.0, 10.0, 30.0), "rbf": (1.0, 10.0)}
RECIPE_KEYS = ("arch", "visible_units", "hidden_units", "lr", "lr_decay", "negatives", "mode", "sparsity",
               "sparsity_target", "activation", "batch_size", "weight_decay", "seed")


def parse_features(spec: str, n_layers: int) -> list[list[tuple[int, int]]]:
    """'top;1+2;0p2+top' → [[(top, 1)], [(1, 1), (2, 1)], [(0, 2), (top, 1)]] (layer, pool)."""
    sets = []
    for part in spec.split(";"):
        tokens = []
        for tok in part.split("+"):
            match = re.fullmatch(r"(top|\d+)(?:p(\d+))?", tok.strip())
            if match is None:
                raise SystemExit(f"--features: {tok!r} is not LAYER or LAYERpK (e.g. top, 1, 0p2)")
            layer, pool = match.groups()
            index = n_layers - 1 if layer == "top" else int(layer)
            if not 0 <= index < n_layers:
                raise SystemExit(f"--features: layer {layer} out of range 0..{n_layers - 1}")
            tokens.append((index, int(pool or 1)))
        sets.append(tokens)
    return sets


@torch.inference_mode()
def layer_features(dbn, images, visible_units_n: int, tokens: list[tuple[int, int]], batch_size: int = 512) -> np.ndarray:
    """Mean activities of the layers in tokens [(layer, pool), ...], each average-pooled pool×pool
    when pool > 1, flattened and concatenated: (n, D). One upward pass, as high as needed."""
    top = max(j for j, _ in tokens)
    out = []
    for start in range(0, len(images), batch_size):
        v = torch.as_tensor(images[start:start + batch_size]).float() * (visible_units_n / 255.0)
        acts = []
        for layer in dbn.layers[:top + 1]:
            v = layer.hidden_mean(layer.flatten_input(v))
            acts.append(v)
        out.append(torch.cat([(torch.nn.functional.avg_pool2d(acts[j], p, ceil_mode=True) if p > 1 else acts[j]).flatten(1)
                              for j, p in tokens], 1).numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--kernels", default="linear")
    ap.add_argument("--fit", type=int, default=10_000, help="training images the SVM is fit on")
    ap.add_argument("--landmarks", type=int, default=4096)
    ap.add_argument("--epochs", default="", help="comma-separated epochs (default: every kept checkpoint)")
    ap.add_argument("--features", default="top", help='";"-separated layer sets, e.g. "top;1+2;0p2+top"')
    add_record_option(ap)
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
        n_v = dbn.specs[0].visible_units.n
        sets = zip(args.features.split(";"), parse_features(args.features, len(dbn.layers)))
        # one feature set in memory at a time (60k × 11,712 float32 is 2.8 GB; all six sets at once were OOM-killed)
        for features, tokens in sets:
            x = (extract_features(dbn, ds.images, visible_units_n=n_v, batch_size=512, device="cpu") if features == "top"
                 else layer_features(dbn, ds.images, n_v, tokens))
            fx, vx, fy, vy = validation_split(x, ds.labels.numpy())  # the Table 1 protocol's split
            fx, fy = fx[:args.fit], fy[:args.fit]
            for kernel in args.kernels.split(","):
                t0 = time.perf_counter()
                _, scan = scan_c(fx, fy, vx, vy, kernel=kernel, c_grid=GRIDS[kernel], landmarks=args.landmarks)
                best = min(scan, key=lambda s: s["val_error_percent"])  # ties: the smallest C
                row = {"run": str(args.run), "epoch": epoch, "recipe": recipe, "kernel": kernel,
                       "features": features, "dimensions": int(x.shape[1]),
                       "landmarks": args.landmarks if kernel == "nystroem" else None, "fit": len(fy),
                       "val_error_percent": round(best["val_error_percent"], 3), "C": best["C"], "scan": scan,
                       "seconds": round(time.perf_counter() - t0, 1), "command": command_line(), "date": str(date.today())}
                print(json.dumps(row), flush=True)
                append_rows("screen", [row], args.record)


if __name__ == "__main__":
    main()
