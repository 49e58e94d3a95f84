"""Training and sampling throughput against this machine's own peak, side by side in one run.

    python benchmarks/perf/bench_train.py [--epochs-fraction 1.0] [--conv-steps 3] [--write FILE.md]

Measures, in one process (so machine noise hits all rows alike):
- the float32 matmul peak (2048×2048) and the conv2d peak of the paper's first conv layer;
- a dense 784-500 binary RBM on the 60k MNIST, batch 128: seconds per epoch, achieved GFLOP/s
  (5 matmuls of B·V·H per step: up, down, up again, and the two weight-gradient products);
  eager and with --compile (torch.compile of the layer losses);
- scikit-learn's BernoulliRBM on the same data (500 hidden, batch 128, one epoch), fed float32
  (as rbmcli is) and float64 (what `X / 255.0` gives in numpy);
- the paper's conv stack at 64×64 and 128×128 (synthetic data, batch 128): images/s;
- Gibbs sampling, each in a fresh process for its own peak RSS: steps/s for 64 chains on the
  MNIST model and on the 64×64 stack (top-RBM steps, plus the one pass down to pixels).
Like the CLI, it first applies keep_freed_memory() of rbmcli/train/allocator.py (--glibc-default: not).
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from rbmcli.train.allocator import keep_freed_memory
from rbmcli.train.config import TrainConfig
from rbmcli.data.datasets import load_dataset
from rbmcli.model.sampling import generate, gibbs_step
from rbmcli.train.trainer import Trainer, build_dbn


def timed(fn, repeat: int = 3) -> float:
    """Best wall time of `repeat` calls (after one warm-up)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / timed(lambda: a @ b, 5) / 1e9


def dense_epoch(images: torch.Tensor, fraction: float, compiled: bool = False) -> tuple[float, float]:
    """Seconds per epoch and GFLOP/s of the 784-500 binary RBM (meanfield negatives)."""
    cfg = TrainConfig(recipe="paper", arch="dense:500", visible_units=1, hidden_units=1, device="cpu", keep=0, compile=compiled)
    t = Trainer(cfg, "unused", images)
    n_steps = int(len(images) // 128 * fraction)
    v_all = images.float() / 255
    for i in range(3):  # warm-up (and the compilation)
        t.train_step(v_all[i * 128:(i + 1) * 128], None)
    t0 = time.perf_counter()
    for i in range(n_steps):
        t.train_step(v_all[i * 128:(i + 1) * 128], None)
    sec = (time.perf_counter() - t0) / n_steps * (len(images) // 128)
    flops = 5 * 2 * 128 * 784 * 500 * (len(images) // 128)
    return sec, flops / sec / 1e9


def sklearn_epoch(images: torch.Tensor, fraction: float, dtype=np.float32) -> float:
    from sklearn.neural_network import BernoulliRBM

    n = int(len(images) * fraction)
    x = (images[:n].reshape(n, -1).numpy() / 255).astype(dtype)
    rbm = BernoulliRBM(n_components=500, batch_size=128, n_iter=1, learning_rate=0.05, random_state=0)
    t0 = time.perf_counter()
    rbm.fit(x)
    return (time.perf_counter() - t0) / fraction


def layer_flops(spec, batch: int) -> float:
    """Multiply-adds ×2 of one pass through a layer's connection (dense or conv)."""
    if spec.kind == "dense":
        return 2.0 * batch * spec.visible_shape[0] * spec.hidden
    return 2.0 * batch * float(torch.Size(spec.hidden_shape).numel()) * spec.visible_shape[0] * spec.kernel ** 2


def conv_stack(size: int, steps: int) -> tuple[float, float, float]:
    """The paper's stack at size×size (N = 255), batch 128: (images/s, achieved GFLOP/s,
    connection-only GFLOP/s). A joint training step makes 5 passes per layer (up, down, up
    of v′, two weight gradients) plus one input gradient for every layer above the first;
    the connection-only rate times the bare conv2d/matmul up-pass of the same stack."""
    cfg = TrainConfig(recipe="paper", arch="paper-generate", mode="joint", device="cpu", keep=0)  # the paper: summed losses, backprop
    images = torch.randint(0, 256, (128, 3, size, size), dtype=torch.uint8)
    t = Trainer(cfg, "unused", images)
    v = images.float()
    sec = timed(lambda: t.train_step(v, None), steps)
    per_pass = [layer_flops(layer.spec, 128) for layer in t.dbn.layers]
    work = 5 * sum(per_pass) + sum(per_pass[1:])

    def bare_up():
        x = v
        with torch.no_grad():
            for layer in t.dbn.layers:
                s = layer.spec
                x = (torch.nn.functional.conv2d(x, layer.weight, stride=s.stride, padding=s.padding)
                     if s.kind == "conv" else x.flatten(1) @ layer.weight)

    peak = sum(per_pass) / timed(bare_up, 2) / 1e9
    return 128 / sec, work / sec / 1e9, peak


def gibbs_rate(which: str, threads: int, tuned: bool) -> tuple[float, float]:
    """(Gibbs steps/s for 64 chains, peak RSS in MiB) of one model, run in a fresh process."""
    torch.set_num_threads(threads)
    if tuned:
        keep_freed_memory()
    g = torch.Generator().manual_seed(0)
    if which == "mnist":
        dbn = build_dbn(TrainConfig(recipe="paper", arch="dense:500", visible_units=1, hidden_units=1), (1, 28, 28))
        v = load_dataset("mnist", "train").images[:64].float().flatten(1) / 255

        def run():
            x = v
            for _ in range(200):
                x = gibbs_step(dbn.layers[0], x, g)
    else:  # the paper's stack at 64×64: chains in its top RBM, then one mean pass down
        dbn = build_dbn(TrainConfig(recipe="paper", arch="paper-generate"), (3, 64, 64))

        def run():
            generate(dbn, 64, 200, g)

    rate = 200 / timed(run, 2)
    return rate, peak_rss_mib()


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not ru_maxrss: Linux carries that across
    exec, so a spawned child would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(fn, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs-fraction", type=float, default=1.0, help="fraction of an epoch to time")
    ap.add_argument("--conv-steps", type=int, default=2)
    ap.add_argument("--write", type=Path, help="append the results to this markdown file")
    ap.add_argument("--glibc-default", action="store_true", help="keep glibc's malloc settings (the mmap trap)")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile row (≈ 30 s of compiling)")
    args = ap.parse_args()
    tuned = not args.glibc_default and keep_freed_memory()
    images = load_dataset("mnist", "train").images
    rows = []
    peak = matmul_peak()
    rows.append(("float32 matmul peak (2048²)", f"{peak:.1f} GFLOP/s"))
    sec, gf = dense_epoch(images, args.epochs_fraction)
    rows.append(("dense 784-500 RBM, epoch of 60k, batch 128", f"{sec:.2f} s/epoch, {gf:.1f} GFLOP/s = {gf / peak:.0%} of peak"))
    if not args.no_compile:
        sec_c, gf_c = dense_epoch(images, args.epochs_fraction, compiled=True)
        rows.append(("same, `--compile`", f"{sec_c:.2f} s/epoch, {gf_c:.1f} GFLOP/s = {gf_c / peak:.0%} of peak"))
        sec = min(sec, sec_c)
    sk = sklearn_epoch(images, args.epochs_fraction)
    rows.append(("scikit-learn BernoulliRBM, same epoch, float32 input", f"{sk:.2f} s/epoch; rbmcli (best above) is {sk / sec:.2f}x faster"))
    sk64 = sklearn_epoch(images, args.epochs_fraction, np.float64)
    rows.append(("scikit-learn BernoulliRBM, float64 input (`X / 255.0`)", f"{sk64:.2f} s/epoch; rbmcli is {sk64 / sec:.2f}x faster"))
    for which, label in (("mnist", "784-500"), ("stack64", "paper-generate 64x64 (top RBM + pass down)")):
        rate, rss = in_fresh_process(gibbs_rate, which, torch.get_num_threads(), tuned)
        rows.append((f"Gibbs steps/s, 64 chains, {label}", f"{rate:.0f} steps/s, peak RSS {rss:.0f} MiB"))
    for size in (64, 128):
        ips, achieved, peak_c = conv_stack(size, args.conv_steps)
        rows.append((f"paper-generate stack {size}x{size}, batch 128, joint training",
                     f"{ips:.1f} images/s, {achieved:.1f} GFLOP/s = {achieved / peak_c:.0%} of its bare conv up-pass "
                     f"({peak_c:.1f} GFLOP/s)"))
    rss = peak_rss_mib()
    rows.append(("peak RSS (training rows, this process)", f"{rss:.0f} MiB"))
    head = (f"## {date.today()} — `{' '.join(['python'] + sys.argv)}`\n\n"
            f"Machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"glibc malloc {'tuned (keep_freed_memory)' if tuned else 'default'}\n\n"
            "| measurement | result |\n|---|---|\n")
    text = head + "".join(f"| {a} | {b} |\n" for a, b in rows)
    print(text)
    if args.write:
        with open(args.write, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
