"""`rbm train` against scikit-learn's BernoulliRBM, whole processes, side by side in one run.

    python benchmarks/perf/bench_vs_sklearn.py [--epochs 3] [--repeats 2]

The same model and data: a binary 784–500 RBM on the 60,000 MNIST training images, batch
128, as `rbm train --arch dense:500 --visible-units 1 --hidden-units 1 --epochs E` (everything
an epoch of the CLI does included: the sample grid, plots, metrics, checkpoints) and as
`BernoulliRBM(n_components=500, batch_size=128, n_iter=E)` on the same images read by the same
loader, as float64 (`X / 255.0`, its documented use) and as float32. Each figure is the
whole process's wall time divided by E, the runs interleaved; the ratio is sklearn's over rbmcli's.
Beside them, the floor: an epoch of the step's five matrix products alone, in float32 and
float64, and how many times faster than scikit-learn's whole process that floor is, which
bounds any implementation's margin.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

SKLEARN = """
import sys
import numpy as np
from sklearn.neural_network import BernoulliRBM
from rbmcli.data.datasets import load_dataset
x = load_dataset("mnist", "train").images.reshape(60000, -1).numpy()
x = x / 255.0 if sys.argv[2] == "float64" else x.astype(np.float32) / 255
BernoulliRBM(n_components=500, batch_size=128, n_iter=int(sys.argv[1]), random_state=0).fit(x)
"""


FLOOR = """
import sys, time, torch
dtype = getattr(torch, sys.argv[1])
g = torch.Generator().manual_seed(0)
v, w, h = (torch.rand(*s, generator=g, dtype=dtype) for s in ((128, 784), (784, 500), (128, 500)))
products = [lambda: v @ w, lambda: v @ w, lambda: h @ w.T, lambda: v.T @ h, lambda: v.T @ h]
for f in products * 20:
    f()
start = time.perf_counter()
for _ in range(100):
    for f in products:
        f()
print((time.perf_counter() - start) / 100 * (60000 // 128))
"""


def product_floor(dtype: str) -> float:
    """Seconds an epoch of the five 128×784×500 products of a step takes alone (two up, one
    down, two weight gradients; 468 steps), in a fresh process at the same threads: no
    implementation of this step can be faster per epoch."""
    out = subprocess.run([sys.executable, "-c", FLOOR, dtype], check=True, capture_output=True, text=True)
    return float(out.stdout)


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    e = args.epochs
    times: dict[str, list[float]] = {"rbmcli": [], "sklearn float64": [], "sklearn float32": []}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            times["rbmcli"].append(wall([sys.executable, "-m", "rbmcli", "train", "--arch", "dense:500", "--visible-units", "1",
                                         "--hidden-units", "1", "--epochs", str(e), "--device", "cpu", "-q",
                                         "--out", f"{tmp}/run"]) / e)
        for dtype in ("float64", "float32"):
            times[f"sklearn {dtype}"].append(wall([sys.executable, "-c", SKLEARN, str(e), dtype]) / e)
    floors = {dtype: product_floor(dtype) for dtype in ("float32", "float64")}
    ours = statistics.median(times["rbmcli"])
    print(f"whole process per epoch, {e} epochs, median of {args.repeats} (min–max):")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"  {name:16s} {m:6.2f} s/epoch ({min(values):.2f}–{max(values):.2f})  sklearn/rbmcli {m / ours:.2f}×")
    print("the step's five matrix products alone, per epoch (no implementation is faster):")
    for dtype, floor in floors.items():
        sk = statistics.median(times[f"sklearn {dtype}"])
        print(f"  {dtype:16s} {floor:6.2f} s/epoch  sklearn {dtype} whole process / this: {sk / floor:.2f}×")


if __name__ == "__main__":
    main()
