"""The tensors of a TorchScript archive, read without running or compiling it.

A TorchScript file (`torch.jit.save`) is a zip: `<name>/data.pkl` pickles the module tree
(each sub-module an object of a `__torch__.*` class whose attributes hold its parameters and
buffers), `<name>/data/<key>` holds the raw bytes of each tensor storage, `<name>/code/` the
compiled code. `torch.jit.load` compiles that code and warns that it is deprecated; the FID
weights (rbmcli.eval.inception) only need the tensors, so this module unpickles data.pkl with
an allow-list: the `__torch__` classes become plain attribute holders, tensors are rebuilt
from their storage bytes, and any other global is refused, so no code from the file runs.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from rbmcli.errors import RbmError

# Storage type names in a TorchScript pickle -> their dtype (the FID network is float32).
_STORAGES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
             "LongStorage": torch.int64, "IntStorage": torch.int32, "BoolStorage": torch.bool}


class ScriptObject:
    """A `__torch__.*` module of the archive: its pickled attributes, nothing else."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, requires_grad=False, hooks=None,
                    metadata=None) -> torch.Tensor:
    """torch._utils._rebuild_tensor_v2's arguments -> a tensor viewing a flat storage (numel,)."""
    return storage.as_strided(tuple(size), tuple(stride), offset)


class _Unpickler(pickle.Unpickler):
    """data.pkl's unpickler: `__torch__` classes, the tensor rebuild and a few containers only."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            return ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGES:
            return _STORAGES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a TorchScript tensor archive")

    def persistent_load(self, pid):
        """('storage', dtype, key, location, numel) -> the storage as a flat tensor (numel,)."""
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, torch.dtype):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        raw = bytearray(self.archive.read(f"{self.prefix}data/{key}"))
        flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() != numel:
            raise pickle.UnpicklingError(f"storage {key} holds {flat.numel()} values, not {numel}")
        return flat


def _tensors(obj, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Every tensor attribute under `obj`, by dotted name (a module's state-dict keys)."""
    for name, value in vars(obj).items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value.clone()
        elif isinstance(value, ScriptObject):
            _tensors(value, f"{prefix}{name}.", out)


def torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """{dotted name: tensor} of the parameters and buffers of the TorchScript module at `path`
    (its state dict's keys and values), read without torch.jit.load."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkl) != 1:
                raise RbmError(f"{path} is not a TorchScript archive (no single <name>/data.pkl)")
            prefix = pkl[0][: -len("data.pkl")]
            with archive.open(pkl[0]) as f:
                root = _Unpickler(f, archive, prefix).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError, ValueError, EOFError) as e:
        raise RbmError(f"cannot read the tensors of TorchScript archive {path}: {e}") from None
    if not isinstance(root, ScriptObject):
        raise RbmError(f"{path} does not hold a TorchScript module")
    out: dict[str, torch.Tensor] = {}
    _tensors(root, "", out)
    return out
