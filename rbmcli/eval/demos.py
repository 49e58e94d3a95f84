"""The paper's reconstruction demos and color generation as figures, for `rbm evaluate`:

- colorize (Fig. 2, right): the test images' luminance reconstructed by a color model; the
  circular hue error of its strokes against the true colors and the share of images whose
  median stroke hue is within ±18° (rbmcli.eval.hue), next to two baselines: the gray input itself
  and the gray input tinted with the training strokes' circular mean hue.
- occlusion (Fig. 2, left): the test images with a bar across them (rbmcli.eval.occlusion: bright
  across the middle, on emoji black across the eyes), reconstructed; the RMSE to the clean image inside the band, for the
  occluded input and the reconstruction, and the accuracy of an independent classifier
  (rbmcli.eval.digit_classifier) on the clean, occluded, restored (and plainly reconstructed) images.
- hue match (colored-mnist): samples from noise; the share whose median stroke hue lies within
  ±18° of the hue of the class the classifier reads from their luminance.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import torch

from rbmcli.errors import RbmError

COLOR_DATASETS_WITH_CLASS_HUES = ("colored-mnist",)


def check_demo_options(info: dict, opts, name: str) -> None:
    """Usage errors before any work: --colorize and --hue-match need a color checkpoint,
    --hue-match colored-mnist, and every demo a dataset with a test split."""
    demos = [flag for flag, on in (("--colorize", opts.colorize), ("--occlusion", opts.occlusion),
                                   ("--hue-match", opts.hue_match)) if on]
    if not demos:
        return
    if name == "folder":
        raise RbmError(f"{', '.join(demos)}: the folder dataset has no test split to measure; pass --dataset "
                       "with one that has", usage=True)
    channels = info["input_shape"][0]
    for flag, on in (("--colorize", opts.colorize), ("--hue-match", opts.hue_match)):
        if on and channels != 3:
            raise RbmError(f"{flag} needs a color model; this checkpoint's input has {channels} channel "
                           "(gray): train one on a color dataset, e.g. --dataset colored-mnist", usage=True)
    if opts.hue_match and name not in COLOR_DATASETS_WITH_CLASS_HUES:
        raise RbmError(f"--hue-match knows the class hues of {', '.join(COLOR_DATASETS_WITH_CLASS_HUES)} only, "
                       f"not {name}", usage=True)


class DemoData:
    """The test and training images of one evaluation, and the classifier, each made once."""

    def __init__(self, info: dict, opts, load):
        self.info, self.opts, self._load = info, opts, load  # load(split, limit) → (Dataset, name)
        self._test = self._train = self._classifier = None

    @property
    def test(self):
        if self._test is None:
            self._test, _ = self._load("test", self.opts.limit_test)
            if len(self._test) == 0:
                raise RbmError("the test split holds no images")
        return self._test

    @property
    def train(self):
        if self._train is None:
            self._train, _ = self._load("train", self.opts.limit_train)
        return self._train

    @property
    def labelled(self) -> bool:
        return bool(self.train.classes) and int(self.train.labels.min()) >= 0

    @property
    def classifier(self):
        """The luminance classifier fitted to the training images (seeded with --seed)."""
        if self._classifier is None:
            from rbmcli.eval.digit_classifier import train_classifier

            self._classifier = train_classifier(self.train.images, self.train.labels, len(self.train.classes),
                                                self.opts.seed)
        return self._classifier


def _reconstruct(ckpt: Path, images: torch.Tensor, opts, gray: bool) -> torch.Tensor:
    from rbmcli.generate.reconstruct import reconstruct_images

    return reconstruct_images(ckpt, images, steps=opts.recon_steps, gray=gray, device=opts.device, seed=opts.seed, batch_size=opts.batch_size)


def mean_hue_baseline(gray: torch.Tensor, hue: float, saturation: float) -> torch.Tensor:
    """Gray images (n, 1, H, W) in [0, 1] tinted with one hue (degrees) and saturation, the
    gray level as the HSV value: float RGB (n, 3, H, W)."""
    from rbmcli.data.colored import hsv_to_rgb

    rgb = hsv_to_rgb(torch.tensor(hue), torch.tensor(saturation), gray[:, 0].double())  # (3, n, H, W)
    return rgb.permute(1, 0, 2, 3).float()


def colorize_rows(ckpt: Path, data: DemoData, name: str) -> list:
    """Rows colorize_hue_error_deg and colorize_within_18deg_percent (model; baselines in details)."""
    from rbmcli.eval.row import Row
    from rbmcli.generate.reconstruct import to_gray
    from rbmcli.eval.hue import colorization_score, stroke_hue_statistics

    t0 = time.time()
    true = data.test.images
    truth = true.float() / 255
    gray = to_gray(true, 1).float() / 255
    hue, sat = stroke_hue_statistics(data.train.images)
    model = colorization_score(_reconstruct(ckpt, true, data.opts, gray=True), truth)
    as_gray = colorization_score(gray.expand(-1, 3, -1, -1), truth)
    tinted = colorization_score(mean_hue_baseline(gray, hue, sat), truth)
    common = {"dataset": name, "n_test": model.n, "recon_steps": data.opts.recon_steps}
    seconds = time.time() - t0
    return [Row("colorize_hue_error_deg", model.mean_error_deg,
                {**common, "gray_output_deg": round(as_gray.mean_error_deg, 2),
                 "mean_hue_output_deg": round(tinted.mean_error_deg, 2), "mean_train_hue_deg": round(hue, 1)}, seconds),
            Row("colorize_within_18deg_percent", model.within_percent,
                {**common, "gray_output_percent": round(as_gray.within_percent, 2),
                 "mean_hue_output_percent": round(tinted.within_percent, 2)}, 0.0)]


def occlusion_rows(ckpt: Path, data: DemoData, name: str) -> list:
    """Rows occlusion_band_rmse (restored; the occluded input's in details) and, for labelled
    data, occlusion_accuracy_percent (restored; clean, occluded, reconstructed clean in details)."""
    from rbmcli.eval.row import Row
    from rbmcli.eval.occlusion import bar_height, band_rmse, occlude, occluder

    t0 = time.time()
    clean = data.test.images
    center, value = occluder(name)
    occluded, bands = occlude(clean, torch.Generator().manual_seed(data.opts.seed), center, value)
    restored = _reconstruct(ckpt, occluded, data.opts, gray=False)
    truth = clean.float() / 255
    common = {"dataset": name, "n_test": len(clean), "bar_rows": bar_height(clean.shape[2]),
              "bar_center": center, "bar_value": value,
              "recon_steps": data.opts.recon_steps}
    rows = [Row("occlusion_band_rmse", band_rmse(restored, truth, bands),
                {**common, "occluded_input_rmse": round(band_rmse(occluded.float() / 255, truth, bands), 4)},
                time.time() - t0)]
    if data.labelled:
        t1, labels, c = time.time(), data.test.labels, data.classifier
        recon_clean = _reconstruct(ckpt, clean, data.opts, gray=False)
        rows.append(Row("occlusion_accuracy_percent", c.accuracy(restored, labels),
                        {**common, "clean_percent": round(c.accuracy(clean, labels), 2),
                         "occluded_percent": round(c.accuracy(occluded, labels), 2),
                         "reconstructed_clean_percent": round(c.accuracy(recon_clean, labels), 2),
                         "classifier": "MLP on max-normalised luminance", "n_train": len(data.train)},
                        time.time() - t1))
    return rows


def hue_match_row(ckpt: Path, data: DemoData, name: str):
    """Row sample_hue_match_percent: samples from noise whose median stroke hue matches the hue
    of the class the classifier reads from their luminance."""
    from rbmcli.data.colored import class_hue
    from rbmcli.eval.row import Row
    from rbmcli.generate.samples import sample_images
    from rbmcli.eval.hue import class_hue_match

    t0 = time.time()
    opts = data.opts
    samples = sample_images(ckpt, opts.hue_samples, steps=opts.fid_steps, seed=opts.seed, device=opts.device).images
    classes = data.classifier.predict(samples)
    percent, with_strokes = class_hue_match(samples, class_hue(classes))
    counts = Counter(classes.tolist())
    return Row("sample_hue_match_percent", percent,
               {"dataset": name, "n_samples": len(samples), "with_strokes": with_strokes, "gibbs_steps": opts.fid_steps,
                "classes_read": [counts.get(k, 0) for k in range(len(data.train.classes))],
                "classifier": "MLP on max-normalised luminance"}, time.time() - t0)
