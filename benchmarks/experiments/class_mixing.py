"""Do the top RBM's chains move between classes? Class changes along each chain, Gibbs against PT.

    python benchmarks/experiments/class_mixing.py runs/default/model.safetensors --sampler gibbs pt

64 chains from noise (seed 0), `--steps` steps in the top RBM; every `--every` steps each
chain's image (the β = 1 chain under pt) is read by generation.py's classifier. Per sampler:
the mean number of class changes per chain between consecutive readings, the mean number of
distinct classes a chain visits, and the swap acceptance (pt). Chains that change class often
sample the model's class proportions; if they do under Gibbs too, a skewed class histogram is
the model's, not the sampler's. Rows go to benchmarks/results/class_mixing.json.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))  # generation.py's classifier
from rows import add_record_option, append_rows, command_line  # noqa: E402
from generation import classifier  # noqa: E402

from rbmcli.model.sampling import generate
from rbmcli.generate.samples import model_steps
from rbmcli.model.tempering import DEFAULT_BETA_MIN, DEFAULT_TEMPERATURES, SwapCounts
from rbmcli.train.checkpoint import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--sampler", nargs="+", default=["gibbs", "pt"], choices=["gibbs", "pt"])
    ap.add_argument("--steps", type=int, default=None, help="Gibbs steps per sample (default: the model's, 1000 or the k of --negatives noise)")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--temperatures", type=int, default=DEFAULT_TEMPERATURES)
    ap.add_argument("--beta-min", type=float, default=DEFAULT_BETA_MIN)
    add_record_option(ap)
    args = ap.parse_args()
    dbn, info = load_model(args.checkpoint)
    cfg, n_v = info["config"], dbn.specs[0].visible_units.n
    args.steps = model_steps(info) if args.steps is None else args.steps
    model = classifier(cfg["dataset"])
    rows = []
    for sampler in args.sampler:
        counts, t0 = SwapCounts.zeros(args.temperatures), time.time()
        with torch.inference_mode():
            _, frames = generate(dbn, 64, args.steps, torch.Generator().manual_seed(0), every=args.every,
                                 sampler=sampler, temperatures=args.temperatures, beta_min=args.beta_min, counts=counts)
        labels = torch.from_numpy(np.stack([model.predict((f.reshape(64, -1) / n_v).clamp(0, 1).double().numpy())
                                             for f in frames]))  # (readings, 64)
        changes = (labels[1:] != labels[:-1]).sum(0).double()  # (64,)
        visited = torch.tensor([len(set(labels[:, c].tolist())) for c in range(64)]).double()
        rows.append({"checkpoint": args.checkpoint, "dataset": cfg["dataset"], "arch": cfg["arch"],
                     "negatives": cfg["negatives"], "epochs": cfg["epochs"], "sampler": sampler, "steps": args.steps,
                     "every": args.every, "class_changes_per_chain": round(float(changes.mean()), 2),
                     "classes_visited_per_chain": round(float(visited.mean()), 2),
                     **({"temperatures": args.temperatures, "beta_min": args.beta_min,
                         "swap_acceptance": [round(r, 3) for r in counts.rates()]} if sampler == "pt" else {}),
                     "seconds": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
                     "date": str(date.today()), "command": command_line()})
        print(json.dumps(rows[-1]))
    append_rows("class_mixing", rows, args.record)


if __name__ == "__main__":
    main()
