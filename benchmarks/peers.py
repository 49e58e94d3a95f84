"""Peers in the Table 1 protocol, same splits: a raw-pixel SVM and scikit-learn's BernoulliRBM.

    python benchmarks/peers.py --dataset mnist [--rbm-epochs 10] [--limit-train N]

Both use rbmcli's SVM protocol (`rbmcli.svm.svm_error`: standardised linear SVM, C chosen on
a validation split of the training set). Rows go to benchmarks/results/peers.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from rbmcli.data import load_dataset
from rbmcli.svm import svm_error

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--rbm-epochs", type=int, default=10)
    ap.add_argument("--limit-train", type=int, default=None)
    args = ap.parse_args()
    tr = load_dataset(args.dataset, "train", limit=args.limit_train)
    te = load_dataset(args.dataset, "test")
    xtr = tr.images.flatten(1).numpy().astype(np.float32) / 255
    xte = te.images.flatten(1).numpy().astype(np.float32) / 255
    ytr, yte = tr.labels.numpy(), te.labels.numpy()
    rows = []
    r = svm_error(xtr, ytr, xte, yte)
    rows.append({"model": "raw pixels + linear SVM", "svm_error_percent": round(r.test_error_percent, 3),
                 "C": r.best_c, "seconds": round(r.seconds, 1)})
    from sklearn.neural_network import BernoulliRBM

    t0 = time.time()
    rbm = BernoulliRBM(n_components=500, batch_size=128, n_iter=args.rbm_epochs, learning_rate=0.05,
                       random_state=0).fit(xtr)
    fit_s = time.time() - t0
    r = svm_error(rbm.transform(xtr), ytr, rbm.transform(xte), yte)
    rows.append({"model": f"sklearn BernoulliRBM 500 hidden, {args.rbm_epochs} epochs (PCD-1, lr 0.05) + linear SVM",
                 "svm_error_percent": round(r.test_error_percent, 3), "C": r.best_c,
                 "seconds": round(r.seconds + fit_s, 1), "rbm_fit_seconds": round(fit_s, 1)})
    for row in rows:
        row.update(dataset=args.dataset, n_train=len(xtr), n_test=len(xte), date=str(date.today()),
                   command=" ".join(["python"] + sys.argv))
    print(json.dumps(rows, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "peers.json"
    table = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(table + rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
