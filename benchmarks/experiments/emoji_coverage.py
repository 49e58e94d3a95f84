"""Coverage of an emoji model's samples: the categories and skin tones that independent
classifiers read from them.

    python benchmarks/experiments/emoji_coverage.py runs/emoji/model.safetensors --n 1000

Two multinomial logistic regressions (scikit-learn, L2, C = 1) read the RGB pixels averaged over
the blocks of a 16×16 grid (768 features in [0, 1]; blocks of 4×4 pixels at 64 px, 2×2 at 32) of
the real training images: one their
category (10 classes), one their skin tone (none, or one of the five; images that show two
tones are left out). Their accuracy on the real test split is reported beside the share
of the largest class (what always answering it scores). Then `--n` samples (Gibbs chains from
noise, `--steps` steps, seed `--seed`, as `rbm sample`) are classified, and the counts per
category and per tone are compared with the training images'. Rows go to
benchmarks/results/emoji.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
from rows import add_record_option, append_rows, command_line  # noqa: E402

from rbmcli.data.datasets import load_dataset
from rbmcli.generate.samples import sample_images
from rbmcli.train.checkpoint import load_model

TONES = ["none", "Light_Skin", "Medium_Light_Skin", "Medium_Skin", "Medium_Dark_Skin", "Dark_Skin"]


def features(images: torch.Tensor) -> torch.Tensor:
    """Images (n, 3, H, W), uint8 or float in [0, 1] → (n, 3·16·16): the means of a 16×16 grid of blocks."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return torch.nn.functional.adaptive_avg_pool2d(x, 16).flatten(1)


def tone_labels(attributes: torch.Tensor) -> torch.Tensor:
    """0 for no skin tone, 1..5 for exactly one, -1 for two or more; attributes bool (n, 5)."""
    count = attributes.sum(1)
    return torch.where(count == 0, 0, torch.where(count == 1, attributes.int().argmax(1) + 1, -1))


def fit(x: torch.Tensor, y: torch.Tensor):
    from sklearn.linear_model import LogisticRegression

    keep = y >= 0
    return LogisticRegression(C=1.0, max_iter=2000).fit(x[keep].numpy(), y[keep].numpy())


def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    keep = y >= 0
    return round(100.0 * float((torch.tensor(model.predict(x[keep].numpy())) == y[keep]).double().mean()), 1)


def counts(labels, names: list[str]) -> dict[str, int]:
    c = Counter(int(v) for v in labels)
    return {name: c.get(i, 0) for i, name in enumerate(names)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None, help="Gibbs steps per sample (default: the model's, 1000 or the k of --negatives noise)")
    ap.add_argument("--seed", type=int, default=0)
    add_record_option(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    _, info = load_model(args.checkpoint)
    cfg, side = info["config"], info["input_shape"][-1]
    train, test = (load_dataset("emoji", s, cfg.get("data_dir"), size=side, seed=cfg.get("seed", 0)) for s in ("train", "test"))
    x_train, x_test = features(train.images), features(test.images)
    category, tone = fit(x_train, train.labels), fit(x_train, tone_labels(train.attributes))
    result = sample_images(args.checkpoint, args.n, steps=args.steps, seed=args.seed, device="cpu")
    samples = result.images
    x_fake = features(samples)
    read_cat, read_tone = category.predict(x_fake.numpy()), tone.predict(x_fake.numpy())
    train_tones = tone_labels(train.attributes)
    rows = []
    for metric, model, names, y_train, y_test, read in (
            ("sample_categories", category, train.classes, train.labels, test.labels, read_cat),
            ("sample_skin_tones", tone, TONES, train_tones, tone_labels(test.attributes), read_tone)):
        read_counts, real_counts = counts(read, names), counts(y_train[y_train >= 0], names)
        majority = max(real_counts.values()) / sum(real_counts.values())
        rows.append({"metric": metric, "value": sum(v > 0 for v in read_counts.values()),
                     "details": {"classes_read": read_counts, "training_images": real_counts,
                                 "classifier_test_accuracy_percent": accuracy(model, x_test, y_test),
                                 "majority_class_percent": round(100 * majority, 1),
                                 "n_samples": len(samples), "gibbs_steps": result.steps, "size": side,
                                 "classifier": "logistic regression on RGB means of a 16x16 grid"},
                     "dataset": "emoji", "model": cfg["arch"], "checkpoint": args.checkpoint,
                     "seconds": round(time.time() - t0, 1), "threads": torch.get_num_threads(),
                     "date": str(date.today()), "command": command_line()})
    print(json.dumps(rows, indent=2))
    append_rows("emoji", rows, args.record)


if __name__ == "__main__":
    main()
