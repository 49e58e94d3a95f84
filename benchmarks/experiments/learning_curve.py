"""SVM test error against training epochs: the Table 1 protocol on every kept epoch checkpoint.

    python benchmarks/experiments/learning_curve.py runs/t1-conv-mnist-N255 [--epochs 1,3,6]

Train the run first with `rbm train ... --keep 100 --out RUN` (keeps model-epochNNN.safetensors;
copies kept in subfolders of RUN count too, e.g. RUN/kept/model-epoch006.safetensors).
C is chosen on a validation split of the training set for every checkpoint; the validation
error is the selection signal, the test error is only reported. With --record, rows are appended to
benchmarks/results/learning_curves.json: {run, dataset, units_N, arch, epoch, svm_error_percent,
val_error_percent, C, train_seconds (cumulative), svm_seconds, command, date}.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.eval.evaluate import EvalOptions, evaluate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--epochs", default="", help="comma-separated epochs (default: every kept checkpoint)")
    add_record_option(ap)
    args = ap.parse_args()
    wanted = {int(e) for e in args.epochs.split(",") if e}
    metrics = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    seconds = {m["epoch"]: sum(x["seconds"] for x in metrics if x["epoch"] <= m["epoch"]) for m in metrics}
    config = json.loads((args.run / "config.json").read_text())
    found = {p.name: p for p in sorted(args.run.glob("**/model-epoch*.safetensors"), reverse=True)}  # one per epoch
    for ckpt in (found[name] for name in sorted(found)):
        epoch = int(ckpt.stem.removeprefix("model-epoch"))
        if wanted and epoch not in wanted:
            continue
        _, rows = evaluate(ckpt, EvalOptions(svm=True, device="cpu"),
                           progress=lambda what, done, total: print(f"{ckpt.name}: {what} {done}/{total}", flush=True)
                           if what.startswith("SVM") else None)
        svm = rows[0]
        row = {"run": str(args.run), "dataset": config["dataset"], "units_N": config["visible_units"],
               "arch": config["arch"], "lr": config["lr"], "lr_decay": config.get("lr_decay", "none"), "mode": config["mode"], "negatives": config["negatives"], "epoch": epoch,
               "svm_error_percent": round(svm.value, 3), "val_error_percent": round(svm.details["val_error_percent"], 3),
               "C": svm.details["C"], "features": svm.details["features"], "scan": svm.details["scan"],
               "train_seconds": round(seconds.get(epoch, float("nan")), 1), "svm_seconds": round(svm.seconds, 1),
               "command": command_line(), "date": str(date.today())}
        print(json.dumps(row), flush=True)
        append_rows("learning_curves", [row], args.record)


if __name__ == "__main__":
    main()
