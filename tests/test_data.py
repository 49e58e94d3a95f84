"""Tests for rbmcli.data.datasets: every loader reads fixtures written in the real on-disk formats."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from rbmcli.data import datasets as data
from rbmcli.data.datasets import load_dataset
from rbmcli.data.formats import read_idx
from rbmcli.errors import RbmError

ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
              "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
              "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
              "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
              "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    """IDX as in MNIST: 00 00 08 <ndim>, big-endian uint32 dims, uint8 data."""
    raw = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open(str(path) + ".gz", "wb") if gz else open(path, "wb")) as f:
        f.write(raw)


def write_mnist_layout(root, sub: str, gz: bool, seed: int = 0):
    """torchvision's `<root>/<sub>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`; returns arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", 7), ("t10k", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(root / sub / "raw" / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / sub / "raw" / f"{prefix}-labels-idx1-ubyte", labels, gz)
        arrays[prefix] = (images, labels)
    return arrays


def cifar_arrays(n: int, seed: int):
    """CIFAR rows (n, 3072): R plane, G plane, B plane, each 32x32 row-major; labels list."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), [int(v) for v in rng.integers(0, 10, n)]


def write_cifar_py(root, protocol: int = 2):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": cifar_arrays(2, i) for i in range(1, 6)} | {"test_batch": cifar_arrays(3, 9)}
    for name, (rows, labels) in batches.items():
        entry = {b"batch_label": name.encode(), b"labels": labels, b"data": rows,
                 b"filenames": [f"f{i}.png".encode() for i in range(len(labels))]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=protocol)
    names = [n.encode() for n in data.CIFAR_CLASSES]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": 3072}, f, protocol=protocol)
    return batches


def write_cifar_bin(root):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": cifar_arrays(2, i) for i in range(1, 6)} | {"test_batch": cifar_arrays(3, 9)}
    for name, (rows, labels) in batches.items():
        records = np.concatenate([np.array(labels, np.uint8)[:, None], rows], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(data.CIFAR_CLASSES) + "\n\n")
    return batches


def solid_jpg(path, level: int, size=(12, 9), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, level if mode == "L" else (level, level, level)).save(path, quality=100)


# ---------------------------------------------------------------- MNIST / Fashion-MNIST


def test_idx_reader_validates(tmp_path):
    good = tmp_path / "ok-ubyte"
    write_idx(good, np.arange(6, dtype=np.uint8).reshape(2, 3), gz=False)
    assert read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "magic").write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(RbmError, match="not an IDX"):
        read_idx(tmp_path / "magic")
    (tmp_path / "short").write_bytes(good.read_bytes()[:-1])
    with pytest.raises(RbmError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(RbmError, match="corrupt"):
        read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_torchvision_layout(tmp_path, gz):
    arrays = write_mnist_layout(tmp_path, "MNIST", gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        ds = load_dataset("mnist", split, data_dir=tmp_path)
        images, labels = arrays[prefix]
        assert ds.images.dtype == torch.uint8 and ds.images.shape == (len(labels), 1, 28, 28)
        assert np.array_equal(ds.images[:, 0].numpy(), images)
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels.tolist()
        assert ds.classes == [str(d) for d in range(10)]


def test_mnist_limit_channels_size(tmp_path):
    images, labels = write_mnist_layout(tmp_path, "MNIST", True)["train"]
    ds = load_dataset("mnist", data_dir=tmp_path, limit=4, channels=3, size=14)
    assert ds.images.shape == (4, 3, 14, 14) and ds.labels.tolist() == labels[:4].tolist()
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])
    small = np.asarray(Image.fromarray(images[1]).resize((14, 14), Image.Resampling.LANCZOS))
    assert np.array_equal(ds.images[1, 0].numpy(), small)


def test_mnist_mismatched_counts(tmp_path):
    write_mnist_layout(tmp_path, "MNIST", True)
    write_idx(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(RbmError, match="labels"):
        load_dataset("mnist", data_dir=tmp_path)


def test_real_packaged_mnist():
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9] and test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    counts = torch.bincount(train.labels, minlength=10)
    assert counts.numel() == 10 and counts.min() > 5000 and counts.max() < 7000
    assert 30 < train.images.float().mean() < 36  # MNIST's mean intensity is 33.3


def test_fashion_from_torchvision_layout(tmp_path):
    images, labels = write_mnist_layout(tmp_path, "FashionMNIST", False, seed=4)["t10k"]
    ds = load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    assert np.array_equal(ds.images[:, 0].numpy(), images) and ds.labels.tolist() == labels.tolist()
    assert ds.classes[0] == "T-shirt/top"


@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(),
                    reason="Debian's fashion-mnist package is not installed in /usr/share/datasets")
def test_real_debian_fashion_mnist(tmp_path):
    test = load_dataset("fashion-mnist", "test", data_dir=tmp_path)  # empty data_dir: falls back
    assert test.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(test.labels).tolist() == [1000] * 10


# ---------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("writer", [write_cifar_py, lambda root: write_cifar_py(root, protocol=5), write_cifar_bin])
def test_cifar_planes_labels_and_classes(tmp_path, writer):
    batches = writer(tmp_path)
    train = load_dataset("cifar10", data_dir=tmp_path)
    rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.images.shape == (10, 3, 32, 32) and train.labels.tolist() == labels
    for c in range(3):  # channel c is the c-th plane of 1024 bytes, row-major
        assert np.array_equal(train.images[:, c].reshape(10, -1).numpy(), rows[:, c * 1024:(c + 1) * 1024])
    assert train.images[3, 1, 2, 5].item() == rows[3, 1024 + 2 * 32 + 5]  # G at row 2, column 5
    assert train.classes == data.CIFAR_CLASSES
    test = load_dataset("cifar10", "test", data_dir=tmp_path, channels=1, limit=2)
    rgb = batches["test_batch"][0][1].reshape(3, 32, 32).transpose(1, 2, 0)
    assert test.images.shape == (2, 1, 32, 32) and test.labels.tolist() == batches["test_batch"][1][:2]
    assert np.array_equal(test.images[1, 0].numpy(), np.asarray(Image.fromarray(rgb).convert("L")))


class Evil:
    def __reduce__(self):
        return os.system, ("touch pwned",)


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    write_cifar_py(tmp_path)
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(RbmError, match="Refusing to unpickle.*system"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_cifar_malformed_and_missing(tmp_path):
    with pytest.raises(RbmError, match=r"cifar-10-batches-py.*--download"):
        load_dataset("cifar10", data_dir=tmp_path)
    write_cifar_bin(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(bytes(3000))
    with pytest.raises(RbmError, match="3073"):
        load_dataset("cifar10", "test", data_dir=tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    with pytest.raises(RbmError, match="data_batch_4.bin is missing"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_download_flag_is_the_only_way_to_fetch(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "_download", lambda req: calls.append(req.name) or write_cifar_bin(req.folder))
    with pytest.raises(RbmError):
        load_dataset("cifar10", data_dir=tmp_path)
    assert calls == []
    assert len(load_dataset("cifar10", data_dir=tmp_path, download=True)) == 10 and calls == ["cifar10"]


# ---------------------------------------------------------------- Caltech-101


@pytest.fixture
def caltech(tmp_path):
    folder = tmp_path / "caltech101" / "101_ObjectCategories"
    for i in range(33):
        solid_jpg(folder / "accordion" / f"image_{i + 1:04d}.jpg", 7 * i)
    for i in range(4):
        solid_jpg(folder / "camera" / f"image_{i + 1:04d}.jpg", 7 * i, mode="L" if i == 0 else "RGB")
    solid_jpg(folder / "BACKGROUND_Google" / "image_0001.jpg", 99)
    return tmp_path


def test_caltech_split_30_per_class(caltech):
    train = load_dataset("caltech101", "train", data_dir=caltech, size=8)
    test = load_dataset("caltech101", "test", data_dir=caltech, size=8)
    assert train.classes == ["accordion", "camera"] and test.classes == train.classes
    assert train.images.shape == (34, 3, 8, 8) and test.images.shape == (3, 3, 8, 8)
    assert train.labels.tolist() == [0] * 30 + [1] * 4 and test.labels.tolist() == [0] * 3
    ids = lambda ds: sorted(round(v / 7) for v in ds.images[ds.labels == 0].float().mean((1, 2, 3)).tolist())
    assert sorted(ids(train) + ids(test)) == list(range(33))  # disjoint, and together all images
    again = load_dataset("caltech101", "test", data_dir=caltech, size=8)
    other = load_dataset("caltech101", "test", data_dir=caltech, size=8, seed=1)
    assert torch.equal(again.images, test.images) and ids(other) != ids(test)


def test_caltech_default_size_and_missing(caltech, tmp_path):
    ds = load_dataset("caltech101", "train", data_dir=caltech, limit=2)
    assert ds.images.shape == (2, 3, 64, 64)
    with pytest.raises(RbmError, match="101_ObjectCategories"):
        load_dataset("caltech101", data_dir=tmp_path / "nowhere")


# ---------------------------------------------------------------- CelebA


@pytest.fixture
def celeba(tmp_path):
    base = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 7)]
    for name in names:
        img = np.zeros((218, 178, 3), np.uint8)
        img[:, :] = (0, 0, 255)
        img[:20], img[-20:] = (255, 0, 0), (255, 0, 0)  # outside the central 178x178 square
        (base / "img_align_celeba").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(base / "img_align_celeba" / name, quality=95)
    parts = [0, 0, 0, 1, 1, 2]
    (base / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, parts)))
    glasses = [1, -1, 1, -1, -1, 1]
    rows = [f"{n} " + " ".join(f"{(g if a == 'Eyeglasses' else -1):2d}" for a in ATTRIBUTES)
            for n, g in zip(names, glasses)]
    (base / "list_attr_celeba.txt").write_text(f"{len(names)}\n{' '.join(ATTRIBUTES)} \n" + "\n".join(rows) + "\n")
    return tmp_path


def test_celeba_splits_crop_and_attributes(celeba):
    train = load_dataset("celeba", "train", data_dir=celeba)
    assert train.images.shape == (3, 3, 64, 64) and train.labels.tolist() == [-1] * 3
    assert train.images[:, 0].max() < 40 and train.images[:, 2].min() > 215  # red bands cropped away
    assert len(train.attribute_names) == 40 and train.attributes.shape == (3, 40)
    assert train.with_attribute("Eyeglasses").tolist() == [0, 2]
    valid = load_dataset("celeba", "valid", data_dir=celeba, size=32, channels=1)
    test = load_dataset("celeba", "test", data_dir=celeba)
    assert valid.images.shape == (2, 1, 32, 32) and len(test) == 1
    with pytest.raises(RbmError, match="Smiles"):
        train.with_attribute("Smiles")


def test_celeba_malformed(celeba):
    (celeba / "celeba" / "list_attr_celeba.txt").write_text("7\nA B\n000001.jpg 1 -1\n")
    with pytest.raises(RbmError, match="announces 7 rows"):
        load_dataset("celeba", data_dir=celeba)
    (celeba / "celeba" / "list_eval_partition.txt").write_text("000001.jpg train\n")
    with pytest.raises(RbmError, match="list_eval_partition.txt:1"):
        load_dataset("celeba", data_dir=celeba)
    (celeba / "celeba" / "img_align_celeba" / "000001.jpg").unlink()
    (celeba / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    with pytest.raises(RbmError, match="000001.jpg"):
        load_dataset("celeba", data_dir=celeba)


# ---------------------------------------------------------------- folder


def test_folder_labels_skips_corrupt(tmp_path):
    rng = np.random.default_rng(5)
    arrays = {name: rng.integers(0, 256, (6, 4, 3), dtype=np.uint8) for name in ("cats/a.png", "dogs/b.png", "top.bmp")}
    for name, a in arrays.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(a).save(tmp_path / name)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = load_dataset("folder", data_dir=tmp_path)
    assert ds.skipped == 1 and ds.classes == ["cats", "dogs"] and ds.labels.tolist() == [0, 1, -1]
    assert all(np.array_equal(ds.images[i].permute(1, 2, 0).numpy(), a) for i, a in enumerate(arrays.values()))
    assert load_dataset("folder", data_dir=tmp_path, limit=1, size=2).images.shape == (1, 3, 2, 2)


def test_folder_gray_sizes_and_empty(tmp_path):
    Image.new("L", (5, 5), 9).save(tmp_path / "a.png")
    assert load_dataset("folder", data_dir=tmp_path).images.shape == (1, 1, 5, 5)  # native gray
    Image.new("RGB", (5, 5), (1, 2, 3)).save(tmp_path / "b.png")
    mixed = load_dataset("folder", data_dir=tmp_path)
    assert mixed.images.shape == (2, 3, 5, 5) and mixed.images[0].unique().tolist() == [9]
    Image.new("RGB", (6, 5)).save(tmp_path / "c.png")
    with pytest.raises(RbmError, match="--size"):
        load_dataset("folder", data_dir=tmp_path)
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.jpg").write_bytes(b"")
    with pytest.raises(RbmError, match="No readable images"):
        load_dataset("folder", data_dir=tmp_path / "e")
    (tmp_path / "e" / "x.jpg").unlink()
    with pytest.raises(RbmError, match="No image files"):
        load_dataset("folder", data_dir=tmp_path / "e")
    with pytest.raises(RbmError, match="--data-dir"):
        load_dataset("folder")


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "svhn"}, "Unknown dataset"), ({"name": "mnist", "split": "valid"}, "Unknown split"),
    ({"name": "mnist", "channels": 2}, "channels"), ({"name": "mnist", "size": 0}, "size"),
    ({"name": "mnist", "limit": -3}, "limit"),
])
def test_bad_options_are_usage_errors(kwargs, match):
    with pytest.raises(RbmError, match=match) as info:
        load_dataset(**kwargs)
    assert info.value.usage
