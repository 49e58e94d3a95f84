"""The training step on a GPU, side by side in one run: eager against captured (--graph),
fp32 against bf16, for paper-generate at 64 and 128 px (batch 128 and 512) and the default
dense model; images/s, achieved TFLOP/s and their share of a matmul peak measured here.

    python benchmarks/perf/bench_gpu.py [--commands] [--json FILE]
    python benchmarks/perf/bench_gpu.py --device cpu --quick     # the script itself, on a CPU

Each row times the Trainer's own step (`Trainer.train_step`, what `rbm train` runs) over
--steps steps after a warm-up that includes the capture, the host reading the losses once
per 50 steps as the loop does. FLOPs of a step are counted once with
torch.utils.flop_counter (losses and backward; Adam's elementwise work is not counted).
Before timing, a captured and an eager trainer run 10 mean-field steps from the same
weights: the largest parameter difference is printed (the capture's correctness check).
--commands also times the default `rbm train` and `rbm sample -n 64` as whole processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from rbmcli.data.batches import to_visible
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import Trainer

ROWS = [  # (name, image side, channels, batch, config)
    ("paper-generate 128 px", 128, 3, 128, dict(recipe="paper", arch="paper-generate", mode="joint")),
    ("paper-generate 128 px", 128, 3, 512, dict(recipe="paper", arch="paper-generate", mode="joint")),
    ("paper-generate 64 px", 64, 3, 128, dict(recipe="paper", arch="paper-generate", mode="joint")),
    ("paper-generate 64 px", 64, 3, 512, dict(recipe="paper", arch="paper-generate", mode="joint")),
    ("default dense (generate recipe)", 28, 1, 128, dict()),
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """TFLOP/s of an n×n matmul in dtype, the best of 5 timings of 10 products."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    best = float("inf")
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
        best = min(best, (time.perf_counter() - t) / 10)
    return 2 * n ** 3 / best / 1e12


def trainer(device, side, channels, batch, over: dict, **kw) -> tuple[Trainer, torch.Tensor]:
    images = torch.randint(0, 256, (batch * 4, channels, side, side), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(device=str(device), keep=0, batch_size=batch, **over, **kw)
    t = Trainer(cfg, tempfile.mkdtemp(), images)
    return t, to_visible(t.images[:batch].to(device), cfg.visible_units)


def step_flops(t: Trainer, v: torch.Tensor) -> int:
    """FLOPs of one step's losses and backward (counted on a copy of the step)."""
    with FlopCounterMode(display=False) as counter:
        torch.stack(t.layer_losses(v, None)).sum().backward()
    t.opt.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_steps(t: Trainer, v: torch.Tensor, steps: int) -> float:
    """Seconds per step of the Trainer's step, the losses read every 50 steps."""
    for _ in range(6):  # warm-up: lazy state, and the capture for --graph
        t.train_step(v, None)
    t.read_pending()
    sync(t.device)
    start = time.perf_counter()
    for i in range(steps):
        t.train_step(v, None)
        t.step += 1
        if (i + 1) % 50 == 0:
            t.read_pending()
    t.read_pending()
    sync(t.device)
    return (time.perf_counter() - start) / steps


def capture_check(device, side, channels, batch, over) -> float:
    """Largest |Δ parameter| between a captured and an eager trainer after 10 mean-field steps."""
    runs = []
    for graph in (False, True):
        t, v = trainer(device, side, channels, batch, {**over, "negatives": "meanfield", "lower_negatives": "meanfield"},
                       graph=graph)
        for _ in range(10):
            t.train_step(v, None)
        t.read_pending()
        runs.append(torch.cat([p.detach().flatten() for p in t.dbn.parameters()]))
    return float((runs[0] - runs[1]).abs().max())


def whole(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--quick", action="store_true", help="only the small rows, 32 px, few steps (a check of the script)")
    ap.add_argument("--commands", action="store_true", help="also time `rbm train` and `rbm sample -n 64`")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    args = ap.parse_args()
    device = torch.device(args.device)
    rows = ROWS if not args.quick else [("paper-generate 32 px", 32, 3, 16, ROWS[0][4]), ("default dense", 28, 1, 128, {})]
    steps = 3 if args.quick else args.steps
    n = 1024 if args.quick else 8192
    peak = {"fp32": matmul_peak(device, torch.float32, n), "bf16": matmul_peak(device, torch.bfloat16, n)}
    print(f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, torch {torch.__version__}; "
          f"matmul peak {n}²: fp32 {peak['fp32']:.1f} TFLOP/s, bf16 {peak['bf16']:.1f} TFLOP/s")
    out = {"device": str(device), "peak_tflops": peak, "rows": []}
    print("| model | batch | step | precision | ms/step | images/s | TFLOP/s | share of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for name, side, channels, batch, over in rows:
        print(f"capture check {name}, batch {batch}: max |Δθ| after 10 steps = "
              f"{capture_check(device, side, channels, batch, over):.2e}", file=sys.stderr)
        for graph in (False, True):
            for precision in ("fp32", "bf16"):
                t, v = trainer(device, side, channels, batch, over, graph=graph, precision=precision)
                flops = step_flops(t, v)
                sec = time_steps(t, v, steps)
                tflops = flops / sec / 1e12
                row = {"model": name, "batch": batch, "graph": graph, "precision": precision, "ms": sec * 1e3,
                       "images_s": batch / sec, "tflops": tflops, "share": tflops / peak[precision],
                       "captured": graph and bool(getattr(t.step_fn, "graphs", None))}
                out["rows"].append(row)
                print(f"| {name} | {batch} | {'graph' if row['captured'] else 'eager'} | {precision} | {row['ms']:.2f} | "
                      f"{row['images_s']:,.0f} | {tflops:.3g} | {row['share']:.1%} |", flush=True)
                del t
    if args.commands:
        with tempfile.TemporaryDirectory() as tmp:
            rbm = [sys.executable, "-m", "rbmcli"]
            out["rbm_train_s"] = whole([*rbm, "train", "--device", args.device, "-q", "--out", f"{tmp}/run"])
            out["rbm_sample_s"] = whole([*rbm, "sample", f"{tmp}/run/model.safetensors", "-n", "64", "--device",
                                         args.device, "-q", "-o", f"{tmp}/grid.png"])
        print(f"rbm train (default job): {out['rbm_train_s']:.1f} s; rbm sample -n 64: {out['rbm_sample_s']:.1f} s "
              f"(whole processes on {args.device})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
