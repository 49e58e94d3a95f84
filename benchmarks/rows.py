"""Result rows of the benchmarks: each table is benchmarks/results/<name>.json, a JSON list
that a recording run appends to (never rewrites), so earlier measurements stay next to new ones.

Recording is explicit: a script run with `--record` appends its rows to the tracked
benchmarks/results/ and writes its figures into docs/img/; without it, it prints the rows and
writes its figures under runs/bench-img/ (ignored by git), so trying a script leaves the
checkout clean. The scripts in benchmarks/experiments/ import this module after putting
benchmarks/ on the import path, with the same first lines in each script:

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: rows.py
    from rows import add_record_option, append_rows, command_line, figure_dir

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
    """The command that is running, as it would be typed: `python benchmarks/experiments/x.py ...`,
    without `--record` (where the rows went is not how they were measured)."""
    return " ".join(["python"] + [a for a in sys.argv if a != "--record"])


SCRATCH_IMG = ROOT / "runs" / "bench-img"  # figures of a run without --record


def add_record_option(parser) -> None:
    """The `--record` flag of every script that measures rows."""
    parser.add_argument("--record", action="store_true",
                        help="append the rows to benchmarks/results/ and write figures into docs/img/ "
                             "(default: print the rows, figures under runs/bench-img/)")


def figure_dir(record: bool) -> Path:
    """Where a script's figures go: docs/img/ when recording, else runs/bench-img/ (created)."""
    folder = IMG if record else SCRATCH_IMG
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def relative(path: Path) -> str:
    """A figure's path as a row names it: relative to the repository."""
    return str(Path(path).resolve().relative_to(ROOT))


def append_rows(name: str, rows: list[dict], record: bool) -> Path | None:
    """With record: append rows to benchmarks/results/<name>.json (created if missing) and
    return its path. Without: only say (on stderr) how to record them, None; the scripts print
    their rows themselves."""
    if not record:
        print(f"not recorded: rerun with --record to append {len(rows)} row(s) to "
              f"benchmarks/results/{name}.json", file=sys.stderr)
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    table = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(table + rows, indent=2) + "\n")
    return path


def current(rows: list[dict]) -> list[dict]:
    """The rows not marked superseded."""
    return [r for r in rows if not r.get("superseded")]
