"""A second, tighter look at one log-likelihood: forward AIS with more runs and another seed,
and reverse AIS from the model's own samples, which errs the other way.

    python benchmarks/experiments/ais_check.py runs/loglik-pcd-1795933912/model.safetensors --runs 1000

Forward AIS underestimates log Z on average (Jensen: E[Ẑ] = Z), so its log-likelihood errs
high; reverse AIS (Burda, Grosse & Salakhutdinov 2015), started from samples of the model,
overestimates log Z, so its log-likelihood errs low. The samples come from `--chains` Gibbs
chains started at test images and run `--burn-in` steps (approximate samples: the bound is
then approximate too). With --record, rows go to benchmarks/results/loglik_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.eval.ais import (
    ais_log_partition,
    base_rate_biases,
    default_betas,
    reverse_ais_log_partition,
)
from rbmcli.data.batches import binarize, to_visible
from rbmcli.train.checkpoint import load_model
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.partition import log_likelihood
from rbmcli.model.sampling import gibbs_chain


def visible(split: str, cfg: dict) -> torch.Tensor:
    """The split's images as the model saw them in training: binarised, flattened, float64."""
    ds = load_dataset(cfg["dataset"], split, cfg.get("data_dir"))
    return to_visible(binarize(ds.images, cfg["binarize"], cfg["seed"]), 1).flatten(1).double()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--runs", type=int, default=1000, help="forward AIS runs")
    ap.add_argument("--chains", type=int, default=100, help="reverse AIS runs (model samples)")
    ap.add_argument("--burn-in", type=int, default=10_000, help="Gibbs steps before reverse AIS")
    ap.add_argument("--seed", type=int, default=1)
    add_record_option(ap)
    args = ap.parse_args()

    dbn, info = load_model(args.checkpoint)
    rbm, cfg = dbn.layers[0], info["config"]
    v_train, v_test = visible("train", cfg), visible("test", cfg)
    base_a, betas = base_rate_biases(v_train), default_betas()
    mean_neg_f = float(log_likelihood(rbm, v_test, 0.0).mean())
    g = torch.Generator().manual_seed(args.seed)

    t0 = time.time()
    fwd = ais_log_partition(rbm, base_a, args.runs, betas=betas, generator=g)
    fwd_s = time.time() - t0
    t0 = time.time()
    start = v_test[torch.randperm(len(v_test), generator=g)[:args.chains]]
    samples = gibbs_chain(rbm, start.float(), args.burn_in, g).double()
    rev = reverse_ais_log_partition(rbm, base_a, samples, betas=betas, generator=g)
    rev_s = time.time() - t0

    def ll(log_z: float) -> float:
        return round(mean_neg_f - log_z, 2)

    row = {"checkpoint": args.checkpoint, "epochs": cfg["epochs"], "lr": cfg["lr"], "lr_decay": cfg["lr_decay"],
           "negatives": cfg["negatives"], "betas": len(betas),
           "forward": {"runs": args.runs, "seed": args.seed, "log_z": round(fwd.log_z, 2),
                       "test_log_likelihood_nats": ll(fwd.log_z),
                       "interval_3sigma": [ll(fwd.log_z_high), ll(fwd.log_z_low)], "seconds": round(fwd_s, 1)},
           "reverse": {"runs": args.chains, "burn_in_gibbs_steps": args.burn_in, "log_z": round(rev.log_z, 2),
                       "test_log_likelihood_nats": ll(rev.log_z),
                       "interval_3sigma": [ll(rev.log_z_high), ll(rev.log_z_low)], "seconds": round(rev_s, 1)},
           "threads": torch.get_num_threads(), "date": str(date.today()),
           "command": command_line()}
    print(json.dumps(row, indent=2))
    append_rows("loglik_check", [row], args.record)


if __name__ == "__main__":
    main()
