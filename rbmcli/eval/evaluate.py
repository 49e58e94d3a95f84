"""`rbm evaluate`: SVM error on top features (Table 1), FID of samples (Table 2), the
log-likelihood by AIS, and the reconstruction demos as figures (colorization, occlusion, the
hue match of color samples: rbmcli.eval.demos), for one checkpoint, each as a result row
with its protocol."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from rbmcli.train.checkpoint import load_model
from rbmcli.errors import RbmError
from rbmcli.eval.row import Row
from rbmcli.data.batches import binarize, to_visible
from rbmcli.train.devices import resolve_device
from rbmcli.train.run_folder import MODEL_FILE, RunFolder

Progress = Callable[[str, int, int], None]  # (task, done, total)
KERNELS = ("linear", "nystroem", "rbf")  # = rbmcli.eval.svm.KERNELS (not imported: scikit-learn loads slowly)
FID_SAMPLES = 1_000  # the default --fid-samples: minutes on a CPU (docs/performance.md)
FID_SAMPLES_PAPERS = 10_000  # what papers report (Heusel et al.; Table 2)
# Seconds of one CPU thread per unit of FID work, measured as CPU time on the project's 2-core
# x86-64 CPU at one thread, 2026-12-04 (docs/performance.md, "What an FID costs"): one Inception
# pool3 pass of one image (0.181 s, rounded up for loading and the distance), and one
# multiply-add of a top-RBM Gibbs half-step (a dense 784-500 top: 392,000 per chain).
INCEPTION_S_PER_IMAGE = 0.2
GIBBS_S_PER_MAC = 4.2e-11


@dataclass(kw_only=True)
class EvalOptions:
    svm: bool = False
    fid: bool = False
    ais: bool = False
    dataset: str | None = None  # default: the checkpoint's dataset
    data_dir: str | None = None  # default: the checkpoint's data folder
    limit_train: int | None = None
    limit_test: int | None = None
    kernel: str = "linear"  # linear or rbf
    fid_samples: int = FID_SAMPLES
    fid_steps: int | None = None  # Gibbs steps per FID sample (None: the model's, rbmcli.generate.samples.model_steps)
    inception_weights: str | None = None
    download: bool = False
    ais_runs: int = 100
    ais_betas: int = 14_501  # S&M's schedule (rbmcli.eval.ais.default_betas)
    device: str = "auto"
    seed: int = 0
    batch_size: int = 512
    colorize: bool = False  # hue error of gray test images reconstructed in color
    occlusion: bool = False  # band RMSE and classifier accuracy of occluded test images reconstructed
    hue_match: bool = False  # share of samples whose stroke hue matches their class (colored-mnist)
    hue_samples: int = 1000  # samples for --hue-match
    recon_steps: int = 0  # Gibbs steps in the top RBM of --colorize/--occlusion reconstructions

    def validate(self) -> "EvalOptions":
        """Every choice and number, before any work (usage errors naming the option)."""
        from rbmcli.options import MAX_COUNT, SEED_MAX, check_ints

        if not (self.svm or self.fid or self.ais or self.colorize or self.occlusion or self.hue_match):
            raise RbmError("choose at least one of --svm, --fid, --ais, --colorize, --occlusion, --hue-match",
                           usage=True)
        if self.kernel not in KERNELS:
            raise RbmError(f"--kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}", usage=True)
        check_ints({"--limit-train": (self.limit_train, 1, 10**12), "--limit-test": (self.limit_test, 1, 10**12),
                    "--fid-samples": (self.fid_samples, 2, MAX_COUNT), "--fid-steps": (self.fid_steps, 0, MAX_COUNT),
                    "--ais-runs": (self.ais_runs, 1, MAX_COUNT), "--ais-betas": (self.ais_betas, 4, MAX_COUNT),
                    "--seed": (self.seed, 0, SEED_MAX), "batch size": (self.batch_size, 1, MAX_COUNT),
                    "--hue-samples": (self.hue_samples, 1, MAX_COUNT),
                    "--recon-steps": (self.recon_steps, 0, MAX_COUNT)})
        return self


def top_gibbs_macs(dbn) -> int:
    """Multiply-adds of one Gibbs half-step of one chain in the top RBM: its weights, times
    the hidden positions a conv kernel visits (1 for a dense layer)."""
    top, spec = dbn.layers[-1], dbn.specs[-1]
    positions = math.prod(spec.hidden_shape[1:]) if spec.kind == "conv" else 1
    return top.weight.numel() * positions


def fid_seconds(n: int, steps: int, macs: int) -> float:
    """Estimated seconds of an FID at one CPU thread: n chains of `steps` Gibbs steps (two
    half-steps of `macs` multiply-adds each) and 2n Inception passes (n samples, n real images;
    the real images' statistics are cached after the first run)."""
    return n * steps * 2 * macs * GIBBS_S_PER_MAC + 2 * n * INCEPTION_S_PER_IMAGE


def fid_estimate(dbn, opts: EvalOptions) -> dict:
    """What `--fid` will cost, from the model alone (no data): {"seconds": at
    opts.fid_samples, "papers_seconds": at FID_SAMPLES_PAPERS}, both at one CPU thread."""
    macs = top_gibbs_macs(dbn)
    return {"seconds": fid_seconds(opts.fid_samples, opts.fid_steps, macs),
            "papers_seconds": fid_seconds(FID_SAMPLES_PAPERS, opts.fid_steps, macs)}


def latest_checkpoint(runs: Path = Path("runs")) -> Path:
    """model.safetensors of the most recently modified run folder under `runs`."""
    found = sorted(runs.glob(f"*/{MODEL_FILE}"), key=lambda p: p.stat().st_mtime) if runs.is_dir() else []
    if not found:
        raise RbmError(f"no checkpoint given and none found under {runs}/*/{MODEL_FILE}: pass CKPT", usage=True)
    return found[-1]


def _data(info: dict, opts: EvalOptions, split: str, limit: int | None):
    from rbmcli.data.datasets import checkpoint_dataset

    ds = checkpoint_dataset(info, split, name=opts.dataset, data_dir=opts.data_dir, limit=limit, download=opts.download)
    return ds, opts.dataset or info["config"].get("dataset") or info.get("dataset")


def svm_row(dbn, info, opts: EvalOptions, progress: Progress) -> Row:
    """Top-layer mean activities → standardised linear (or RBF) SVM, C chosen on a validation
    split of the training set; the test error in %."""
    from rbmcli.eval.svm import extract_features, svm_error

    n_v, dev = dbn.specs[0].visible_units.n, resolve_device(opts.device)
    feats = {}
    from rbmcli.eval.svm import check_svm_data

    for split, limit in [("train", opts.limit_train), ("test", opts.limit_test)]:
        ds, name = _data(info, opts, split, limit)
        if split == "train":
            check_svm_data(ds.labels.numpy(), n_classes=len(ds.classes))  # before the features are extracted
        images = binarize(ds.images, info["config"].get("binarize", "none"), info["config"].get("seed", 0))
        feats[split] = (extract_features(dbn, images, visible_units_n=n_v, batch_size=opts.batch_size, device=dev,
                                         progress=lambda d, t, s=split: progress(f"features {s}", d, t)), ds.labels.numpy())
    r = svm_error(*feats["train"], *feats["test"], kernel=opts.kernel, seed=opts.seed,
                  progress=lambda d, t: progress("SVM fits (C grid, refit)", d, t))
    return Row("svm_test_error_percent", r.test_error_percent,
               {"dataset": name, "kernel": r.kernel, "landmarks": r.landmarks, "C": r.best_c, "val_error_percent": r.val_error_percent,
                "n_train": r.n_train, "n_test": r.n_test, "features": int(feats["test"][0].shape[1]), "scan": r.scan},
               r.seconds)


def ais_row(dbn, info, opts: EvalOptions, progress: Progress) -> Row:
    """Mean test log-likelihood (nats) of the RBM, or of the top RBM of a stack on the test
    images' mean activities at its input (labelled so): exact log Z when tractable, else AIS."""
    from rbmcli.eval.ais import ais_log_likelihood, base_rate_biases, default_betas

    top = dbn.layers[-1]
    if top.spec.visible_units.n != 1:
        raise RbmError("AIS log-likelihood needs binary visible units (train with --visible-units 1 for the "
                       "bottom layer, or --hidden-units 1 below the top RBM)", usage=True)
    cfg = info["config"]
    with torch.inference_mode():
        def top_input(split, limit):
            ds, _ = _data(info, opts, split, limit)
            v = to_visible(binarize(ds.images, cfg.get("binarize", "none"), cfg.get("seed", 0)), 1)
            return dbn.up(v, upto=len(dbn.layers) - 1).flatten(1).double() if len(dbn.layers) > 1 else v.flatten(1).double()
        v_train, v_test = top_input("train", opts.limit_train), top_input("test", opts.limit_test)
    betas = default_betas(opts.ais_betas)
    g = torch.Generator().manual_seed(opts.seed)
    t0 = time.time()
    res = ais_log_likelihood(top, v_test, base_a=base_rate_biases(v_train), n_runs=opts.ais_runs, betas=betas,
                             generator=g, progress=lambda d, t: progress("AIS", d, t))
    label = "rbm" if len(dbn.layers) == 1 else f"top RBM (layer {len(dbn.layers) - 1}) on its input activities"
    return Row("test_log_likelihood_nats", res["mean_log_likelihood"],
               {"model": label, "method": res["method"], "log_z": res["log_z"], "low": res["low"],
                "high": res["high"], "n_test": len(v_test), "ais_runs": opts.ais_runs,
                "ais_betas": len(betas) if res["method"] == "ais" else 0,
                "binarize": cfg.get("binarize", "none")}, time.time() - t0)


def fid_row(ckpt: Path, info, opts: EvalOptions, progress: Progress) -> Row:
    """FID between `fid_samples` generated images and as many training images of the same
    dataset and size (pytorch-fid's Inception, pool3); real statistics cached."""
    from rbmcli.eval.fid import cached_statistics, image_statistics
    from rbmcli.eval.fid import frechet_distance
    from rbmcli.generate.samples import sample_images
    from rbmcli.eval.inception import build_inception, resolve_inception_weights

    dev = resolve_device(opts.device)
    model = build_inception(resolve_inception_weights(opts.inception_weights, opts.download), dev)
    t0 = time.time()
    ds, name = _data(info, opts, "train", opts.fid_samples)
    key = real_stats_key(name, ds.images, opts.inception_weights)

    def real_statistics():  # each phase reports its start: a log shows what runs before its first batch ends
        progress("FID real", 0, len(ds.images))
        return image_statistics(ds.images, model, batch_size=50, device=dev,
                                progress=lambda d, t: progress("FID real", d, t))
    real = cached_statistics(key, real_statistics)
    progress("sampling", 0, opts.fid_samples * opts.fid_steps)
    fake = sample_images(ckpt, opts.fid_samples, steps=opts.fid_steps, seed=opts.seed, device=opts.device,
                         progress=lambda d, t: progress("sampling", d, t)).images
    progress("FID fake", 0, len(fake))
    fake_stats = image_statistics((fake * 255).round().to(torch.uint8), model, batch_size=50, device=dev,
                                  progress=lambda d, t: progress("FID fake", d, t))
    value = frechet_distance(*fake_stats, *real)
    return Row("fid", value, {"dataset": name, "n_fake": len(fake), "n_real": len(ds.images),
                              "gibbs_steps": opts.fid_steps, "real_stats": key}, time.time() - t0)


def weights_identity(weights: str | None) -> str:
    """What names the Inception weights a statistic was computed with: the resolved file's
    absolute path, size and modification time (no download, no hashing of 100 MB)."""
    from rbmcli.eval.inception import resolve_inception_weights

    path = Path(resolve_inception_weights(weights)).resolve()
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def real_stats_key(name: str, images: torch.Tensor, weights: str | None) -> str:
    """The FID cache key of real images: dataset, size, channels, count and a digest of the
    pixels themselves and of the weights, so two data folders of the same size and count, or
    two weight files, never share statistics."""
    digest = hashlib.sha256(images.contiguous().numpy().tobytes())
    digest.update(weights_identity(weights).encode())
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return (f"{safe}-train-{images.shape[-1]}-c{images.shape[1]}-n{len(images)}-"
            f"{digest.hexdigest()[:16]}")


def run_folder(ckpt: Path) -> Path | None:
    """The run folder a checkpoint lies in (its folder holds config.json), else None."""
    folder = Path(ckpt).parent
    return folder if RunFolder(folder).config.is_file() else None


def record_results(ckpt: Path, rows: list[Row]) -> Path | None:
    """Merge rows into the run folder's eval.json (a row per metric and checkpoint file, the
    newest kept), written atomically; None when the checkpoint lies in no run folder."""
    from rbmcli.files import write_atomic

    folder = run_folder(ckpt)
    if folder is None:
        return None
    path = RunFolder(folder).eval_json  # shown by `rbm report`
    old = []
    try:
        loaded = json.loads(path.read_text()) if path.is_file() else {}
        old = loaded.get("results", []) if isinstance(loaded, dict) else []
    except (OSError, ValueError):
        old = []  # unreadable: replaced by this evaluation's rows
    new = [dict(r.to_dict(), checkpoint=Path(ckpt).name) for r in rows]
    fresh = {(r["metric"], r["checkpoint"]) for r in new}
    kept = [r for r in old if isinstance(r, dict) and (r.get("metric"), r.get("checkpoint")) not in fresh]
    return write_atomic(path, json.dumps({"run": str(folder), "results": kept + new}, indent=2) + "\n")


def check_evaluation(ckpt: Path, opts: EvalOptions):
    """Every check that needs the checkpoint but no data (it loads, the demos fit its dataset
    and channels); returns (dbn, info)."""
    from rbmcli.eval.demos import check_demo_options

    opts.validate()
    dbn, info = load_model(ckpt)
    if opts.fid_steps is None:
        from rbmcli.generate.samples import model_steps

        opts.fid_steps = model_steps(info)
    check_demo_options(info, opts, opts.dataset or info["config"].get("dataset") or info.get("dataset"))
    return dbn, info


def evaluate(ckpt: Path | None, opts: EvalOptions, progress: Progress | None = None) -> tuple[Path, list[Row]]:
    """Run the requested evaluations on a checkpoint (default: the newest run's)."""
    ckpt = Path(ckpt) if ckpt else latest_checkpoint()
    progress = progress or (lambda task, done, total: None)
    dbn, info = check_evaluation(ckpt, opts)
    dbn.eval()
    from rbmcli.eval.demos import DemoData, colorize_rows, hue_match_row, occlusion_rows

    name = opts.dataset or info["config"].get("dataset") or info.get("dataset")
    rows = []
    if opts.svm:
        rows.append(svm_row(dbn, info, opts, progress))
    if opts.ais:
        rows.append(ais_row(dbn, info, opts, progress))
    if opts.fid:
        rows.append(fid_row(ckpt, info, opts, progress))
    demo = DemoData(info, opts, lambda split, limit: _data(info, opts, split, limit))
    if opts.colorize:
        progress("colorization", 0, 1)
        rows += colorize_rows(ckpt, demo, name)
    if opts.occlusion:
        progress("occlusion", 0, 1)
        rows += occlusion_rows(ckpt, demo, name)
    if opts.hue_match:
        progress("hue match of samples", 0, 1)
        rows.append(hue_match_row(ckpt, demo, name))
    return ckpt, rows
