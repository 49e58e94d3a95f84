"""Result rows of the benchmarks: each table is benchmarks/results/<name>.json, a JSON list
that every run appends to (never rewrites), so earlier measurements stay next to new ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def command_line() -> str:
    """The command that is running, as it would be typed: `python benchmarks/x.py ...`."""
    return " ".join(["python"] + sys.argv)


def append_rows(name: str, rows: list[dict]) -> Path:
    """Append rows to benchmarks/results/<name>.json (created if missing); returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    table = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(table + rows, indent=2) + "\n")
    return path
