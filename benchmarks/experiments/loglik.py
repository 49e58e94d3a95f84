"""Generative quality: AIS test log-likelihood of a binary 784-500 RBM on binarised MNIST.

    python benchmarks/experiments/loglik.py --negatives meanfield --epochs 10
    python benchmarks/experiments/loglik.py --negatives pcd --epochs 10

MNIST is stochastically binarised once (each pixel ~ Bernoulli(intensity), fixed by the
seed: `--binarize sample`), the RBM is trained with the paper's loss and the chosen negatives,
and the mean test log-likelihood is estimated with AIS (Salakhutdinov & Murray 2008: base-rate
model from the smoothed training marginals, 14,500 inverse temperatures, 100 runs, ±3σ).
With --record, rows go to benchmarks/results/loglik.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.train.config import TrainConfig
from rbmcli.eval.evaluate import EvalOptions, evaluate
from rbmcli.train.trainer import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--negatives", default="meanfield")
    ap.add_argument("--gibbs-steps", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--lr-decay", default=TrainConfig.lr_decay)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--ais-betas", type=int, default=14_501)
    ap.add_argument("--ais-runs", type=int, default=100)
    add_record_option(ap)
    args = ap.parse_args()
    cfg = TrainConfig(recipe="paper", visible_bias_init="zero", arch=f"dense:{args.hidden}", visible_units=1, hidden_units=1, binarize="sample",
                      negatives=args.negatives, gibbs_steps=args.gibbs_steps, epochs=args.epochs, lr=args.lr, lr_decay=args.lr_decay,
                      device="cpu", sample_steps=500)
    out = Path("runs") / f"loglik-{args.negatives}-{int(time.time())}"
    t0 = time.time()
    res = train(cfg, out)
    train_s = time.time() - t0
    _, rows = evaluate(res.checkpoint, EvalOptions(ais=True, ais_betas=args.ais_betas, ais_runs=args.ais_runs,
                                                   device="cpu"))
    r = rows[0]
    row = {"model": f"binary RBM 784-{args.hidden}", "negatives": args.negatives, "gibbs_steps": args.gibbs_steps,
           "epochs": args.epochs, "lr": args.lr, "lr_decay": args.lr_decay, "test_log_likelihood_nats": round(r.value, 2),
           "low": round(r.details["low"], 2), "high": round(r.details["high"], 2),
           "log_z": round(r.details["log_z"], 2), "method": r.details["method"],
           "ais_betas": r.details["ais_betas"], "ais_runs": args.ais_runs, "binarize": "sample (seed 0)",
           "train_seconds": round(train_s, 1), "ais_seconds": round(r.seconds, 1), "date": str(date.today()),
           "command": command_line(), "checkpoint": str(res.checkpoint)}
    print(json.dumps(row, indent=2))
    append_rows("loglik", [row], args.record)


if __name__ == "__main__":
    main()
