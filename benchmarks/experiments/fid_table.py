"""FID of a checkpoint's samples (the paper's Table 2 measure), with the real-vs-real floor.

    python benchmarks/experiments/fid_table.py runs/fid-mnist-N1/model.safetensors --n 2000
    python benchmarks/experiments/fid_table.py --floor --dataset mnist --n 2000

A checkpoint row: `n` samples (Gibbs chains from noise, or `--sampler pt`: parallel tempering, `--steps` steps in the top RBM, then
the mean pass down) against the first `n` training images of the checkpoint's dataset, both
through pytorch-fid's Inception (pool3); the first 64 samples are written as a grid fid-<run>.png (into docs/img/
with --record, else runs/bench-img/). A `--floor` row: the first `n` test images against the same `n`
training images, i.e. the FID two samples of real digits get at this `n` (FID is biased
upward at small n, so a model's FID only means something next to this floor at the same n).
Where the test split holds fewer than n images (emoji: 375), the floor's real sample is the
test split followed by the training images after the first n, up to n (emoji at n = 2,000:
375 + 1,411 = 1,786 images, none of them among the n it is compared with).
Rows are printed; with --record they are appended to benchmarks/results/fid.json.

    python benchmarks/experiments/fid_table.py --floor --dataset emoji --data-dir ../emoji --size 32 --n 2000
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
from rows import add_record_option, append_rows, command_line, figure_dir, relative  # noqa: E402

from rbmcli.train.checkpoint import load_model
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.fid import cached_statistics, frechet_distance, image_statistics
from rbmcli.generate.samples import sample_images
from rbmcli.model.tempering import DEFAULT_BETA_MIN, DEFAULT_TEMPERATURES
from rbmcli.data.images import save_png
from rbmcli.eval.inception import build_inception, resolve_inception_weights


def real_statistics(model, dataset: str, split: str, n: int, size: int, channels: int, data_dir: str | None = None):
    """(μ, Σ) of the first n images of a split, cached under ~/.cache/rbmcli/fid."""
    ds = load_dataset(dataset, split, data_dir, size=size, limit=n, channels=channels)
    key = f"{dataset}-{split}-{size}-c{channels}-n{len(ds.images)}"
    return cached_statistics(key, lambda: image_statistics(ds.images, model, batch_size=50, device="cpu")), len(ds.images)


def floor_statistics(model, dataset: str, n: int, size: int, channels: int, data_dir: str | None = None):
    """(μ, Σ) of up to n real images outside the first n training ones: the test split, then,
    where it holds fewer than n, the training images from n on."""
    test = load_dataset(dataset, "test", data_dir, size=size, limit=n, channels=channels).images
    if len(test) < n:
        rest = load_dataset(dataset, "train", data_dir, size=size, channels=channels).images[n:]
        test = torch.cat([test, rest])[:n]
    key = f"{dataset}-floor-{size}-c{channels}-n{len(test)}"
    return cached_statistics(key, lambda: image_statistics(test, model, batch_size=50, device="cpu")), len(test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", help="model.safetensors (omit with --floor)")
    ap.add_argument("--n", type=int, default=2000, help="generated and real images each")
    ap.add_argument("--steps", type=int, default=None, help="Gibbs steps per sample (default: the model's, 1000 or the k of --negatives noise)")
    ap.add_argument("--floor", action="store_true", help="test images against training images")
    ap.add_argument("--dataset", default=None, help="with --floor: mnist, colored-mnist, fashion-mnist or emoji")
    ap.add_argument("--data-dir", default=None, help="with --floor: the dataset's folder (emoji: the npm package)")
    ap.add_argument("--size", type=int, default=None, help="with --floor: the image side (default 28; emoji 64)")
    ap.add_argument("--seed", type=int, default=0)
    add_record_option(ap)
    ap.add_argument("--sampler", default="gibbs", choices=["gibbs", "pt"], help="the top RBM's sampler")
    ap.add_argument("--temperatures", type=int, default=DEFAULT_TEMPERATURES, help="pt: K")
    ap.add_argument("--beta-min", type=float, default=DEFAULT_BETA_MIN, help="pt: the lowest β of the ladder")
    args = ap.parse_args()
    if args.floor == bool(args.checkpoint):
        raise SystemExit("give a checkpoint, or --floor --dataset NAME")

    inception = build_inception(resolve_inception_weights(None), "cpu")
    t0 = time.time()
    if args.floor:
        side = args.size or (64 if args.dataset == "emoji" else 28)
        shape = (3 if args.dataset in ("colored-mnist", "emoji") else 1, side, side)
        dataset, label, n_units = args.dataset, "real test images", None
        real, n_real = real_statistics(inception, dataset, "train", args.n, shape[-1], shape[0], args.data_dir)
        fake, n_floor = floor_statistics(inception, dataset, args.n, shape[-1], shape[0], args.data_dir)
        extra = {"size": side, "n_floor_images": n_floor}
    else:
        _, info = load_model(args.checkpoint)
        cfg, shape = info["config"], info["input_shape"]
        dataset, n_units = cfg["dataset"], cfg["visible_units"]
        units = f"N={n_units}" if cfg["hidden_units"] == n_units else f"N={n_units} visible, {cfg['hidden_units']} hidden"
        if cfg.get("binary_top"):
            units += ", binary top"
        label = f"{cfg['arch']}, {units}, {cfg['negatives']}, lr {cfg['lr']} {cfg['lr_decay']}, {cfg['epochs']} ep"
        if args.sampler == "pt":
            label += f", sampled by pt (K={args.temperatures}, beta_min {args.beta_min})"
        real, n_real = real_statistics(inception, dataset, "train", args.n, shape[-1], shape[0], cfg.get("data_dir"))
        result = sample_images(args.checkpoint, args.n, steps=args.steps, seed=args.seed, device="cpu",
                               sampler=args.sampler, temperatures=args.temperatures, beta_min=args.beta_min)
        pixels = (result.images * 255).round().to(torch.uint8)
        fake = image_statistics(pixels, inception, batch_size=50, device="cpu")
        grid = figure_dir(args.record) / f"fid-{Path(args.checkpoint).parent.name}{'-sampler-pt' if args.sampler == 'pt' else ''}.png"
        save_png(result.images[:64], grid, nrow=8)
        extra = {"size": shape[-1], "gibbs_steps": result.steps, "sampler": args.sampler,
                 "sampling_seconds": round(result.seconds, 1), "grid": relative(grid), "checkpoint": args.checkpoint}
        if args.sampler == "pt":
            extra.update(temperatures=[round(b, 4) for b in result.betas],
                         swap_acceptance=[round(r, 3) for r in result.swap_rates])
    value = frechet_distance(*fake, *real)
    row = {"dataset": dataset, "units_N": n_units, "model": label, "fid": round(value, 2),
           "n_fake": args.n, "n_real": n_real, **extra, "seconds": round(time.time() - t0, 1),
           "threads": torch.get_num_threads(), "date": str(date.today()),
           "command": command_line()}
    print(json.dumps(row, indent=2))
    append_rows("fid", [row], args.record)


if __name__ == "__main__":
    main()
