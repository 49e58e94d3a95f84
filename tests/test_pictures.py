"""Run pictures (filters, curves, hidden activity), TensorBoard events and the HTML report,
on run folders trained for real (odd image sizes, a dense and a conv+dense model)."""

import base64
import json
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image

from rbmcli.train.checkpoint import load_model
from rbmcli.train.config import TrainConfig
from rbmcli.model.dbn import DBN, build_specs
from rbmcli.errors import RbmError
from rbmcli.report.pictures import (CONV_SCALE, TensorBoardLogger, filter_grid, write_curves, write_epoch_pictures,
                             write_hidden_activity)
from rbmcli.report.html import write_report
from rbmcli.data.batches import to_visible
from rbmcli.train.trainer import train
from rbmcli.model.units import Units

PNG_URI = '<img src="data:image/png;base64,'


def make_run(root, arch, shape):
    """Train 2 epochs on random uint8 images; returns (run_dir, dbn, input_shape, rows, v_batch)."""
    images = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    cfg = TrainConfig(arch=arch, visible_units=1, hidden_units=1, epochs=2, batch_size=20, device="cpu",
                      sample_steps=5)
    run = root / "run"
    train(cfg, run, images=images)
    dbn, info = load_model(run / "model.safetensors")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, dbn, tuple(info["input_shape"]), rows, to_visible(images[:256], 1)


@pytest.fixture(scope="module")
def dense_run(tmp_path_factory):
    torch.set_num_threads(1)
    return make_run(tmp_path_factory.mktemp("dense"), "dense:9", (100, 1, 5, 7))


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    torch.set_num_threads(1)
    return make_run(tmp_path_factory.mktemp("conv"), "conv:4:3:2:1,dense:5", (60, 3, 9, 9))


def minmax(x):
    return (x - x.min()) / (x.max() - x.min())


def png_size(path_or_bytes):
    src = BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as img:
        assert img.format == "PNG"
        img.verify()
        return img.size


def test_dense_filters_are_each_hidden_units_weights_as_an_image(dense_run):
    run, dbn, shape, rows, v = dense_run
    tiles = filter_grid(dbn, shape)
    assert tiles.shape == (9, 1, 5, 7)
    w = dbn.layers[0].weight.detach()  # (35, 9)
    for j in range(9):
        torch.testing.assert_close(tiles[j], minmax(w[:, j].reshape(1, 5, 7)))
        assert float(tiles[j].min()) == 0 and float(tiles[j].max()) == 1


def test_conv_filters_are_upscaled_color_kernels(conv_run):
    run, dbn, shape, rows, v = conv_run
    tiles = filter_grid(dbn, shape)
    s = CONV_SCALE
    assert tiles.shape == (4, 3, 3 * s, 3 * s)
    w = dbn.layers[0].weight.detach()  # (4, 3, 3, 3)
    for j in range(4):
        torch.testing.assert_close(tiles[j, :, ::s, ::s], minmax(w[j]))  # nearest: block corners
        assert float(tiles[j].min()) == 0 and float(tiles[j].max()) == 1
    assert torch.equal(tiles[:, :, ::s, ::s].repeat_interleave(s, 2).repeat_interleave(s, 3), tiles)


def test_constant_tile_is_mid_gray_not_nan():
    specs = build_specs("dense:2", (1, 2, 3), Units.make(1, None, "sigmoid"), Units.make(1, None, "sigmoid"))
    dbn = DBN(specs)
    with torch.no_grad():
        dbn.layers[0].weight.zero_()
    assert torch.equal(filter_grid(dbn, (1, 2, 3)), torch.full((2, 1, 2, 3), 0.5))


@pytest.mark.parametrize("which,grid", [("dense", (3 * 9 + 2, 3 * 7 + 2)), ("conv", (2 * 20 + 2, 2 * 20 + 2))])
def test_epoch_pictures_are_pngs_of_the_expected_size(which, grid, dense_run, conv_run, tmp_path):
    run, dbn, shape, rows, v = dense_run if which == "dense" else conv_run
    out = tmp_path / which
    paths = write_epoch_pictures(out, dbn, shape, rows, v)
    assert [p.name for p in paths] == ["filters.png", "filters-epoch002.png", "curves.png", "hidden-activity.png"]
    assert png_size(out / "filters.png") == grid  # (width, height): tiles of W+2 by H+2 plus a border
    assert (out / "filters-epoch002.png").read_bytes() == (out / "filters.png").read_bytes()
    w, h = png_size(out / "curves.png")
    assert w >= 400 and h >= 200
    assert png_size(out / "hidden-activity.png")[0] >= 200
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temp files


def test_plotted_series_equal_metrics_jsonl(conv_run, tmp_path):
    run, dbn, shape, rows, v = conv_run
    rows = [dict(r) for r in rows]
    rows[-1]["eval_fid"] = 12.5  # an evaluation key is plotted too, at its epoch only
    series = write_curves(rows, tmp_path / "curves.png")
    png_size(tmp_path / "curves.png")
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in lines]
    assert epochs == [1, 2]
    expected = {"recon_rmse": (epochs, [r["recon_rmse"] for r in lines]),
                "stack_recon_rmse": (epochs, [r["stack_recon_rmse"] for r in lines]),
                "eval_fid": ([2], [12.5])}
    for key in ("loss_per_unit", "dead_fraction", "saturated_fraction"):  # the raw summed loss is not plotted
        for layer in ("0", "1"):
            expected[f"{key}/{layer}"] = (epochs, [r[key][layer] for r in lines])
    assert series == expected


def test_hidden_activity_reports_dead_and_saturated_units(tmp_path):
    binary = Units.make(1, None, "sigmoid")
    dbn = DBN(build_specs("dense:4,dense:3", (1, 2, 3), binary, binary))
    with torch.no_grad():
        for layer in dbn.layers:
            layer.weight.zero_()
        dbn.layers[0].hidden_bias.copy_(torch.tensor([-50.0, 50.0, 0.0, 2.0]))  # dead, saturated, 0.5, 0.88
        dbn.layers[1].hidden_bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    v = torch.rand(16, 1, 2, 3, generator=torch.Generator().manual_seed(0))
    got = write_hidden_activity(dbn, v, tmp_path / "hidden.png")
    assert got["dead_fraction"] == pytest.approx({"0": 0.25, "1": 2 / 3})
    assert got["saturated_fraction"] == pytest.approx({"0": 0.25, "1": 1 / 3})
    png_size(tmp_path / "hidden.png")


def test_hidden_activity_agrees_with_the_trainers_metrics(conv_run, tmp_path):
    run, dbn, shape, rows, v = conv_run
    got = write_hidden_activity(dbn, v, tmp_path / "hidden.png")
    assert got == {"dead_fraction": rows[-1]["dead_fraction"], "saturated_fraction": rows[-1]["saturated_fraction"]}


class ImgSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        self.links += [v for k, v in attrs.items() if k in ("href", "src") and v and not v.startswith("data:")]


def make_report(run, tmp_path):
    out = tmp_path / "site"
    shutil.copytree(run, out)
    (out / "eval.json").write_text(json.dumps({"svm": {"accuracy": 0.8765432}, "fid": {"value": 42.0}}))
    return out, write_report(out)


def test_report_is_self_contained_html_with_every_picture(dense_run, tmp_path):
    run, dbn, shape, rows, v = dense_run
    write_epoch_pictures(run, dbn, shape, rows, v)
    out, page = make_report(run, tmp_path)
    assert page == out / "report.html"
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    cfg = json.loads((run / "config.json").read_text())
    assert "dense:9" in text and "sample_steps" in text and str(cfg["batch_size"]) in text
    assert f"{rows[-1]['recon_rmse']:.4g}" in text
    assert "0.8765" in text and "accuracy" in text  # eval.json as a table
    # curves, filters, samples of epochs 1 and 2, chain strip, last recon, hidden activity
    assert text.count(PNG_URI) == 7
    parser = ImgSources()
    parser.feed(text)
    assert parser.links == [] and "http://" not in text and "https://" not in text  # no external resources
    for src in parser.srcs:
        png_size(base64.b64decode(src.split(",", 1)[1]))
    samples = [base64.b64decode(s.split(",", 1)[1]) for s in parser.srcs]
    assert (run / "samples-epoch001.png").read_bytes() in samples
    assert (run / "samples-epoch002.png").read_bytes() in samples


def test_report_without_pictures_draws_filters_from_the_checkpoint(conv_run, tmp_path):
    run, *_ = conv_run
    out = tmp_path / "bare"
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("filters*.png", "hidden-activity.png"))
    text = write_report(out, tmp_path / "elsewhere" / "r.html").read_text()
    assert text.count(PNG_URI) == 6  # curves, filters (from model.safetensors), 2 samples, chains, recon


def test_report_of_a_folder_without_metrics_is_one_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(RbmError, match="no metrics.jsonl"):
        write_report(tmp_path)
    with pytest.raises(RbmError, match="does not exist"):
        write_report(tmp_path / "missing")
    assert not (tmp_path / "report.html").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(dense_run, tmp_path):
    run, *_ = dense_run
    out, page = make_report(run, tmp_path)
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
           f"--screenshot={shot}", "--window-size=1200,2000", page.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert shot.is_file(), r.stderr[-2000:]
    assert png_size(shot) == (1200, 2000)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 20  # text, tables and pictures, not a blank page


def test_tensorboard_events_hold_the_metrics(dense_run, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, dbn, shape, rows, v = dense_run
    out = tmp_path / "tbrun"
    shutil.copytree(run, out)
    write_epoch_pictures(out, dbn, shape, rows, v)
    logger = TensorBoardLogger(out)
    for row in rows:
        logger.log_epoch(row)
    logger.close()
    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0, "images": 0}).Reload()
    for tag, get in [("loss/0", lambda r: r["loss"]["0"]), ("recon_rmse", lambda r: r["recon_rmse"]),
                     ("stack_recon_rmse", lambda r: r["stack_recon_rmse"]),
                     ("dead_fraction/0", lambda r: r["dead_fraction"]["0"])]:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2]
        assert [e.value for e in events] == pytest.approx([get(r) for r in rows], rel=1e-6)  # float32
    images = acc.Tags()["images"]
    assert {"samples", "recon", "filters"} <= set(images)
    assert [e.step for e in acc.Images("samples")] == [1, 2]


def test_tensorboard_missing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now raises ImportError
    with pytest.raises(RbmError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path)
