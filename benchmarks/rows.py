"""Result rows of the benchmarks: each table is benchmarks/results/<name>.json, a JSON list
that every run appends to (never rewrites), so earlier measurements stay next to new ones.

The scripts in benchmarks/experiments/ and benchmarks/perf/ import this module after putting
benchmarks/ on the import path, with the same first lines in each script:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
    from rows import append_rows, command_line

A row that a later measurement replaced keeps its place in the file and gains a
"superseded" field saying why (and, where one row replaced it, "superseded_by": that row's
command); `benchmarks/make_results.py` leaves such rows out of the generated tables.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent  # the repository
RESULTS = BENCHMARKS / "results"
IMG = ROOT / "docs" / "img"


def command_line() -> str:
    """The command that is running, as it would be typed: `python benchmarks/experiments/x.py ...`."""
    return " ".join(["python"] + sys.argv)


def append_rows(name: str, rows: list[dict]) -> Path:
    """Append rows to benchmarks/results/<name>.json (created if missing); returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    table = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(table + rows, indent=2) + "\n")
    return path


def current(rows: list[dict]) -> list[dict]:
    """The rows not marked superseded."""
    return [r for r in rows if not r.get("superseded")]
