"""Exact RBF-kernel SVM (libsvm) on the top features of the full training split, C (and γ) chosen on validation.

    python benchmarks/experiments/rbf_full.py runs/t1-conv-mnist-N255-e2/model-epoch002.safetensors --C 3,10,30

The paper does not name its SVM; scikit-learn's default `SVC` is an RBF-kernel SVM. On 10k
training images (benchmarks/experiments/screen.py --kernels rbf) the RBF kernel did not beat the linear
one, but a kernel machine gains more from data than a linear one, so this checks it on the
full split. One SVM per C of --C (and per γ of --gamma-factor, default
scikit-learn's 'scale' γ) is fit on the Table 1 protocol's fit part (the other 90 % of
the training set after the same stratified 10 % validation split); the C with the lowest
validation error is chosen and only that SVM predicts the test set. libsvm costs 8–30 minutes
per fit here, so the chosen SVM is not refit on the validation images (the linear protocol
refits). With --record, rows go to benchmarks/results/rbf_full.json: {checkpoint, dataset, units_N, epoch, C,
fit, val_error_percent, svm_error_percent, n_support, scan: [{C, val_error_percent, n_support,
fit_seconds}], seconds, command, date}; and, when benchmarks/results/table1.json already holds
the run's linear-SVM row (its `rbm train` command), a Table 1 row for the RBF protocol.

Several checkpoints make an ensemble:

    python benchmarks/experiments/rbf_full.py runs/a/model-epoch002.safetensors runs/b/model-epoch002.safetensors --C 10

each gets its own SVM as above (its validation and test one-vs-one decision values are cached
next to the checkpoint, so members fit in separate processes are combined without refitting),
then the members' decision values are summed and voted (`ovo_vote` of rbmcli/eval/svm.py); a row goes to
benchmarks/results/rbf_ensemble.json and one to table1.json. The checkpoints may be seeds (one
run each) or snapshots of one run (several epochs; the run's training is counted once).
`pixels:mnist` in place of a checkpoint is the raw-pixel peer (pixels / 255, same protocol; a
row goes to peers.json).
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
from joblib import Parallel, delayed
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import RESULTS, add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.train.checkpoint import load_model
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.evaluate import EvalOptions, _data
from rbmcli.eval.svm import extract_features, ovo_vote, validation_split

PROTOCOL = "libsvm RBF (γ = %s), %s on validation from {%s}, fit on 54k, no refit"


def protocol(row: dict) -> str:
    """'libsvm RBF (γ = 1/D, …), C on validation from {3, 10, 30} …', or '(γ, C) … from {(0.5, 10), …}'."""
    gammas = {s.get("gamma_factor", 1.0) for s in row["scan"]}
    width = "%s/D, standardised" if row.get("scaling", "standard") == "standard" else "%s/(D·var), unscaled"
    if len(gammas) == 1:
        return PROTOCOL % (width % f"{gammas.pop():g}", "C", ", ".join(f"{s['C']:g}" for s in row["scan"]))
    return PROTOCOL % (width % f"{row['gamma_factor']:g}", "(γ factor, C)",
                       ", ".join(f"({s['gamma_factor']:g}, {s['C']:g})" for s in row["scan"]))


def linear_train_command(run: Path) -> str | None:
    """The `rbm train` command of the run's linear-SVM row in table1.json, None when it has none."""
    table = json.loads((RESULTS / "table1.json").read_text())
    return next((r["command"].split(" && ")[0] for r in table if f"--out {run} " in r["command"] + " "), None)


def train_seconds(run: Path, epoch: int) -> float:
    """Training wall time of a run folder up to `epoch` (its metrics.jsonl)."""
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return sum(m["seconds"] for m in metrics if m["epoch"] <= epoch)


def train_command(run: Path, epoch: int) -> str:
    """The `rbm train` command of a run: its Table 1 linear row's when there is one, else one
    spelled out from the run's config.json (every flag that differs between the seeds' runs)."""
    known = linear_train_command(run)
    if known is not None:  # the same run trained to `epoch` (constant rate: the same checkpoint as a resume)
        return re.sub(r"--epochs \d+", f"--epochs {epoch}", known)
    c = json.loads((run / "config.json").read_text())
    return (f"OMP_NUM_THREADS=1 rbm train --recipe paper --visible-bias-init zero --dataset {c['dataset']} --arch {c['arch']} --visible-units {c['visible_units']} "
            f"--hidden-units {c['hidden_units']} --lr {c['lr']:g} --seed {c['seed']} --epochs {epoch} --keep 10 "
            f"--device cpu --out {run}")


def table1_entry(row: dict, runs: list[Path], c: float, svm_protocol: str, tag: str, arch_note: str = "") -> dict:
    """A Table 1 row for an RBF result over the DBNs of `runs` (distinct run folders): their
    training commands and times (to the row's epoch), the recipe from the first run's
    config.json, then the SVM command."""
    config = json.loads((runs[0] / "config.json").read_text())
    train_s = sum(train_seconds(r, row["epoch"]) for r in runs)
    return {"dataset": row["dataset"], "units_N": row["units_N"], "svm_error_percent": row["svm_error_percent"],
            "epochs": row["epoch"], "wall_seconds": round(train_s + row["seconds"], 1), "train_seconds": round(train_s, 1),
            **{k: config.get(k) for k in ("arch", "lr", "lr_decay", "mode", "negatives", "activation")},
            **({"arch": f"{config['arch']}{arch_note}"} if arch_note else {}), "tag": tag,
            "svm": {"dataset": row["dataset"], "kernel": "rbf", "C": c, "val_error_percent": row["val_error_percent"],
                    "n_train": row["fit"], "n_test": 10_000, "features": row["features"]},
            "date": row["date"],
            "machine": "x86_64 2-core CPU (AMD EPYC); each SVM at one thread, two jobs at once; training at "
                       "the command's OMP_NUM_THREADS",
            "svm_protocol": svm_protocol,
            "command": " && ".join([train_command(r, row["epoch"]) for r in runs] + [row["command"]])}


def table1_row(row: dict, checkpoint: Path) -> dict | None:
    """The Table 1 row of one checkpoint's RBF result; None when table1.json has no linear-SVM
    row of its run (whose `rbm train` command the row names)."""
    if linear_train_command(checkpoint.parent) is None:
        return None
    return table1_entry(row, [checkpoint.parent], row["C"], protocol(row), "rbf")


def ensemble_table1_row(row: dict) -> dict:
    """The Table 1 row of an ensemble: every member's training command and time, the SVMs' time."""
    runs = list(dict.fromkeys(Path(c).parent for c in row["checkpoints"]))  # snapshots of one run: it once
    k = len(row["checkpoints"])
    note = (f" × {k} seeds" if len(runs) == k else
            f" × {k} snapshots (epochs {', '.join(str(m['epoch']) for m in row['members'])})" if len(runs) == 1 else
            f" × {k} checkpoints of {len(runs)} runs")
    return table1_entry(row, runs, row["members"][0]["C"],
                        f"{k} libsvm RBF SVMs (one per DBN, γ = 1/D, standardised, C on validation, fit on 54k), "
                        "one-vs-one decision values summed, then voted", "rbf-ensemble", note)


def fit_one(fx, fy, vx, vy, c: float, gamma: float, cache_mb: float, standardise: bool = True):
    """One RBF SVM fit on the fit part, standardised first unless told not to →
    (model, {C, val_error_percent, n_support, fit_seconds})."""
    t0 = time.perf_counter()
    steps = [StandardScaler()] if standardise else []  # "none": the features as they are, one γ for all
    svm = make_pipeline(*steps, SVC(C=c, kernel="rbf", gamma=gamma, cache_size=cache_mb)).fit(fx, fy)
    return svm, {"C": c, "val_error_percent": round(100.0 * float((svm.predict(vx) != vy).mean()), 3),
                 "n_support": int(svm[-1].n_support_.sum()), "fit_seconds": round(time.perf_counter() - t0, 1)}


def member(checkpoint: Path, args) -> tuple[dict, dict, bool]:
    """One checkpoint's RBF SVM: scan, choice on validation, one-vs-one decision values of the
    chosen SVM on the validation and test images → (row, arrays, fresh). The arrays (val/test
    decisions and labels) are cached next to the checkpoint, keyed by the C and γ grids, so an
    ensemble of members fit in separate processes is combined without refitting."""
    pixels, source = str(checkpoint).startswith("pixels:"), str(checkpoint)  # the peer: raw pixels / 255
    if pixels:
        checkpoint = Path("runs") / f"pixels-{str(checkpoint)[7:]}" / "pixels"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    tag = "" if args.scaling == "standard" else f"-s{args.scaling}"
    cache = checkpoint.with_name(f"rbf-{checkpoint.stem}-C{args.C.replace(',', '_')}-g{args.gamma_factor.replace(',', '_')}{tag}.npz")
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return json.loads(str(z["row"])), {k: z[k] for k in ("val_dec", "test_dec", "val_y", "test_y")}, False
    feats = {}
    if pixels:
        name, info = checkpoint.parent.name[7:], {"config": {"visible_units": None}}
        for split in ("train", "test"):
            ds = load_dataset(name, split)
            feats[split] = (ds.images.reshape(len(ds.images), -1).numpy().astype(np.float32) / 255.0, ds.labels.numpy())
    else:
        dbn, info = load_model(checkpoint)
        dbn.eval()
        n_v, opts = dbn.specs[0].visible_units.n, EvalOptions(svm=True)
        for split in ("train", "test"):
            ds, name = _data(info, opts, split, None)
            feats[split] = (extract_features(dbn, ds.images, visible_units_n=n_v, batch_size=512, device="cpu"), ds.labels.numpy())
    (x, y), (tx, ty) = feats["train"], feats["test"]
    fx, vx, fy, vy = validation_split(x, y)  # the Table 1 protocol's split
    start = time.perf_counter()
    standardise = args.scaling == "standard"
    scale = 1.0 / (fx.shape[1] * (StandardScaler().fit_transform(fx) if standardise else fx).var())  # scikit-learn's 'scale' γ
    grid = [(g, c) for g in sorted(float(v) for v in args.gamma_factor.split(","))
            for c in sorted(float(v) for v in args.C.split(","))]
    fitted = Parallel(n_jobs=args.jobs)(delayed(fit_one)(fx, fy, vx, vy, c, g * scale, args.cache_mb, standardise) for g, c in grid)
    models = [m for m, _ in fitted]
    scan = [{"gamma_factor": g, **r} for (g, _), (_, r) in zip(grid, fitted)]
    for r in scan:
        print(json.dumps(r), flush=True)
    best = min(range(len(scan)), key=lambda i: scan[i]["val_error_percent"])  # ties: the first (smallest γ, then C)
    chosen = models[best]
    chosen[-1].decision_function_shape = "ovo"
    arrays = {"val_dec": chosen.decision_function(vx), "test_dec": chosen.decision_function(tx), "val_y": vy, "test_y": ty}
    test_err = 100.0 * float((ovo_vote(arrays["test_dec"], len(chosen.classes_)) != ty).mean())  # = predict's error
    cfg = info["config"]
    row = {"checkpoint": source, "dataset": name, "units_N": cfg.get("visible_units"),
           "epoch": int(info.get("epoch", 0)), "scaling": args.scaling, "C": scan[best]["C"], "gamma_factor": scan[best]["gamma_factor"], "fit": len(fy), "features": int(x.shape[1]),
           "val_error_percent": scan[best]["val_error_percent"], "svm_error_percent": round(test_err, 3),
           "n_support": scan[best]["n_support"], "scan": scan, "seconds": round(time.perf_counter() - start, 1),
           "command": command_line(), "date": str(date.today())}
    np.savez(cache, row=np.array(json.dumps(row)), **arrays)
    return row, arrays, True


def ensemble_row(members: list[tuple[dict, dict]], checkpoints: list[Path], command: str) -> dict:
    """Several DBNs' RBF SVMs voting together: their one-vs-one decision values summed, then
    the libsvm vote (`ovo_vote` of rbmcli/eval/svm.py); error on validation and test for the whole ensemble."""
    (first, a0), n_cls = members[0], int(members[0][1]["test_y"].max()) + 1
    for _, a in members[1:]:
        if not (np.array_equal(a["val_y"], a0["val_y"]) and np.array_equal(a["test_y"], a0["test_y"])):
            raise SystemExit("ensemble members were not scored on the same validation and test images")

    def err(part: str) -> float:
        votes = ovo_vote(sum(a[f"{part}_dec"] for _, a in members), n_cls)
        return round(100.0 * float((votes != a0[f"{part}_y"]).mean()), 3)

    return {"checkpoints": [str(c) for c in checkpoints], "dataset": first["dataset"], "units_N": first["units_N"],
            "epoch": max(r["epoch"] for r, _ in members),
            "members": [{k: r[k] for k in ("checkpoint", "epoch", "C", "gamma_factor", "val_error_percent",
                                           "svm_error_percent", "n_support", "seconds")} for r, _ in members],
            "val_error_percent": err("val"), "svm_error_percent": err("test"), "fit": first["fit"],
            "features": first["features"], "seconds": round(sum(r["seconds"] for r, _ in members), 1),
            "command": command, "date": str(date.today())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoints", type=Path, nargs="+",
                    help="one checkpoint, or several (an ensemble: their SVMs' decision values are summed); "
                         "pixels:DATASET for the raw-pixel peer (pixels / 255, standardised)")
    ap.add_argument("--C", required=True, help="comma-separated C values, chosen among on validation")
    ap.add_argument("--cache-mb", type=float, default=4000.0, help="libsvm kernel cache")
    ap.add_argument("--gamma-factor", default="1",
                    help="comma-separated; γ = factor × scikit-learn's 'scale' γ, 1/(D·var) of the standardised fit features")
    ap.add_argument("--jobs", type=int, default=1, help="fits run at once (libsvm uses one core each)")
    ap.add_argument("--scaling", choices=("standard", "none"), default="standard",
                    help="standard: every feature to zero mean, unit variance (the Table 1 protocol); "
                         "none: the features as they are (pixels / 255, f(x)), γ = 1/(D·var) over all of them")
    add_record_option(ap)
    args = ap.parse_args()
    members = []
    for checkpoint in args.checkpoints:
        row, arrays, fresh = member(checkpoint, args)
        members.append((row, arrays))
        print(json.dumps(row), flush=True)
        if fresh:
            append_rows("rbf_full", [row], args.record)
            if row["checkpoint"].startswith("pixels:"):
                append_rows("peers", [{"model": f"raw pixels + RBF SVM ({'standardised' if args.scaling == 'standard' else 'unscaled, pixels / 255'})", "svm_error_percent": row["svm_error_percent"],
                                       "C": row["C"], "seconds": row["seconds"], "dataset": row["dataset"],
                                       "n_train": row["fit"], "n_test": 10_000, "date": row["date"],
                                       "svm_protocol": protocol(row), "command": row["command"]}], args.record)
                continue
            t1 = table1_row(row, checkpoint)
            if t1 is not None:
                append_rows("table1", [t1], args.record)
    if len(members) > 1:
        row = ensemble_row(members, args.checkpoints, command_line())
        print(json.dumps(row), flush=True)
        append_rows("rbf_ensemble", [row], args.record)
        append_rows("table1", [ensemble_table1_row(row)], args.record)


if __name__ == "__main__":
    main()
