"""colored-mnist and the color/occlusion measures: the dataset is MNIST in its documented
hues, deterministically; the hue and band measures give hand-computed answers on hand-made
images; the classifier reads digits; a short colored-mnist run goes through train, sample,
reconstruct and evaluate; a gray checkpoint with --colorize is one usage error."""

import json
import math

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.data.colored import HUE_JITTER, SATURATION_HIGH, SATURATION_LOW, hsv_to_rgb, split_jitter
from rbmcli.data.datasets import load_dataset
from rbmcli.eval.digit_classifier import luminance_features, train_classifier
from rbmcli.errors import RbmError
from rbmcli.generate.reconstruct import to_gray
from rbmcli.eval.hue import MISS_ERROR, class_hue_match, colorization_score, rgb_to_hsv, stroke_hue_statistics, wrap
from rbmcli.eval.occlusion import band_masks, band_rmse, bar_height, occlude

runner = CliRunner()


@pytest.fixture(scope="module")
def colored_test():
    return load_dataset("colored-mnist", "test", limit=500), load_dataset("mnist", "test", limit=500)


def solid(hues, sats=1.0, side=4, stroke=None):
    """RGB images (n, 3, side, side) of one hue each (degrees), value 1 on `stroke` (bool
    (side, side), default all) and 0 elsewhere."""
    hues = torch.as_tensor(hues, dtype=torch.float64)
    v = torch.ones(side, side) if stroke is None else stroke.double()
    sats = torch.as_tensor(sats, dtype=torch.float64)
    rgb = hsv_to_rgb(hues[:, None, None], sats[:, None, None] if sats.dim() else sats, v)  # (3, n, H, W)
    return rgb.permute(1, 0, 2, 3).float()


# --- the dataset ---------------------------------------------------------------------------

def test_hsv_to_rgb_known_colors():
    rgb = hsv_to_rgb(torch.tensor([0.0, 60, 120, 180, 240, 300, 36]), torch.tensor(1.0), torch.tensor(1.0)).T
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1], [1, 0.6, 0]],
                            dtype=torch.float64)
    assert torch.allclose(rgb, expected)
    gray = hsv_to_rgb(torch.tensor(200.0), torch.tensor(0.0), torch.tensor(0.4))
    assert torch.allclose(gray, torch.full((3,), 0.4, dtype=torch.float64))
    half = hsv_to_rgb(torch.tensor(0.0), torch.tensor(0.5), torch.tensor(0.8))  # v, v(1 − s), v(1 − s)
    assert torch.allclose(half, torch.tensor([0.8, 0.4, 0.4], dtype=torch.float64))


def test_colored_mnist_is_mnist_in_its_class_hues(colored_test):
    colored, gray = colored_test
    assert colored.images.shape == (500, 3, 28, 28) and colored.images.dtype == torch.uint8
    assert torch.equal(colored.labels, gray.labels) and colored.classes == gray.classes
    # the value channel is the MNIST pixel, up to rounding; the background stays black
    assert (colored.images.max(1).values.int() - gray.images[:, 0].int()).abs().max() <= 1
    assert int(colored.images[(gray.images == 0).expand(-1, 3, -1, -1)].max()) == 0
    h, s, v = rgb_to_hsv(colored.images.float() / 255)
    strokes = v >= 0.5
    target = (colored.labels.double() * 36.0)[:, None, None].expand_as(h)
    offset = wrap(h - target)[strokes]
    assert offset.abs().max() <= HUE_JITTER + 1.0  # 36°·class ± jitter (+ 8-bit rounding)
    assert offset.std() > HUE_JITTER / 4  # the jitter is there
    assert SATURATION_LOW - 0.02 <= s[strokes].min() and s[strokes].max() <= SATURATION_HIGH + 1e-6


def test_colored_mnist_is_deterministic_and_limit_keeps_a_prefix(colored_test):
    colored, _ = colored_test
    again = load_dataset("colored-mnist", "test", limit=20)
    assert torch.equal(again.images, colored.images[:20])  # same images whatever the limit or call
    assert torch.equal(split_jitter(20, "test")[0], split_jitter(500, "test")[0][:20])
    assert not torch.equal(split_jitter(20, "train")[0], split_jitter(20, "test")[0])  # splits jittered apart


def test_gray_version_is_the_601_luminance(colored_test):
    colored, _ = colored_test
    gray = load_dataset("colored-mnist", "test", limit=50, channels=1).images
    assert torch.equal(gray, to_gray(colored.images[:50], 1))
    rgb = colored.images[:50].double()
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert (gray[:, 0].double() - luma).abs().max() <= 0.5 + 1e-9


def test_unknown_dataset_is_still_a_usage_error():
    with pytest.raises(RbmError) as e:
        load_dataset("colored-mnist2")
    assert e.value.usage and "colored-mnist" in str(e.value)


# --- hue measures --------------------------------------------------------------------------

def test_rgb_to_hsv_inverts_hsv_to_rgb():
    hues = torch.arange(0.0, 360.0, 7.5)
    h, s, v = rgb_to_hsv(solid(hues, 0.8))
    assert torch.allclose(h[:, 0, 0], hues.double(), atol=1e-9)
    assert torch.allclose(s, torch.full_like(s, 0.8)) and torch.allclose(v, torch.ones_like(v))
    h, s, _ = rgb_to_hsv(torch.full((1, 3, 2, 2), 0.3))
    assert torch.isnan(h).all() and (s == 0).all()  # gray: no hue


def test_colorization_score_known_errors():
    true = solid([10.0, 100.0, 200.0, 300.0])
    pred = solid([25.0, 80.0, 170.0, 350.0])  # offsets +15, −20, −30, +50
    score = colorization_score(pred, true)
    assert score.mean_error_deg == pytest.approx((15 + 20 + 30 + 50) / 4)
    assert score.within_percent == pytest.approx(25.0) and score.n == 4  # only +15 is within ±18
    # the wrap: 350° vs 10° is 20°, and 5° vs 355° is 10°
    assert colorization_score(solid([350.0]), solid([10.0])).mean_error_deg == pytest.approx(20.0)
    assert colorization_score(solid([5.0]), solid([355.0])).within_percent == 100.0


def test_colorization_median_and_gray_pixels():
    """One image, 4×4 strokes: 9 pixels off by +10°, 7 by +100°: mean (9·10 + 7·100)/16, median
    offset +10° (within ±18°). A gray output misses everywhere: 90° and 0 %."""
    true = solid([0.0])
    pred_h = torch.full((4, 4), 10.0)
    pred_h.view(-1)[:7] = 100.0
    pred = hsv_to_rgb(pred_h, torch.tensor(1.0), torch.tensor(1.0))[None].float()  # (1, 3, 4, 4)
    score = colorization_score(pred, true)
    assert score.mean_error_deg == pytest.approx((9 * 10 + 7 * 100) / 16)
    assert score.within_percent == 100.0
    gray = colorization_score(torch.full_like(true, 0.7), true)
    assert gray.mean_error_deg == MISS_ERROR and gray.within_percent == 0.0


def test_only_true_strokes_are_scored():
    stroke = torch.zeros(4, 4, dtype=torch.bool)
    stroke[1:3, 1:3] = True
    true = solid([120.0], stroke=stroke)  # black background: no hue, not scored
    pred = solid([150.0])  # every pixel 30° off, background included
    pred[:, :, 0, 0] = torch.tensor([0.0, 0.0, 1.0])  # a wrong color outside the strokes changes nothing
    assert colorization_score(pred, true).mean_error_deg == pytest.approx(30.0)
    with pytest.raises(RbmError, match="no image has stroke pixels"):
        colorization_score(pred, torch.zeros_like(true))


def test_class_hue_match_and_circular_mean():
    images = solid([36.0 * 3 + 10, 36.0 * 3 + 20, 0.0, 350.0])
    percent, with_strokes = class_hue_match(images, torch.tensor([108.0, 108.0, 0.0, 0.0]))
    assert (percent, with_strokes) == (75.0, 4)  # +10 in, +20 out, 0 in, −10 in
    images[2] = 0  # no stroke: a miss
    assert class_hue_match(images, torch.tensor([108.0, 108.0, 0.0, 0.0])) == (50.0, 3)
    hue, sat = stroke_hue_statistics(solid([350.0, 20.0, 20.0], [0.5, 1.0, 1.0]), chunk=2)  # chunks of 2 and 1
    assert hue == pytest.approx(10.1, abs=0.1) and sat == pytest.approx(2.5 / 3)  # circular: not 130


# --- occlusion -----------------------------------------------------------------------------

def test_occluder_bar_rows_and_band_rmse():
    assert bar_height(28) == 4
    images = torch.zeros(200, 3, 28, 28, dtype=torch.uint8)
    occluded, bands = occlude(images, torch.Generator().manual_seed(0))
    assert (bands.sum(1) == 4).all()
    tops = bands.int().argmax(1)
    assert tops.min() == 10 and tops.max() == 14  # 28/2 − 2 ± 2, each reached in 200 draws
    assert torch.equal(occluded.bool(), bands[:, None, :, None].expand_as(occluded))  # 255 exactly there
    again, _ = occlude(images, torch.Generator().manual_seed(0))
    assert torch.equal(again, occluded)
    clean = torch.zeros(2, 1, 4, 4)
    x = clean.clone()
    x[0, :, 1] = 0.5  # band of image 0: row 1, all 0.5 off
    x[1, :, 2, :2] = 1.0  # band of image 1: row 2, half the pixels 1.0 off
    x[1, :, 0] = 1.0  # outside the band: ignored
    bands = band_masks(torch.tensor([1, 2]), 4)  # bar_height(4) = 1: row 1, row 2
    assert bands.tolist() == [[False, True, False, False], [False, False, True, False]]
    assert band_rmse(x, clean, bands) == pytest.approx(math.sqrt((4 * 0.25 + 2 * 1.0) / 8))


# --- classifier ----------------------------------------------------------------------------

def test_classifier_reads_shape_not_brightness(colored_test):
    colored, gray = colored_test
    train = load_dataset("mnist", "train", limit=3000)
    c = train_classifier(train.images, train.labels, 10, seed=0, epochs=2)
    assert c.accuracy(gray.images, gray.labels) > 80  # chance is 10 %
    dim = (gray.images.float() * 0.3).round().to(torch.uint8)  # 30 % brightness: the same digits
    same = (c.predict(colored.images) == c.predict(gray.images)) & (c.predict(dim) == c.predict(gray.images))
    assert same.double().mean() > 0.97  # up to 8-bit rounding of the dimmed pixels
    x = luminance_features(colored.images)
    assert torch.allclose(x.max(1).values, torch.ones(len(x)))


# --- end to end ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def color_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("color") / "run"
    r = runner.invoke(app, ["train", "--dataset", "colored-mnist", "--arch", "conv:4,dense:32", "--limit", "256",
                            "--epochs", "1", "--batch-size", "32", "--sample-steps", "5", "--device", "cpu",
                            "--no-plots", "-q", "--out", str(d)])
    assert r.exit_code == 0, r.output
    return d


def test_colored_run_samples_and_reconstructs_in_color(color_run, tmp_path):
    ckpt = str(color_run / "model.safetensors")
    r = runner.invoke(app, ["sample", ckpt, "-n", "16", "--steps", "5", "-o", str(tmp_path / "s.png"), "-q"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "s.png").mode == "RGB"
    r = runner.invoke(app, ["reconstruct", ckpt, "--dataset", "colored-mnist", "-n", "8", "--gray",
                            "-o", str(tmp_path / "r.png")])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "r.png").mode == "RGB"


def test_evaluate_colorize_occlusion_hue_match_rows(color_run, tmp_path):
    out = tmp_path / "rows.json"
    r = runner.invoke(app, ["evaluate", str(color_run / "model.safetensors"), "--colorize", "--occlusion",
                            "--hue-match", "--limit-train", "600", "--limit-test", "60", "--hue-samples", "12",
                            "--fid-steps", "3", "--device", "cpu", "-q", "--json", str(out)])
    assert r.exit_code == 0, r.output
    rows = {x["metric"]: x for x in json.loads(out.read_text())["results"]}
    hue = rows["colorize_hue_error_deg"]
    assert 0 <= hue["value"] <= 180 and hue["details"]["gray_output_deg"] == MISS_ERROR
    assert rows["colorize_within_18deg_percent"]["details"]["gray_output_percent"] == 0.0
    assert 0 < rows["colorize_hue_error_deg"]["details"]["mean_hue_output_deg"] < 180
    band = rows["occlusion_band_rmse"]
    assert band["details"]["bar_rows"] == 4 and 0 <= band["value"] <= 1
    assert band["details"]["occluded_input_rmse"] > 0.5  # white bar over mostly black pixels
    acc = rows["occlusion_accuracy_percent"]["details"]
    assert acc["clean_percent"] > acc["occluded_percent"]  # the bar hurts the classifier
    match = rows["sample_hue_match_percent"]
    assert 0 <= match["value"] <= 100 and match["details"]["n_samples"] == 12
    assert sum(match["details"]["classes_read"]) == 12
    assert {r["metric"] for r in json.loads((color_run / "eval.json").read_text())["results"]} >= set(rows)


def test_gray_checkpoint_with_colorize_is_one_usage_error(tmp_path):
    run = tmp_path / "gray"
    r = runner.invoke(app, ["train", "--arch", "dense:8", "--limit", "64", "--epochs", "1", "--batch-size", "32",
                            "--sample-steps", "2", "--device", "cpu", "--no-plots", "-q", "--out", str(run)])
    assert r.exit_code == 0, r.output
    for flag in ("--colorize", "--hue-match"):
        r = runner.invoke(app, ["evaluate", str(run / "model.safetensors"), flag, "--svm",
                                "--json", str(tmp_path / "x.json")])
        assert r.exit_code == 2, r.output
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and "color model" in lines[0]
        assert not (tmp_path / "x.json").exists() and not (run / "eval.json").exists()
    r = runner.invoke(app, ["evaluate", str(run / "model.safetensors"), "--occlusion", "--dataset", "folder"])
    assert r.exit_code == 2 and "no test split" in r.output and not (run / "eval.json").exists()
    r = runner.invoke(app, ["evaluate", str(run / "model.safetensors"), "--occlusion", "--limit-train", "300",
                            "--limit-test", "30", "-q"])
    assert r.exit_code == 0, r.output  # occlusion works on gray models
