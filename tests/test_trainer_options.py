"""Options that change how training runs, through the trainer and the CLI: bf16 autocast,
channels_last, stochastic binarisation, and `rbm report` on the run folder that results."""

import base64
import json

import torch
from typer.testing import CliRunner

from rbmcli.cli import app
from rbmcli.data.datasets import load_dataset
from rbmcli.train.checkpoint import load_model
from rbmcli.train.config import TrainConfig
from rbmcli.train.trainer import load_training_images, train

runner = CliRunner()


def images(n=120, seed=0):
    """Smooth random 1×9×11 images (uint8): blobs a conv layer can learn."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, 1, 1, generator=g) * torch.tensor([9.0, 11.0]).view(1, 2, 1, 1)
    yy, xx = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    d2 = (yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2
    return (255 * torch.exp(-d2 / 6)).round().to(torch.uint8)[:, None]


def conv_cfg(**kw):
    return TrainConfig(recipe="paper", arch="conv:5:3:2:1,dense:7", epochs=8, batch_size=20, device="cpu", sample_steps=3, **kw)


def test_bf16_and_channels_last_train_like_fp32(tmp_path):
    """The trainer under bf16 autocast with channels_last inputs trains the same model as in
    float32: finite losses, weights that moved, and a reconstruction error within 10 % of the
    float32 run's (bf16 rounds the pre-activations to 8 bits of mantissa)."""
    x = images()
    ref = train(conv_cfg(), tmp_path / "fp32", images=x)
    low = train(conv_cfg(precision="bf16", channels_last=True), tmp_path / "bf16", images=x)
    first, last = ref.metrics[0], ref.metrics[-1]
    assert last["recon_rmse"] < 0.85 * first["recon_rmse"]  # the float32 run learned (measured 0.240 → 0.184)
    assert all(torch.isfinite(torch.tensor(list(r["loss"].values()))).all() for r in low.metrics)
    assert abs(low.metrics[-1]["recon_rmse"] - last["recon_rmse"]) < 0.1 * last["recon_rmse"]
    a, _ = load_model(ref.checkpoint)
    b, info = load_model(low.checkpoint)
    assert info["config"]["precision"] == "bf16" and info["config"]["channels_last"] is True
    w_a, w_b = a.layers[0].weight.detach(), b.layers[0].weight.detach()
    assert not torch.equal(w_a, w_b) and torch.allclose(w_a, w_b, atol=0.25 * float(w_a.abs().max()))  # measured 0.13


def test_binarize_sample_draws_each_pixel_once_from_its_intensity():
    """--binarize sample: pixels in {0, 255}, drawn as Bernoulli(pixel/255) with the run's seed
    (the same images for the same seed, others for another), with the gray image's mean."""
    cfg = TrainConfig(dataset="mnist", limit=500, visible_units=1, binarize="sample", batch_size=50)
    gray = load_dataset("mnist", "train", None, limit=500).images
    once, again = load_training_images(cfg), load_training_images(cfg)
    other = load_training_images(TrainConfig(dataset="mnist", limit=500, visible_units=1, binarize="sample",
                                             batch_size=50, seed=1))
    assert set(once.unique().tolist()) == {0, 255} and torch.equal(once, again) and not torch.equal(once, other)
    p, drawn = gray.double() / 255, once.double() / 255
    n = p.numel()
    assert abs(drawn.mean() - p.mean()) < 5 * float((p * (1 - p)).sum().sqrt()) / n  # 5 standard errors
    assert torch.equal(drawn[gray == 0], torch.zeros_like(drawn[gray == 0]))  # black stays black
    assert torch.equal(drawn[gray == 255], torch.ones_like(drawn[gray == 255]))  # white stays white


def test_rbm_report_end_to_end(tmp_path):
    """rbm train → rbm evaluate → rbm report: one HTML page that inlines the run's own pictures,
    shows its config and per-epoch metrics and the evaluation rows; it refuses to overwrite."""
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", "--dataset", "mnist", "--limit", "200", "--arch", "dense:9", "--epochs", "2",
                            "--batch-size", "50", "--visible-units", "1", "--binarize", "threshold",
                            "--sample-steps", "3", "--device", "cpu", "-q", "--out", str(run)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["evaluate", str(run / "model.safetensors"), "--ais", "--limit-train", "200",
                            "--limit-test", "100", "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["report", str(run)])
    assert r.exit_code == 0, r.output
    page = run / "report.html"
    assert "wrote" in r.output and page.is_file()
    text = page.read_text()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert "dense:9" in text and f"{rows[-1]['recon_rmse']:.4g}" in text
    assert "test_log_likelihood_nats" in text  # the evaluation recorded in the run folder
    inlined = [base64.b64decode(chunk.split('"', 1)[0]) for chunk in text.split('src="data:image/png;base64,')[1:]]
    assert (run / "samples-epoch002.png").read_bytes() in inlined
    assert "http://" not in text and "https://" not in text
    r = runner.invoke(app, ["report", str(run)])
    assert r.exit_code == 1 and "--force" in r.output
