"""Where do a model's Gibbs chains settle? The class histogram along long chains, from noise
and from the persistent chains the model was trained with.

    python benchmarks/experiments/chain_drift.py runs/default/model.safetensors --n 500

For a single-layer MNIST model trained on persistent chains (pcd: its `model.state.safetensors`
holds them): the histogram of the saved training chains as they were, then of the same chains
run on with the final weights (no learning) and of `--n` chains from noise (as `rbm sample`
starts them), read at each of `--at` Gibbs steps by generation.py's classifier (logistic
regression on pixels). Rows go to benchmarks/results/chain_drift.json with --record.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # generation.py's classifier
from rows import add_record_option, append_rows, command_line  # noqa: E402
from generation import classifier  # noqa: E402

from rbmcli.errors import RbmError
from rbmcli.model.sampling import gibbs_chain, top_chain_start
from rbmcli.train.checkpoint import load_model, read_safetensors, state_path


def histogram(v: torch.Tensor, n_v: int) -> list[int]:
    """Class counts of the visible states v (n, 784) in 0..n_v."""
    return np.bincount(classifier("mnist").predict((v.double() / n_v).numpy()), minlength=10).tolist()


def drift(rbm, v: torch.Tensor, marks: list[int], g: torch.Generator) -> list[dict]:
    """Histograms of the chains v after each number of steps in marks (ascending)."""
    rows, done = [], 0
    for m in marks:
        v = gibbs_chain(rbm, v, m - done, g)
        done = m
        h = histogram(v, rbm.spec.visible_units.n)
        rows.append({"steps": m, "class_histogram": h, "largest_class_share": round(max(h) / sum(h), 3)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=500, help="chains from noise")
    ap.add_argument("--at", type=int, nargs="+", default=[1000, 3000, 10000], help="steps at which to read")
    ap.add_argument("--seed", type=int, default=0)
    add_record_option(ap)
    args = ap.parse_args()
    dbn, info = load_model(args.checkpoint)
    if len(dbn.layers) != 1 or info["config"].get("dataset") != "mnist":
        raise RbmError("chain_drift.py reads single-layer MNIST models")
    rbm, marks = dbn.layers[0], sorted(args.at)
    tensors, _ = read_safetensors(state_path(Path(args.checkpoint)))
    if "chains.0" not in tensors:
        raise RbmError("the state file holds no persistent chains (train with --negatives pcd)")
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    with torch.inference_mode():
        chains = tensors["chains.0"].float()
        start = {"steps": 0, "class_histogram": histogram(chains, rbm.spec.visible_units.n)}
        start["largest_class_share"] = round(max(start["class_histogram"]) / len(chains), 3)
        print(start)
        from_training = [start] + drift(rbm, chains, marks, g)
        from_noise = drift(rbm, top_chain_start(dbn, args.n, g), marks, g)
    row = {"checkpoint": args.checkpoint, "training_chains": len(chains), "from_training_chains": from_training,
           "noise_chains": args.n, "from_noise": from_noise, "seed": args.seed, "seconds": round(time.time() - t0, 1),
           "threads": torch.get_num_threads(), "date": str(date.today()), "command": command_line()}
    append_rows("chain_drift", [row], args.record)


if __name__ == "__main__":
    main()
