"""Bounds of the numeric options, checked before any work.

A number outside these bounds would overflow a C integer (a seed), allocate more memory than
any machine has (a size, a sample count) or run for ever; each is refused as a usage error
that names the option. The bounds are generous: every real use lies well inside them.
"""

from __future__ import annotations

import math

from rbmcli.errors import RbmError

SEED_MAX = 2**32 - 1  # numpy and scikit-learn seeds are 32-bit
MAX_SIDE = 4096  # image side (= rbmcli.train.checkpoint.MAX_SIDE)
MAX_UNITS_N = 65535  # N of a unit (copies): 16-bit pixel levels at most
MAX_COUNT = 10_000_000  # images, samples, steps, epochs, runs: a count no run needs to exceed


def check_int(option: str, value: int | None, low: int, high: int) -> None:
    """A usage RbmError naming `option` unless low <= value <= high (None passes)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RbmError(f"{option} must be an integer from {low:,} to {high:,}, got {value}", usage=True)


def check_float(option: str, value: float | None, low: float, high: float, *, open_low: bool = False) -> None:
    """A usage RbmError naming `option` unless value is finite and in [low, high] (or
    (low, high] with open_low); None passes."""
    if value is None:
        return
    ok = math.isfinite(value) and (low < value if open_low else low <= value) and value <= high
    if not ok:
        lower = f"above {low:g}" if open_low else f"at least {low:g}"
        raise RbmError(f"{option} must be a finite number {lower} and at most {high:g}, got {value}", usage=True)


def check_ints(bounds: dict[str, tuple[int | None, int, int]]) -> None:
    """check_int for each {option: (value, low, high)}."""
    for option, (value, low, high) in bounds.items():
        check_int(option, value, low, high)
