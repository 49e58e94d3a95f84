"""scikit-learn's example "Restricted Boltzmann Machine features for digit classification",
run with sklearn.neural_network.BernoulliRBM and rbmcli.BernoulliRBM side by side, then
rbmcli.RBM with 0..255 pixel units on MNIST in the same kind of pipeline.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/experiments/sklearn_pipeline.py [--seeds 10] [--adam-seeds 3] [--mnist-limit N] [--record]

Digits: the example's data (8×8 digits, nudged by one pixel in four directions, min-max scaled
to [0, 1], an 80/20 split with random_state 0) and its hyperparameters (RBM learning_rate 0.06,
n_iter 10, n_components 100; LogisticRegression C 6000 on the RBM features, max_iter 1000;
raw pixels C 100). Each implementation is fit with random_state 0..seeds−1 (Adam: the
first adam-seeds), interleaved so that a load change on the shared machine hits all alike; the
rows hold the macro F1 of the classification report and the RBM's fit time for each seed, their
means, and per seed against scikit-learn's fit: the F1 difference and the fit-time ratio. MNIST: rbmcli.RBM(256, visible_units=255) on the uint8 images (its default recipe,
10 epochs), then LogisticRegression on its features; and raw pixels for reference.
One thread (torch.set_num_threads(1)). With --record the rows are appended to
benchmarks/results/sklearn.json; without, only printed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import convolve
from sklearn import datasets
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import minmax_scale

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

import rbmcli  # noqa: E402

MACHINE = f"2-core x86-64 CPU ({platform.processor() or platform.machine()}), 1 thread"


def nudge_dataset(X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The example's augmentation: each 8×8 image also shifted by one pixel left, right, up and
    down (5× the data)."""
    directions = [[[0, 1, 0], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
                  [[0, 0, 0], [0, 0, 1], [0, 0, 0]], [[0, 0, 0], [0, 0, 0], [0, 1, 0]]]

    def shift(x, w):
        return convolve(x.reshape((8, 8)), mode="constant", weights=w).ravel()

    X = np.concatenate([X] + [np.apply_along_axis(shift, 1, X, d) for d in directions])
    return X, np.concatenate([Y for _ in range(5)], axis=0)


def digits_split():
    X, y = datasets.load_digits(return_X_y=True)
    X, Y = nudge_dataset(np.asarray(X, "float32"), y)
    X = minmax_scale(X, feature_range=(0, 1))
    return train_test_split(X, Y, test_size=0.2, random_state=0)


def macro_f1(y_true, y_pred) -> float:
    return classification_report(y_true, y_pred, output_dict=True)["macro avg"]["f1-score"]


def run_pipeline(rbm, C: float, X_train, Y_train, X_test, Y_test) -> dict:
    """Pipeline(rbm, LogisticRegression(C)): fit, then macro F1 on the test split. The RBM's own
    fit time is measured by fitting it first (the pipeline then fits the logistic regression)."""
    logistic = LogisticRegression(C=C, max_iter=1000)
    t0 = time.perf_counter()
    rbm.fit(X_train)
    rbm_seconds = time.perf_counter() - t0
    pipe = Pipeline([("rbm", rbm), ("logistic", logistic)])
    pipe.named_steps["logistic"].fit(rbm.transform(X_train), Y_train)
    total = time.perf_counter() - t0
    return {"macro_f1": round(macro_f1(Y_test, pipe.predict(X_test)), 4), "rbm_fit_seconds": round(rbm_seconds, 3),
            "pipeline_fit_seconds": round(total, 3)}


def summary(model: str, runs: list[dict], **extra) -> dict:
    f1 = [r["macro_f1"] for r in runs]
    secs = [r["rbm_fit_seconds"] for r in runs]
    return {"model": model, "macro_f1_mean": round(statistics.mean(f1), 4),
            "macro_f1_std": round(statistics.stdev(f1), 4) if len(f1) > 1 else 0.0,
            "rbm_fit_seconds_mean": round(statistics.mean(secs), 3), "runs": runs, **extra}


def paired(reference: list[dict], ours: list[dict]) -> dict:
    """Per seed, ours against the reference fit just before it: the F1 difference (mean and its
    standard error) and the fit-time ratio (median: robust to a load spike on a shared machine)."""
    diff = [o["macro_f1"] - r["macro_f1"] for r, o in zip(reference, ours)]
    ratio = [r["rbm_fit_seconds"] / o["rbm_fit_seconds"] for r, o in zip(reference, ours)]
    se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else 0.0
    return {"macro_f1_minus_sklearn_mean": round(statistics.mean(diff), 4), "macro_f1_minus_sklearn_se": round(se, 4),
            "speedup_vs_sklearn_median": round(statistics.median(ratio), 2), "paired_seeds": len(diff)}


def digits_rows(seeds: int, adam_seeds: int) -> list[dict]:
    X_train, X_test, Y_train, Y_test = digits_split()
    example = dict(learning_rate=0.06, n_iter=10, n_components=100)
    makers = {
        "sklearn.neural_network.BernoulliRBM": lambda s: SklearnRBM(random_state=s, **example),
        "rbmcli.BernoulliRBM (solver sgd, the default)": lambda s: rbmcli.BernoulliRBM(random_state=s, **example),
        "rbmcli.BernoulliRBM (solver adam, learning_rate 0.003)": lambda s: rbmcli.BernoulliRBM(
            random_state=s, solver="adam", **{**example, "learning_rate": 0.003}),
    }
    runs = {name: [] for name in makers}
    for seed in range(seeds):  # interleaved: a load change hits every implementation alike
        for name, make in makers.items():
            if "adam" in name and seed >= adam_seeds:
                continue
            r = run_pipeline(make(seed), 6000.0, X_train, Y_train, X_test, Y_test)
            runs[name].append({"random_state": seed, **r})
            print(name, runs[name][-1], flush=True)
    raw = LogisticRegression(C=100.0, max_iter=1000).fit(X_train, Y_train)
    reference = runs["sklearn.neural_network.BernoulliRBM"]
    rows = [summary(name, r, rbm="learning_rate 0.06, n_iter 10, n_components 100, batch_size 10"
                    if "adam" not in name else "learning_rate 0.003 (Adam), n_iter 10, n_components 100, batch_size 10",
                    classifier="LogisticRegression(C=6000, max_iter=1000)",
                    **({} if r is reference else paired(reference, r))) for name, r in runs.items() if r]
    rows.append({"model": "raw pixels", "macro_f1_mean": round(macro_f1(Y_test, raw.predict(X_test)), 4),
                 "classifier": "LogisticRegression(C=100, max_iter=1000)"})
    for row in rows:
        row.update(dataset="8x8 digits, nudged (sklearn example)", n_train=len(X_train), n_test=len(X_test))
    return rows


def mnist_rows(limit: int | None) -> list[dict]:
    from rbmcli.data.datasets import load_dataset

    tr, te = load_dataset("mnist", "train", limit=limit), load_dataset("mnist", "test")
    Xtr, ytr, Xte, yte = tr.images.numpy(), tr.labels.numpy(), te.images.numpy(), te.labels.numpy()
    rbm = rbmcli.RBM(256, visible_units=255, random_state=0)
    r = run_pipeline(rbm, 1.0, Xtr, ytr, Xte, yte)
    print("rbmcli.RBM", r, flush=True)
    row = {"model": "rbmcli.RBM(256, visible_units=255): pixels 0..255, binary hidden units", **r,
           "rbm": f"recipe {rbm.recipe} ({rbm.config_.negatives}, Adam lr {rbm.config_.lr}, {rbm.config_.epochs} epochs, "
                  f"batch {rbm.config_.batch_size})", "classifier": "LogisticRegression(C=1, max_iter=1000)"}
    t0 = time.perf_counter()
    raw = clone(LogisticRegression(C=1.0, max_iter=1000)).fit(Xtr.reshape(len(Xtr), -1) / 255.0, ytr)
    raw_row = {"model": "raw pixels / 255", "classifier": "LogisticRegression(C=1, max_iter=1000)",
               "macro_f1": round(macro_f1(yte, raw.predict(Xte.reshape(len(Xte), -1) / 255.0)), 4),
               "pipeline_fit_seconds": round(time.perf_counter() - t0, 3)}
    for row_ in (row, raw_row):
        row_.update(dataset="mnist", n_train=len(Xtr), n_test=len(Xte))
    return [row, raw_row]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10, help="random_state 0..seeds-1 for each digits RBM")
    ap.add_argument("--adam-seeds", type=int, default=3, help="the first seeds also fit with solver adam (slow)")
    ap.add_argument("--mnist-limit", type=int, default=None, help="first N MNIST training images (default all)")
    ap.add_argument("--no-mnist", action="store_true")
    add_record_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = digits_rows(args.seeds, args.adam_seeds) + ([] if args.no_mnist else mnist_rows(args.mnist_limit))
    for row in rows:
        row.update(machine=MACHINE, date=str(date.today()), command=command_line(),
                   versions=f"scikit-learn {__import__('sklearn').__version__}, torch {torch.__version__}")
    print(json.dumps(rows, indent=2))
    append_rows("sklearn", rows, args.record)


if __name__ == "__main__":
    main()
