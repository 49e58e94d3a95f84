"""Atomic file writes: a reader (or a crash) sees the old file or the complete new one."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from rbmcli.errors import RbmError


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to a temporary file beside `path`, then rename it over."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        raise RbmError(f"cannot write {path} ({e.strerror}); check the folder is writable and has space") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy src to dst through a temporary file and a rename."""
    dst = Path(dst)
    tmp = _tmp(dst)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as e:
        raise RbmError(f"cannot write {dst} ({e.strerror}); check the folder is writable and has space") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dst
