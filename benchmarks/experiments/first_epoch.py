"""What one short epoch of a conv stack learns, depth by depth.

    python benchmarks/experiments/first_epoch.py                 # the table in docs/color.md
    python benchmarks/experiments/first_epoch.py --variants "" "--batch-size 32" --top-alone

Each variant is `rbm train` options added to the base run (colored-mnist, `--arch small-conv
--limit 5000 --epochs 1 --center-conv --lr 0.03 --lr-decay none`: 39 steps of batch 128, seed 0).
For each it prints the reconstruction RMSE (pixels in [0, 1]) of 256 training images through
each depth (up through layers 1..d and back down) and each layer's dead-unit fraction.

--top-alone also trains the top layer by itself, from its own initialisation, for the same
epoch on the fixed features of the variant's trained lower layers (the run with the fan-in
factor of its weight scale, and without it), and prints the stack's error through the new top
and the standard deviation over images of its hidden means (fraction of N): how fast the top
learns when its input does not move.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.data.batches import to_visible
from rbmcli.train.checkpoint import load_model
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import build_dbn, load_training_images, train

BASE = "--dataset colored-mnist --arch small-conv --limit 5000 --epochs 1 --center-conv --lr 0.03 --lr-decay none"
QUICK = "--lr 0.01 --batch-size 32 --weight-scale unit --negatives meanfield"  # the stack reconstructs in one epoch
VARIANTS = ["", "--batch-size 32", "--batch-size 16 --lr 0.01 --lr-decay linear --weight-scale unit",
            "--weight-scale unit", "--negatives meanfield", "--negatives cd", "--lr 0.1",
            "--mode joint", QUICK,
            # QUICK with one of its changes undone (or the rate decaying):
            "--lr 0.01 --batch-size 32 --weight-scale unit", "--lr 0.01 --batch-size 32 --negatives meanfield",
            f"--no-center-conv {QUICK}", f"{QUICK} --lr-decay linear",
            "--lr 0.005 --lr-decay linear --batch-size 32 --weight-scale unit --negatives meanfield",
            "--lr 0.01 --batch-size 64 --weight-scale unit --negatives meanfield"]


def run(options: str, out: Path):
    """`rbm train BASE options` into out (a fresh process, as a user runs it): (model, config)."""
    cmd = [sys.executable, "-m", "rbmcli", "train", *shlex.split(f"{BASE} {options}"), "--sample-steps", "0",
           "--device", "cpu", "--no-plots", "-q", "--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    dbn, info = load_model(out / "model.safetensors")
    return dbn, TrainConfig.from_json(json.dumps(info["config"]))


@torch.no_grad()
def top_alone(dbn, cfg: TrainConfig, images: torch.Tensor, fan_in: bool, out: Path) -> dict:
    """Train a fresh top layer alone on the fixed features of dbn's lower layers (a one-layer
    run whose 'images' are those features, 0..N_h as 0..255, laid out as a square); the stack's
    error through it, and the spread of its hidden means over images."""
    below = len(dbn.layers) - 1
    feats = dbn.up(to_visible(images, cfg.visible_units), below).flatten(1)  # (n, D) in 0..N_h
    n_h, side = dbn.specs[below - 1].hidden_units.n, math.isqrt(feats.shape[1])
    if side * side != feats.shape[1]:
        raise SystemExit(f"--top-alone needs a square number of top inputs, not {feats.shape[1]}")
    pixels = (feats * (255 / n_h)).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, side, side)
    top_cfg = TrainConfig(**{**cfg.__dict__, "arch": f"dense:{dbn.specs[-1].hidden}", "center_data": cfg.center,
                             "weight_scale": "fan-in" if fan_in else "unit", "center_conv": False})
    with torch.enable_grad():
        res = train(top_cfg, out, images=pixels)
    top = build_dbn(top_cfg, (1, side, side))
    top.load_state_dict(load_file(str(res.checkpoint)), strict=False)
    layer, v = top.layers[0], to_visible(pixels[:256], 255).flatten(1)
    h = layer.hidden_mean(v)
    rec = layer.visible_mean(h) * (n_h / 255)  # back to the features' 0..N_h
    stack = dbn.down(rec, below - 1)
    img = to_visible(images[:256], cfg.visible_units)
    return {"stack_rmse": round(float(((stack.reshape(img.shape) - img) / cfg.visible_units).pow(2).mean().sqrt()), 4),
            "hidden_std": round(float(h.std(0).mean() / layer.spec.hidden_units.n), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=VARIANTS, help="rbm train options added to the base run")
    ap.add_argument("--top-alone", action="store_true", help="also train the top alone on fixed features")
    add_record_option(ap)
    args = ap.parse_args()
    rows, images = [], None
    for options in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            dbn, cfg = run(options, Path(tmp) / "run")
            last = json.loads((Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()[-1])
            row = {"options": f"{BASE} {options}".strip(), "steps": last["step"],  # the run's own epoch row:
                   "depth_recon_rmse": [round(x, 4) for x in last["depth_recon_rmse"]],  # 256 training images
                   "dead_fraction": last["dead_fraction"]}
            if args.top_alone:
                images = load_training_images(cfg) if images is None else images
                row["top_alone"] = {name: top_alone(dbn, cfg, images, fan_in, Path(tmp) / name)
                                    for name, fan_in in (("fan-in", True), ("unit", False))}
        rows.append({**row, "threads": torch.get_num_threads(), "date": str(date.today()), "command": command_line()})
        print(json.dumps(rows[-1]), flush=True)
    append_rows("first_epoch", rows, args.record)


if __name__ == "__main__":
    main()
