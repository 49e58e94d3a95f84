"""The reconstruction demos and color generation of one checkpoint as rows and pictures.

    python benchmarks/experiments/color_table.py runs/colored-dense/model.safetensors
    python benchmarks/experiments/color_table.py runs/mnist-default/model.safetensors

Runs `rbm evaluate`'s --colorize (color models), --occlusion and --hue-match (colored-mnist
models) on the checkpoint's test split and prints the rows; with --record it appends them to
benchmarks/results/color.json. Three pictures named after the run folder go into docs/img/
(with --record; else runs/bench-img/):
<run>-samples.png (64 samples from noise, 8 a row), <run>-colorize.png (rows of 16 test
images: gray input, reconstruction, truth) and <run>-occlusion.png (occluded, restored, clean).
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
from rbmcli.eval.evaluate import EvalOptions, evaluate
from rbmcli.generate.samples import sample_images
from rbmcli.generate.reconstruct import reconstruct_images, to_gray
from rbmcli.data.images import save_png
from rbmcli.eval.occlusion import occlude, occluder

PER_ROW = 16


def pictures(ckpt: Path, info: dict, tag: str, steps: int, recon_steps: int, seed: int, folder: Path) -> dict:
    """Write the three pictures (the colorization one for color models only) into `folder`; their paths."""
    c, side = info["input_shape"][0], info["input_shape"][-1]
    cfg = info["config"]
    clean = load_dataset(cfg["dataset"], "test", cfg.get("data_dir"), size=side, limit=PER_ROW, channels=c,
                         seed=cfg.get("seed", 0)).images
    written = {}
    samples = sample_images(ckpt, 64, steps=steps, seed=seed, device="cpu").images
    written["samples"] = save_png(samples, folder / f"{tag}-samples.png", nrow=8)
    if c == 3:
        colored = reconstruct_images(ckpt, clean, steps=recon_steps, gray=True, device="cpu", seed=seed)
        rows = torch.cat([to_gray(clean, 3).float() / 255, colored, clean.float() / 255])
        written["colorize"] = save_png(rows, folder / f"{tag}-colorize.png", nrow=PER_ROW)
    occluded, _ = occlude(clean, torch.Generator().manual_seed(seed), *occluder(cfg["dataset"]))
    restored = reconstruct_images(ckpt, occluded, steps=recon_steps, device="cpu", seed=seed)
    rows = torch.cat([occluded.float() / 255, restored, clean.float() / 255])
    written["occlusion"] = save_png(rows, folder / f"{tag}-occlusion.png", nrow=PER_ROW)
    return {k: relative(p) for k, p in written.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--limit-test", type=int, default=None, help="test images (default: the whole split)")
    ap.add_argument("--limit-train", type=int, default=None, help="training images for the classifier and mean hue")
    ap.add_argument("--hue-samples", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None, help="Gibbs steps per sample (default: the model's, 1000 or the k of --negatives noise)")
    ap.add_argument("--recon-steps", type=int, default=0, help="Gibbs steps in the top RBM of reconstructions")
    ap.add_argument("--seed", type=int, default=0)
    add_record_option(ap)
    args = ap.parse_args()

    _, info = load_model(args.checkpoint)
    cfg = info["config"]
    color = info["input_shape"][0] == 3
    opts = EvalOptions(occlusion=True, colorize=color, hue_match=cfg["dataset"] == "colored-mnist",
                       limit_train=args.limit_train, limit_test=args.limit_test, hue_samples=args.hue_samples,
                       fid_steps=args.steps, recon_steps=args.recon_steps, device="cpu", seed=args.seed)
    t0 = time.time()
    _, rows = evaluate(args.checkpoint, opts)
    tag = args.checkpoint.parent.name
    pics = pictures(args.checkpoint, info, tag, args.steps, args.recon_steps, args.seed, figure_dir(args.record))
    model = f"{cfg['arch']}, N={cfg['visible_units']}, {cfg['recipe']} recipe, {cfg['epochs']} ep"
    common = {"dataset": cfg["dataset"], "model": model, "checkpoint": str(args.checkpoint), "pictures": pics,
              "threads": torch.get_num_threads(), "date": str(date.today()), "command": command_line()}
    out = [{"metric": r.metric, "value": round(r.value, 4), "details": r.details, "seconds": round(r.seconds, 1),
            **common} for r in rows]
    print(json.dumps(out, indent=2))
    where = append_rows('color', out, args.record)
    print(f"{time.time() - t0:.0f} s" + (f"; rows appended to {where}" if where else ""))


if __name__ == "__main__":
    main()
