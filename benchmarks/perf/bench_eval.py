"""Seconds for the evaluation protocols at the paper's sizes, on this machine.

AIS: a 784-500 binary RBM (physical weights ~ N(0, 0.01²)), 100 runs, S&M's 14,501 betas.
The cost per annealing step does not depend on β, so when the full schedule would take more
than --ais-budget seconds, a shorter schedule is timed and the figure extrapolated (printed so).
SVM: the Table 1 protocol (4 values of C on a 90 % split, then a refit) on synthetic 10-class
"mean activity" features n × 500; timed on --svm-n rows and extrapolated linearly to 60k
(liblinear's cost grows about linearly in n; said so in the output).

    python benchmarks/perf/bench_eval.py [--device cpu] [--ais-budget 180] [--svm-n 20000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rbmcli.eval.ais import ais_log_partition, default_betas
from rbmcli.model.rbm import RBM, LayerSpec
from rbmcli.eval.svm import svm_error
from rbmcli.model.units import Units


def bench_ais(device: str, budget: float) -> None:
    g = torch.Generator().manual_seed(0)
    rbm = RBM(LayerSpec(kind="dense", visible_shape=(784,), hidden=500, visible_units=Units.make(1), hidden_units=Units.make(1)), init_std=0.01, generator=g)
    base = torch.zeros(784)
    full = len(default_betas())
    pilot = ais_log_partition(rbm, base, 100, betas=torch.linspace(0, 1, 201), generator=torch.Generator(device).manual_seed(0), device=device)
    per_step = pilot.seconds / 200
    print(f"AIS 784-500, 100 runs: {per_step * 1e3:.2f} ms per annealing step ({device}, pilot of 200 steps)")
    if per_step * full <= budget:
        res = ais_log_partition(rbm, base, 100, betas=None, generator=torch.Generator(device).manual_seed(1), device=device)
        print(f"AIS full schedule ({full} betas): {res.seconds:.1f} s measured, log Z = {res.log_z:.3f} "
              f"[{res.log_z_low:.3f}, {res.log_z_high:.3f}]")
        return
    steps = max(200, int(budget / per_step / 2))
    res = ais_log_partition(rbm, base, 100, betas=torch.linspace(0, 1, steps + 1), generator=torch.Generator(device).manual_seed(1), device=device)
    print(f"AIS full schedule ({full} betas): ≈ {res.seconds / steps * (full - 1):.0f} s EXTRAPOLATED "
          f"from {steps} steps in {res.seconds:.1f} s")


def synthetic_features(n: int, means: np.ndarray, rng: np.random.Generator):
    """Sigmoid activities of class means (classes, d) plus unit noise, (n, d) float32."""
    y = rng.integers(0, len(means), n)
    x = 1 / (1 + np.exp(-(means[y] + rng.normal(size=(n, means.shape[1])))))
    return x.astype(np.float32), y


def bench_svm(n: int) -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(scale=0.1, size=(10, 500))  # weak per-feature signal: C matters
    xtr, ytr = synthetic_features(n, means, rng)
    xte, yte = synthetic_features(10000, means, rng)
    res = svm_error(xtr, ytr, xte, yte)
    note = "measured" if n >= 60000 else f"≈ {res.seconds * 60000 / n:.0f} s EXTRAPOLATED linearly to 60k"
    print(f"Linear SVM, {n} × 500, 10 classes, C grid (0.01, 0.1, 1, 10): {res.seconds:.1f} s "
          f"(test error {res.test_error_percent:.2f} %, C = {res.best_c}); 60k: {note}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--ais-budget", type=float, default=180.0, help="seconds allowed for the full AIS run")
    p.add_argument("--svm-n", type=int, default=20000, help="training rows for the SVM timing")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default); on a busy "
                   "machine 1 thread is faster than 2 that wait for each other")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    start = time.perf_counter()
    bench_ais(args.device, args.ais_budget)
    bench_svm(args.svm_n)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
