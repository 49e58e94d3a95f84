"""glibc malloc settings for large, repeated CPU tensors.

glibc serves an allocation above its mmap threshold with a fresh mmap and unmaps it on free.
The threshold adapts upwards to the largest freed block but never past 32 MiB on 64-bit, so
every tensor of 32 MiB or more (the first conv output of the 64×64 CelebA stack at batch 128 is
128·64·32·32·4 B = 32 MiB) is mapped anew on every step and the kernel zero-fills its pages on
first touch: measured ≈ 5× slower for such a layer (benchmarks/perf/bench_alloc.py, docs/performance.md).

`keep_freed_memory()` turns mmap off for the heap (M_MMAP_MAX = 0) and stops trimming it
(M_TRIM_THRESHOLD), so freed blocks are reused. The cost: the process keeps its peak memory
until it exits, and the heap holds some free holes (torch's 64-byte-aligned requests do not fit
a freed block of exactly their size until neighbours coalesce): measured, a loop of 48 MiB
tensors grew the peak RSS by 8–12 such tensors and then stopped growing. Set RBMCLI_GLIBC_MALLOC=default to keep
glibc's own behaviour; other allocators (jemalloc, tcmalloc by LD_PRELOAD) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters from glibc's <malloc.h>
_TRIM_BYTES = 1 << 30  # keep up to 1 GiB of free memory at the heap's top


def keep_freed_memory() -> bool:
    """Tune glibc malloc as above; True when the settings were applied (Linux with glibc and
    neither RBMCLI_GLIBC_MALLOC=default nor a preloaded allocator)."""
    if (platform.system() != "Linux" or platform.libc_ver()[0] != "glibc"
            or os.environ.get("RBMCLI_GLIBC_MALLOC", "") == "default" or "LD_PRELOAD" in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, _TRIM_BYTES))
    except (OSError, AttributeError):
        return False
