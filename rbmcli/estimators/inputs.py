"""What the estimators accept, and how it reaches the core: checked arrays, devices, generators.

scikit-learn's conventions apply at this boundary (ValueError for bad input and bad options,
NotFittedError before fit); inside, the core's tensors and its one RbmError. `usage_errors`
turns the latter into the former, so a user of the estimators never sees a torch traceback.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch

from rbmcli.errors import RbmError

CHUNK = 4096  # rows per chunk when sparse input is made dense (bounds memory)


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Re-raise the core's RbmError (a bad architecture, device or unit option) as ValueError,
    the exception scikit-learn users expect for a bad parameter."""
    try:
        yield
    except RbmError as e:
        raise ValueError(str(e)) from None


def device_of(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N', 'mps' or 'auto' (cuda, then mps, then cpu) → torch.device."""
    from rbmcli.train.devices import resolve_device

    if not isinstance(name, str):
        raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {name!r}")
    with usage_errors():
        return resolve_device(name)


def torch_generator(rng: np.random.RandomState, device: torch.device) -> torch.Generator:
    """A torch.Generator on device seeded by one draw of the numpy generator: the estimator's
    random_state fixes every torch draw too."""
    return torch.Generator(device=device).manual_seed(int(rng.randint(np.iinfo(np.int32).max)))


def dense_rows(X, start: int, stop: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Rows start:stop of a dense array or scipy.sparse matrix as a dense tensor (stop − start, F)."""
    rows = X[start:stop]
    rows = rows.toarray() if sp.issparse(rows) else np.require(rows, requirements="W")  # torch needs writable memory
    return torch.as_tensor(rows, device=device).to(dtype)


def as_tensor(X, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The whole of X as a dense tensor (sparse input made dense chunk by chunk)."""
    if not sp.issparse(X):
        return torch.as_tensor(np.require(X, requirements="W"), device=device).to(dtype)
    return torch.cat([dense_rows(X, i, min(i + CHUNK, X.shape[0]), dtype, device)
                      for i in range(0, max(X.shape[0], 1), CHUNK)])


def torch_dtype(dtype) -> torch.dtype:
    """float64 stays float64; every other dtype computes in float32 (the core's precision)."""
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def numpy_out(t: torch.Tensor, like_dtype) -> np.ndarray:
    """A result tensor as a numpy array of X's float dtype (float64 or float32)."""
    out_dtype = np.float64 if np.dtype(like_dtype) == np.float64 else np.float32
    return t.detach().cpu().numpy().astype(out_dtype, copy=False)
