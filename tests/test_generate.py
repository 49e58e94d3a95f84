"""Sampling and reconstruction: Gibbs chains against the exact p(v) by enumeration, the
library's samples and files, a trained model reconstructing better than an untrained one,
and `rbm sample` / `rbm reconstruct` through CliRunner (exit codes, one-line errors)."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from rbmcli.train.checkpoint import save_model
from rbmcli.cli import app
from rbmcli.train.config import TrainConfig
from rbmcli.generate.samples import sample_images, write_samples
from rbmcli.generate.reconstruct import load_user_images, reconstruct_images, to_gray, write_reconstructions
from rbmcli.model.sampling import generate, gibbs_step
from rbmcli.train.trainer import Trainer, build_dbn

runner = CliRunner()


def make_ckpt(path, shape=(1, 8, 8), arch="dense:16", n_units=255, std=1.0, seed=0):
    """A fresh DBN with weights large enough to give non-trivial images, saved as a checkpoint."""
    cfg = TrainConfig(arch=arch, visible_units=n_units, hidden_units=n_units, init_std=std, seed=seed, device="cpu")
    dbn = build_dbn(cfg, shape)
    save_model(path, dbn, shape, {"config": cfg.to_json(), "dataset": "folder", "size": str(shape[-1])})
    return path, dbn


def tiny_binary_rbm(seed=3):
    """V = 4 (as a 1×2×2 image), H = 3 binary units with weights ~ N(0, 1.5²): a clearly
    non-uniform p(v). For N = k = 1 natural and physical parameters coincide."""
    cfg = TrainConfig(arch="dense:3", visible_units=1, hidden_units=1, device="cpu")
    dbn = build_dbn(cfg, (1, 2, 2))
    g = torch.Generator().manual_seed(seed)
    rbm = dbn.layers[0]
    with torch.no_grad():
        rbm.weight.copy_(torch.randn(4, 3, generator=g) * 1.5)
        rbm.visible_bias.copy_(torch.randn(4, generator=g))
        rbm.hidden_bias.copy_(torch.randn(3, generator=g))
    return cfg, dbn


def exact_p(rbm):
    """All 16 visible states (16, 4) and p(v) ∝ exp(−F(v)) by enumeration."""
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))
    with torch.no_grad():
        return states, torch.softmax(-rbm.free_energy(states), 0)


def test_gibbs_chains_reproduce_exact_p_v():
    """20000 independent chains × 200 steps; TV(empirical, exact) < 0.03. With n = 20000 draws
    over 16 states the sampling noise alone gives E[TV] ≤ ½·√(2/π)·√(16/n) ≈ 0.011, so 0.03 is
    ~3× the noise, while a wrong sampler (or no mixing: the uniform start) is far above it."""
    _, dbn = tiny_binary_rbm()
    rbm = dbn.layers[0]
    states, p = exact_p(rbm)
    g = torch.Generator().manual_seed(0)
    v = (torch.rand(20000, 4, generator=g) < 0.5).float()
    for _ in range(200):
        v = gibbs_step(rbm, v, g)
    idx = (v * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()  # itertools.product order
    empirical = torch.bincount(idx, minlength=16).float() / len(v)
    assert 0.5 * (empirical - p).abs().sum() < 0.03
    assert 0.5 * (1 / 16 - p).abs().sum() > 0.15  # the test can tell: the start is far from p


def test_sample_images_mean_matches_exact_expectation(tmp_path):
    """Through the library (checkpoint, chunks, last visible a mean): the average sample equals
    E_p[v] by enumeration (E[E[v|h]] = E[v] at stationarity). Std of the estimate ≤ 0.5/√n."""
    cfg, dbn = tiny_binary_rbm()
    save_model(tmp_path / "m.safetensors", dbn, (1, 2, 2), {"config": cfg.to_json()})
    states, p = exact_p(dbn.layers[0])
    r = sample_images(tmp_path / "m.safetensors", n=8000, steps=100, device="cpu", batch_size=4000)
    assert r.images.shape == (8000, 1, 2, 2)
    assert torch.allclose(r.images.flatten(1).mean(0), p @ states, atol=0.02)


def test_samples_shape_range_seed_and_files(tmp_path):
    ck, dbn = make_ckpt(tmp_path / "m.safetensors")
    r = sample_images(ck, n=10, steps=6, device="cpu", batch_size=4, every=2, seed=1)
    assert r.images.shape == (10, 1, 8, 8) and r.images.dtype == torch.float32
    assert 0 <= r.images.min() and r.images.max() <= 1 and r.images.std() > 0.01
    assert len(r.frames) == 3 and r.frames[0].shape == (4, 1, 8, 8)  # first chunk's chains, every 2 steps
    again = sample_images(ck, n=10, steps=6, device="cpu", batch_size=4, every=2, seed=1)
    assert torch.equal(r.images, again.images)
    assert not torch.equal(r.images, sample_images(ck, n=10, steps=6, device="cpu", batch_size=4, seed=2).images)
    write_samples(r, tmp_path / "a.png", individual_dir=tmp_path / "ind", strip_png=tmp_path / "strip.png")
    write_samples(again, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # same seed ⇒ same PNG
    with Image.open(tmp_path / "a.png") as im:  # 4 per row, 3 rows of 8 px tiles, 2 px padding
        assert im.size == (4 * 10 + 2, 3 * 10 + 2) and im.mode == "L"
    assert len(list((tmp_path / "ind").glob("sample_*.png"))) == 10
    with Image.open(tmp_path / "strip.png") as im:  # rows: 4 chains; columns: 3 times
        assert im.size == (3 * 10 + 2, 4 * 10 + 2)


def test_sample_images_equals_sampling_generate(tmp_path):
    """One chunk of sample_images is exactly `sampling.generate` with the same generator."""
    ck, dbn = make_ckpt(tmp_path / "m.safetensors", arch="dense:16,dense:8", n_units=1)
    r = sample_images(ck, n=5, steps=7, device="cpu", seed=4)
    ref, _ = generate(dbn, 5, 7, torch.Generator().manual_seed(4))
    assert torch.allclose(r.images, ref.reshape(5, 1, 8, 8), atol=1e-6)


def test_data_init_without_steps_returns_the_data(tmp_path):
    ck, _ = make_ckpt(tmp_path / "m.safetensors", arch="conv:4")
    folder = tmp_path / "imgs"
    folder.mkdir()
    arrays = [np.random.default_rng(i).integers(0, 256, (8, 8), dtype=np.uint8) for i in range(3)]
    for i, a in enumerate(arrays):
        Image.fromarray(a, "L").save(folder / f"{i}.png")
    r = sample_images(ck, n=5, steps=0, init="data", dataset="folder", data_dir=folder, device="cpu")
    expected = torch.from_numpy(np.stack(arrays))[:, None].float() / 255
    assert torch.allclose(r.images, expected[[0, 1, 2, 0, 1]], atol=1e-5)  # cycled when n > images


def bars(n=200, seed=0):
    """uint8 (n, 1, 8, 8): one full horizontal or vertical bar per image (16 patterns)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    for i, k in enumerate(torch.randint(0, 16, (n,), generator=g).tolist()):
        if k < 8:
            x[i, 0, k, :] = 255
        else:
            x[i, 0, :, k - 8] = 255
    return x


def test_trained_model_reconstructs_better_than_untrained(tmp_path):
    images = bars()
    cfg = TrainConfig(arch="tiny", visible_units=1, hidden_units=1, epochs=30, batch_size=20, lr=0.1,
                      device="cpu", keep=0)
    fresh = tmp_path / "fresh.safetensors"
    save_model(fresh, build_dbn(cfg, (1, 8, 8)), (1, 8, 8), {"config": cfg.to_json()})
    result = Trainer(cfg, tmp_path / "run", images).run()  # 300 Adam steps
    target = images.float() / 255
    mse = {name: float((reconstruct_images(ck, images, device="cpu") - target).pow(2).mean())
           for name, ck in (("trained", result.checkpoint), ("fresh", fresh))}
    assert mse["trained"] < 0.3 * mse["fresh"], mse
    # Gibbs steps in the top RBM still reconstruct (the chain starts at the data).
    steps_mse = float((reconstruct_images(result.checkpoint, images, steps=2, device="cpu") - target).pow(2).mean())
    assert steps_mse < mse["fresh"], (steps_mse, mse)


def test_to_gray_and_write_reconstructions(tmp_path):
    color = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    gray = to_gray(color, 3)
    assert torch.equal(gray[:, 0], gray[:, 2])
    pil = np.array(Image.fromarray(color[0].permute(1, 2, 0).numpy(), "RGB").convert("L"))
    assert torch.equal(gray[0, 0], torch.from_numpy(pil))  # Pillow's luminance
    write_reconstructions(color, torch.rand(5, 3, 8, 8), tmp_path / "r.png", per_row=2)
    with Image.open(tmp_path / "r.png") as im:  # 3 row pairs of 2 images
        assert im.size == (2 * 10 + 2, 6 * 10 + 2)


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(r):
    lines = [line for line in r.output.splitlines() if line.strip()]
    return len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in r.output


def test_cli_sample_writes_png_and_refuses_overwrite(tmp_path):
    ck, _ = make_ckpt(tmp_path / "m.safetensors")
    out = tmp_path / "grid.png"
    args = ["sample", ck, "-n", 9, "--steps", 3, "-o", out, "--device", "cpu"]
    r = run(*args, "--every", 1, "--strip", tmp_path / "s.png", "--individual", tmp_path / "ind")
    assert r.exit_code == 0, r.output
    assert "samples/s" in r.output and len(list((tmp_path / "ind").glob("*.png"))) == 9
    with Image.open(out) as im:
        assert im.size == (3 * 10 + 2, 3 * 10 + 2)
    before = out.read_bytes()
    r = run(*args, "--seed", 5)
    assert r.exit_code == 1 and one_error_line(r) and "--force" in r.output
    assert out.read_bytes() == before
    assert run(*args, "--seed", 5, "--force").exit_code == 0 and out.read_bytes() != before
    r = run("sample", ck, "-o", tmp_path / "x.png", "--strip", tmp_path / "y.png")
    assert r.exit_code == 2 and "--every" in r.output
    r = run("sample", tmp_path / "nothing.safetensors", "-o", tmp_path / "x.png")
    assert r.exit_code == 1 and one_error_line(r) and not (tmp_path / "x.png").exists()


def save(img, path):
    img.save(path)
    return path


@pytest.fixture
def gray_model(tmp_path):
    return make_ckpt(tmp_path / "gray.safetensors", (1, 12, 12))[0]


def bad_inputs(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image\n")
    good = save(Image.new("RGB", (20, 20), (200, 30, 30)), tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    return {"missing": tmp_path / "missing.png", "empty": tmp_path / "empty.png", "text": tmp_path / "text.png",
            "truncated": tmp_path / "trunc.png"}


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated"])
def test_cli_reconstruct_bad_inputs_exit_1(tmp_path, gray_model, kind):
    bad = bad_inputs(tmp_path)[kind]
    out = tmp_path / "out.png"
    r = run("reconstruct", gray_model, tmp_path / "good.png", bad, "-o", out, "--device", "cpu")
    assert r.exit_code == 1, r.output
    assert one_error_line(r) and bad.name in r.output
    assert not out.exists() and not list(tmp_path.glob(".out.png*"))


def test_cli_reconstruct_decompression_bomb(tmp_path, gray_model, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # a 20×20 image now counts as a bomb
    big = save(Image.new("L", (20, 20)), tmp_path / "big.png")
    r = run("reconstruct", gray_model, big, "-o", tmp_path / "out.png", "--device", "cpu")
    assert r.exit_code == 1 and one_error_line(r) and "big.png" in r.output
    assert not (tmp_path / "out.png").exists()


def test_cli_reconstruct_converts_odd_modes(tmp_path, gray_model):
    rgba = Image.new("RGBA", (16, 12), (10, 200, 30, 128))
    pal = Image.new("RGB", (12, 12), (0, 0, 255)).convert("P")
    deep = Image.fromarray(np.arange(144, dtype=np.uint16).reshape(12, 12) * 400)
    assert deep.mode.startswith("I;16")
    color = Image.new("RGB", (30, 24), (255, 128, 0))
    files = [save(im, tmp_path / f"{name}.png") for name, im in
             (("rgba", rgba), ("pal", pal), ("deep", deep), ("color", color))]
    images, names = load_user_images(files, 1, 12)
    assert images.shape == (4, 1, 12, 12) and names[0].endswith("rgba.png")
    assert int(images[3].float().mean().round()) == round(0.299 * 255 + 0.587 * 128)  # luminance of orange
    r = run("reconstruct", gray_model, *files, "-o", tmp_path / "out.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "out.png") as im:  # 4 originals above 4 reconstructions
        assert im.size == (4 * 14 + 2, 2 * 14 + 2)
    folder = tmp_path / "f"
    folder.mkdir()
    save(color, folder / "a.jpg")
    r = run("reconstruct", gray_model, folder, "-o", tmp_path / "out2.png", "--device", "cpu", "--steps", 3)
    assert r.exit_code == 0, r.output
    (tmp_path / "e").mkdir()
    r = run("reconstruct", gray_model, tmp_path / "e", "-o", tmp_path / "out3.png", "--device", "cpu")
    assert r.exit_code == 1 and one_error_line(r)


def test_cli_reconstruct_usage_and_gray_color_model(tmp_path, gray_model):
    r = run("reconstruct", gray_model, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "--dataset" in r.output
    img = save(Image.new("RGB", (12, 12), (0, 90, 250)), tmp_path / "c.png")
    r = run("reconstruct", gray_model, img, "--dataset", "folder", "-o", tmp_path / "o.png")
    assert r.exit_code == 2
    color_model, _ = make_ckpt(tmp_path / "rgb.safetensors", (3, 8, 8), arch="conv:4,dense:8")
    r = run("reconstruct", color_model, img, "--gray", "-o", tmp_path / "g.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "g.png") as im:
        a = np.asarray(im.convert("RGB"))
    assert im.size == (12, 22) and (a[2:10, 2:10, 0] == a[2:10, 2:10, 2]).all()  # the input row is gray
    r = run("reconstruct", color_model, "--dataset", "folder", "--data-dir", tmp_path, "-n", 1,
            "-o", tmp_path / "d.png", "--device", "cpu")
    assert r.exit_code == 0, r.output
