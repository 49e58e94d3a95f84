"""`rbm report`: one self-contained HTML page of a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbmcli.cli.common import esc, out, refuse_run_records


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by rbm train.")],
    out_html: Annotated[Optional[Path], typer.Option("--out", "-o", help="HTML file (default RUN_DIR/report.html).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing HTML file.")] = False,
):
    """Write one self-contained HTML page (images inlined) for sharing a run.

    Example: rbm report runs/mnist-small -o report.html
    """
    from rbmcli.report.html import write_report

    refuse_run_records({"--out": out_html})  # a run's own files are no page (the library checks the rest)
    out.print(f"wrote {esc(write_report(run_dir, out_html, force=force))}")
