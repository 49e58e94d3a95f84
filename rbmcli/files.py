"""Atomic file writes and output checks.

Every output is written once: into a temporary file beside it, flushed to disk (fsync),
given mode 0644 and renamed over the final name, so a reader (or a crash) sees the old file
or the complete new one. `check_output` refuses, before any work, an output that could not
be written or would replace an existing file without --force, and, even with --force, one
named like a checkpoint (the CLI also refuses a run folder's own records: rbmcli.cli.common).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import BinaryIO, Callable

from rbmcli.errors import RbmError

FILE_MODE = 0o644
NAME_MAX = 255  # bytes in one file name on common file systems (ext4, APFS, NTFS)
TEMP_EXTRA = 32  # bytes the temporary name adds to the final one (see `temporary_name`)


def temporary_name(path: Path) -> Path:
    """The hidden temporary file beside `path` that becomes `path` by a rename."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_with(path: str | Path, fill: Callable[[BinaryIO], object]) -> Path:
    """fill(file) a temporary file beside `path`, fsync it, chmod 0644 and rename it over
    `path`; an OSError becomes an RbmError naming the path (the old file stays intact)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as e:
        raise RbmError(f"cannot write {path} ({e.strerror or e}); check the folder is writable and has space") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return path


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write bytes (or UTF-8 text) to `path` atomically."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return write_with(path, lambda f: f.write(raw))


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy src to dst atomically."""
    def fill(f: BinaryIO) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, f)
    return write_with(dst, fill)


def write_text_or_stdout(path: str | Path, text: str) -> str:
    """`-` writes text to standard output; any other path is written atomically. Returns
    where it went ("stdout" or the path)."""
    if str(path) == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return "stdout"
    return str(write_atomic(path, text))


def _nearest_existing(path: Path) -> Path:
    """`path` or the closest of its parents that exists (the current folder at worst)."""
    for p in [path, *path.parents]:
        if p.exists() or p.is_symlink():
            return p
    return Path(".")


CHECKPOINT_SUFFIX = ".safetensors"  # checkpoints and their optimiser state (rbmcli.train.checkpoint)


def refuse_checkpoint_name(path: Path, option: str) -> None:
    """Refuse, even with --force, an output named like a checkpoint (`*.safetensors`): the
    commands checked here write pictures, HTML and JSON, and replacing a trained model with
    one is never what was meant (usage error: the name alone is wrong)."""
    if path.name.lower().endswith(CHECKPOINT_SUFFIX):
        raise RbmError(f"{option} {path}: a {CHECKPOINT_SUFFIX} name is a checkpoint's, never an output of "
                       "this command (not even with --force); choose another name", usage=True)


def check_output(path: str | Path | None, *, force: bool, option: str, folder: bool = False) -> None:
    """Refuse, before any work, an output (file, or a folder of files with folder=True) that
    cannot be written: a name too long, a file where a folder is needed (or the reverse), a
    parent that is a file or not writable, an existing output without --force, and always a
    checkpoint's name (`refuse_checkpoint_name`). `-` (stdout) and None pass."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    refuse_checkpoint_name(path, option)
    name = path.name or str(path)
    if len(os.fsencode(name)) > NAME_MAX - TEMP_EXTRA:
        raise RbmError(f"{option}: the name {name[:40]}… is too long ({len(os.fsencode(name))} bytes; "
                       f"at most {NAME_MAX - TEMP_EXTRA})", usage=True)
    try:
        is_dir, exists = path.is_dir(), path.exists()
        if folder:
            if exists and not is_dir:
                raise RbmError(f"{option} {path} is a file, not a folder; choose a folder for it", usage=True)
            if is_dir and any(path.iterdir()) and not force:
                raise RbmError(f"{option} {path} is not empty; pass --force to write into it or choose another folder")
        else:
            if is_dir:
                raise RbmError(f"{option} {path} is a folder; give a file name", usage=True)
            if exists and not force:
                raise RbmError(f"{path} already exists; pass --force to overwrite it or choose another path")
        ancestor = _nearest_existing(path if folder and is_dir else path.parent)
        if not ancestor.is_dir():
            raise RbmError(f"{option} {path}: {ancestor} is a file, not a folder", usage=True)
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise RbmError(f"{option} {path}: cannot write into {ancestor} (permission denied)")
    except OSError as e:
        raise RbmError(f"{option} {path}: {e.strerror or e}") from None
