"""Reproduce a row of the paper's Table 1: train, then the SVM protocol on top features.

    python benchmarks/experiments/table1.py --dataset mnist --units 255 --arch paper-classify --epochs 3

Trains with `train` of rbmcli/train/trainer.py (the library behind `rbm train`), evaluates with the
protocol of `rbm evaluate --svm` (standardised linear SVM, C chosen on a validation split of
the training set), and (with --record) appends a row to benchmarks/results/table1.json:
{dataset, units_N, svm_error_percent, epochs, wall_seconds, command, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.train.config import TrainConfig
from rbmcli.eval.evaluate import EvalOptions, evaluate
from rbmcli.train.trainer import train

SVM_PROTOCOL = "L-BFGS on liblinear's objective, C in 1e-4..1 (half decades)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--units", type=int, default=255, help="N of every layer (1 or 255)")
    ap.add_argument("--arch", default="paper-classify")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--lr-decay", default=TrainConfig.lr_decay, help="none, linear or cosine")
    ap.add_argument("--mode", default=TrainConfig.mode)
    ap.add_argument("--negatives", default="meanfield")
    ap.add_argument("--activation", default="sigmoid")
    ap.add_argument("--k", type=float, default=None)
    ap.add_argument("--limit", type=int, default=None, help="training images for the RBM (SVM uses all)")
    ap.add_argument("--svm-limit-train", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--table", default="table1", help="results file name (table1, ablations, ...)")
    ap.add_argument("--tag", default="", help="a label for the row (ablation name)")
    add_record_option(ap)
    args = ap.parse_args()
    cfg = TrainConfig(recipe="paper", visible_bias_init="zero", dataset=args.dataset, arch=args.arch, visible_units=args.units, hidden_units=args.units,
                      epochs=args.epochs, lr=args.lr, lr_decay=args.lr_decay, mode=args.mode, negatives=args.negatives,
                      activation=args.activation, k=args.k, limit=args.limit, device="cpu", sample_steps=100)
    out = args.out or Path("runs") / f"table1-{args.dataset}-N{args.units}-{args.arch}-{int(time.time())}-{os.getpid()}"
    t0 = time.time()
    res = train(cfg, out, progress=lambda e: print(json.dumps(e), flush=True) if e["kind"] == "epoch" else None)
    train_s = time.time() - t0
    _, rows = evaluate(res.checkpoint, EvalOptions(svm=True, limit_train=args.svm_limit_train, device="cpu"))
    svm = rows[0]
    row = {"dataset": args.dataset, "units_N": args.units, "svm_error_percent": round(svm.value, 3),
           "epochs": args.epochs, "wall_seconds": round(time.time() - t0, 1), "train_seconds": round(train_s, 1),
           "command": command_line(), "arch": args.arch, "lr": args.lr, "lr_decay": args.lr_decay, "mode": args.mode,
           "negatives": args.negatives, "activation": args.activation, "tag": args.tag,
           "svm": svm.details, "svm_protocol": SVM_PROTOCOL, "date": str(date.today()), "machine": f"{platform.machine()} 2-core CPU",
           "final_metrics": res.metrics[-1] if res.metrics else {}, "checkpoint": str(res.checkpoint)}
    print(json.dumps(row, indent=2))
    where = append_rows(args.table, [row], args.record)
    if where:
        print(f"row appended to {where}")


if __name__ == "__main__":
    main()
