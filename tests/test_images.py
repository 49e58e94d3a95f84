"""Tests for rbmcli.data.images: mode conversion, error handling, atomic PNG writing."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from rbmcli.data import images as im
from rbmcli.errors import RbmError


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


@pytest.fixture
def rgb_array():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)  # (H, W, C), prime sizes


def test_png_roundtrip_exact(tmp_path, rgb_array):
    path = _save(Image.fromarray(rgb_array), tmp_path / "a.png")
    x = im.load_image(path, 3, None)
    assert x.dtype == torch.uint8 and x.shape == (3, 5, 7)
    assert torch.equal(x, torch.from_numpy(rgb_array).permute(2, 0, 1))


def test_rgb_to_gray_is_pil_luminance(tmp_path, rgb_array):
    path = _save(Image.fromarray(rgb_array), tmp_path / "a.png")
    x = im.load_image(path, 1, None)
    expected = np.asarray(Image.fromarray(rgb_array).convert("L"))
    assert x.shape == (1, 5, 7) and np.array_equal(x[0].numpy(), expected)


def test_gray_replicated_to_rgb(tmp_path):
    a = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    x = im.load_image(_save(Image.fromarray(a, "L"), tmp_path / "g.png"), 3, None)
    assert x.shape == (3, 5, 7) and all(np.array_equal(c.numpy(), a) for c in x)
    assert im.load_image(tmp_path / "g.png", None, None).shape == (1, 5, 7)  # native stays gray


def test_rgba_and_la_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (0, 0, 255, 0)  # fully transparent → white
    rgba[1, :] = (0, 0, 0, 128)  # half black over white → ~127
    x = im.load_image(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"), 3, None)
    assert x[:, 0, 0].tolist() == [255, 0, 0]
    assert x[:, 0, 1].tolist() == [255, 255, 255]
    assert all(126 <= v <= 128 for v in x[:, 1, 0].tolist())
    la = Image.fromarray(np.array([[[10, 255], [200, 0]]], np.uint8), "LA")
    y = im.load_image(_save(la, tmp_path / "la.png"), 1, None)
    assert y.shape == (1, 1, 2) and y[0, 0].tolist() == [10, 255]


def test_palette_with_and_without_transparency(tmp_path):
    p = Image.new("P", (3, 1))
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    p.putdata([0, 1, 2])
    x = im.load_image(_save(p, tmp_path / "p.png"), 3, None)
    assert x[:, 0].T.tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    x = im.load_image(_save(p, tmp_path / "pt.png", transparency=1), 3, None)
    assert x[:, 0, 1].tolist() == [255, 255, 255]  # index 1 is transparent → white
    gif = im.load_image(_save(p, tmp_path / "p.gif"), 1, None)
    assert gif.shape == (1, 1, 3)


def test_cmyk_converts_to_rgb(tmp_path):
    cmyk = Image.new("CMYK", (4, 3), (0, 255, 255, 0))  # pure red in naive CMYK
    x = im.load_image(_save(cmyk, tmp_path / "c.jpg", quality=100), 3, None)
    assert x.shape == (3, 3, 4)
    assert x[0].float().mean() > 200 and x[1].float().mean() < 60 and x[2].float().mean() < 60


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257, 32896, 65535]], np.uint16)
    img = Image.fromarray(a)
    assert img.mode == "I;16"
    x = im.load_image(_save(img, tmp_path / "s.png"), 1, None)
    assert x[0, 0].tolist() == [0, 1, 128, 255]
    tif = im.load_image(_save(img, tmp_path / "s.tif"), 3, None)
    assert tif[:, 0, 3].tolist() == [255, 255, 255]
    wide = im.to_channels(Image.fromarray(a.astype(np.int32), "I"), 1)  # 32-bit 'I' from 16-bit data
    assert np.asarray(wide).tolist() == [[0, 1, 128, 255]]


def test_center_crop_resize(tmp_path):
    a = np.zeros((10, 30), np.uint8)
    a[:, 10:20] = 255  # the central square is white, the sides black
    out = im.center_crop_resize(Image.fromarray(a, "L"), 5)
    assert out.size == (5, 5) and np.asarray(out).min() == 255
    same = Image.fromarray(a, "L")
    assert im.center_crop_resize(same, None) is same


@pytest.mark.parametrize("make, match", [
    (lambda p: p, "not found"),
    (lambda p: (p.mkdir(), p)[1], "directory"),
    (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    (lambda p: (p.write_bytes(b"hello, this is text" * 10), p)[1], "not an image"),
])
def test_open_image_errors(tmp_path, make, match):
    with pytest.raises(RbmError, match=match):
        im.open_image(make(tmp_path / "x.png"))


def test_truncated_image_raises(tmp_path, rgb_array):
    buf = io.BytesIO()
    Image.fromarray(np.tile(rgb_array, (20, 20, 1))).save(buf, "PNG")
    path = tmp_path / "t.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(RbmError, match="truncated or corrupt"):
        im.open_image(path)
    jpg = tmp_path / "t.jpg"
    Image.fromarray(np.tile(rgb_array, (20, 20, 1))).save(buf := io.BytesIO(), "JPEG")
    jpg.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(RbmError, match="truncated or corrupt"):
        im.open_image(jpg)


@pytest.mark.parametrize("limit", [90, 40])  # 100 pixels: PIL warns above limit, errors above 2 * limit
def test_decompression_bomb_raises(tmp_path, monkeypatch, limit):
    path = _save(Image.new("L", (10, 10)), tmp_path / "b.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(RbmError, match="too large"):
        im.open_image(path)


def test_save_png_grid_and_no_temp_file(tmp_path):
    x = torch.rand(5, 3, 4, 6)
    path = im.save_png(x, tmp_path / "deep" / "grid.png")  # parents created
    with Image.open(path) as img:
        img.load()
        # nrow = ceil(sqrt(5)) = 3 columns, 2 rows; padding 2 around every cell
        assert img.mode == "RGB" and img.size == (3 * (6 + 2) + 2, 2 * (4 + 2) + 2)
        cell = np.asarray(img)[2:6, 2:8].transpose(2, 0, 1)
    assert np.array_equal(cell, (x[0] * 255).round().to(torch.uint8).numpy())
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]


@pytest.mark.parametrize("n, nrow, padding", [(1, 1, 2), (5, 3, 2), (6, 4, 0), (7, 2, 3), (3, 8, 1)])
def test_image_grid_equals_torchvision_make_grid(n, nrow, padding):
    from torchvision.utils import make_grid

    x = torch.rand(n, 3, 5, 7)
    assert torch.equal(im.image_grid(x, nrow, padding), make_grid(x, nrow=nrow, padding=padding))


def test_save_png_uint8_gray_exact(tmp_path):
    x = torch.randint(0, 256, (2, 1, 3, 5), dtype=torch.uint8)
    path = im.save_png(x, tmp_path / "g.png", nrow=1, padding=0)
    with Image.open(path) as img:
        assert img.mode == "L" and img.size == (5, 6)
        assert np.array_equal(np.asarray(img), torch.cat([x[0, 0], x[1, 0]]).numpy())


def test_save_png_rejects_bad_shape(tmp_path):
    with pytest.raises(RbmError, match="shape"):
        im.save_png(torch.rand(3, 4, 4), tmp_path / "x.png")


def test_save_individual(tmp_path):
    x = torch.randint(0, 256, (3, 3, 2, 2), dtype=torch.uint8)
    paths = im.save_individual(x, tmp_path / "out", "sample")
    assert [p.name for p in paths] == ["sample_0000.png", "sample_0001.png", "sample_0002.png"]
    assert torch.equal(im.load_image(paths[2], 3, None), x[2])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]


def test_list_image_files(tmp_path):
    for name in ["b/x.JPG", "a.png", "b/c/y.tiff", "notes.txt", "z.webp", "q.Jpeg"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in im.list_image_files(tmp_path)]
    assert found == ["a.png", "b/c/y.tiff", "b/x.JPG", "q.Jpeg", "z.webp"]
    with pytest.raises(RbmError, match="folder"):
        im.list_image_files(tmp_path / "missing")
