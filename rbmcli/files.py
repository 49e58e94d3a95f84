"""Atomic file writes: a reader (or a crash) sees the old file or the complete new one."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Callable

from rbmcli.errors import RbmError


def _via_temporary(path: Path, fill: Callable[[Path], object]) -> Path:
    """fill(tmp) a temporary file beside `path`, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fill(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise RbmError(f"cannot write {path} ({e.strerror}); check the folder is writable and has space") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to `path` atomically."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return _via_temporary(Path(path), lambda tmp: tmp.write_bytes(raw))


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy src to dst atomically."""
    return _via_temporary(Path(dst), lambda tmp: shutil.copyfile(src, tmp))
