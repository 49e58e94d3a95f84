"""Peers in the Table 1 protocol, same splits: a raw-pixel SVM and scikit-learn's BernoulliRBM.

    python benchmarks/experiments/peers.py --dataset mnist [--rbm-epochs 10] [--limit-train N] [--no-loglik]

Both use rbmcli's SVM protocol (`svm_error` of rbmcli/eval/svm.py: standardised linear SVM, C chosen on
a validation split of the training set). With --loglik (MNIST) a second BernoulliRBM is fit on
binarised MNIST (`--binarize sample`, seed 0, as benchmarks/experiments/loglik.py) and its AIS test
log-likelihood is measured by rbmcli's AIS after mapping its parameters into an rbmcli RBM
(the mapping is checked: free energies agree with sklearn's to 1e-4); its samples (1000 Gibbs
steps from noise, as sklearn's `gibbs`) go to peers-sklearn-samples.png in docs/img/ (with
--record; else runs/bench-img/). With --record the rows are appended to
benchmarks/results/peers.json and benchmarks/results/loglik.json (else printed only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line, figure_dir  # noqa: E402

from rbmcli.data.batches import binarize
from rbmcli.train.config import TrainConfig
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.svm import svm_error
from rbmcli.train.trainer import build_dbn


def sklearn_rbm(x: np.ndarray, epochs: int):
    from sklearn.neural_network import BernoulliRBM

    return BernoulliRBM(n_components=500, batch_size=128, n_iter=epochs, learning_rate=0.05, random_state=0).fit(x)


def as_rbmcli(skl, shape=(1, 28, 28)):
    """The sklearn RBM as an rbmcli binary dense RBM: W̃ = s·W, s = sqrt(fan_in) for N = k = 1."""
    dbn = build_dbn(TrainConfig(recipe="paper", arch="dense:500", visible_units=1, hidden_units=1), shape)
    rbm = dbn.layers[0]
    s = float(np.sqrt(skl.components_.shape[1]))
    with torch.no_grad():
        rbm.weight.copy_(torch.as_tensor(skl.components_.T * s))
        rbm.visible_bias.copy_(torch.as_tensor(skl.intercept_visible_))
        rbm.hidden_bias.copy_(torch.as_tensor(skl.intercept_hidden_))
    return rbm


def svm_rows(args) -> list[dict]:
    tr = load_dataset(args.dataset, "train", limit=args.limit_train)
    te = load_dataset(args.dataset, "test")
    xtr = tr.images.flatten(1).numpy().astype(np.float32) / 255
    xte = te.images.flatten(1).numpy().astype(np.float32) / 255
    ytr, yte = tr.labels.numpy(), te.labels.numpy()
    rows = []
    r = svm_error(xtr, ytr, xte, yte)
    rows.append({"model": "raw pixels + linear SVM", "svm_error_percent": round(r.test_error_percent, 3),
                 "C": r.best_c, "seconds": round(r.seconds, 1)})
    t0 = time.time()
    rbm = sklearn_rbm(xtr, args.rbm_epochs)
    fit_s = time.time() - t0
    r = svm_error(rbm.transform(xtr), ytr, rbm.transform(xte), yte)
    rows.append({"model": f"sklearn BernoulliRBM 500 hidden, {args.rbm_epochs} epochs (PCD-1, lr 0.05) + linear SVM",
                 "svm_error_percent": round(r.test_error_percent, 3), "C": r.best_c,
                 "seconds": round(r.seconds + fit_s, 1), "rbm_fit_seconds": round(fit_s, 1)})
    for row in rows:
        row.update(dataset=args.dataset, n_train=len(xtr), n_test=len(xte), date=str(date.today()),
                   svm_protocol="L-BFGS on liblinear's objective, C in 1e-4..1 (half decades)",
                   command=command_line())
    return rows


def loglik_row(args) -> dict:
    from rbmcli.eval.ais import ais_log_likelihood, base_rate_biases
    from rbmcli.data.images import save_png

    xtr = binarize(load_dataset("mnist", "train").images, "sample", 0).flatten(1).numpy().astype(np.float32) / 255
    xte = binarize(load_dataset("mnist", "test").images, "sample", 0).flatten(1).double() / 255
    t0 = time.time()
    skl = sklearn_rbm(xtr, args.rbm_epochs)
    fit_s = time.time() - t0
    rbm = as_rbmcli(skl)
    ours = -rbm.free_energy(xte[:50].float(), exact=True).double()
    np.testing.assert_allclose(ours.detach().numpy(), -skl._free_energy(xte[:50].numpy()), rtol=1e-4)
    t0 = time.time()
    r = ais_log_likelihood(rbm, xte, base_rate_biases(torch.as_tensor(xtr).double()), n_runs=100,
                           generator=torch.Generator().manual_seed(0))
    v = (np.random.default_rng(0).random((64, 784)) < 0.5).astype(np.float64)
    for _ in range(1000):
        v = skl.gibbs(v)
    save_png(torch.as_tensor(v, dtype=torch.float32).reshape(64, 1, 28, 28),
             figure_dir(args.record) / "peers-sklearn-samples.png", 8)
    return {"model": "sklearn BernoulliRBM 784-500", "negatives": f"sklearn PCD-1, lr 0.05, {args.rbm_epochs} epochs",
            "epochs": args.rbm_epochs, "test_log_likelihood_nats": r["mean_log_likelihood"], "lr": 0.05, "low": r["low"],
            "high": r["high"], "log_z": r["log_z"], "binarize": "sample (seed 0)", "train_seconds": round(fit_s, 1),
            "ais_seconds": round(time.time() - t0, 1), "date": str(date.today()),
            "command": command_line()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--rbm-epochs", type=int, default=10)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--no-svm", action="store_true")
    ap.add_argument("--no-loglik", action="store_true")
    add_record_option(ap)
    args = ap.parse_args()
    if not args.no_loglik and args.dataset == "mnist":
        row = loglik_row(args)
        print(json.dumps(row, indent=2), flush=True)
        append_rows("loglik", [row], args.record)
    if not args.no_svm:
        rows = svm_rows(args)
        print(json.dumps(rows, indent=2), flush=True)
        append_rows("peers", rows, args.record)


if __name__ == "__main__":
    main()
