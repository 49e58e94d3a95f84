"""What every command shares: the consoles, the one-line errors, tables, progress bars and
the checks of outputs before any work. The only modules of the package that use typer or rich
are this one and the commands beside it.

Errors: one `Error:` line; exit 1 for a domain error, 2 for a usage error, 130 after Ctrl-C.
Text from the user or the file system is escaped before rich prints it (`esc`), and help
texts are not read as markup (`rich_markup_mode=None` on the app), so `[x]` always prints as
itself.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rbmcli.errors import RbmError
from rbmcli.files import check_output

out = Console()
err = Console(stderr=True)


def esc(value) -> str:
    """Any value as text that rich prints literally (user paths may hold `[bold]` or `[/x]`)."""
    return escape(str(value))


def error_line(message: str) -> None:
    """The one `Error:` line on stderr, the message escaped."""
    err.print(f"[red]Error:[/] {esc(message)}", highlight=False, soft_wrap=True)


def warning_line(message: str) -> None:
    """One `Warning:` line on stderr, the message escaped."""
    err.print(f"[yellow]Warning:[/] {esc(message)}", highlight=False, soft_wrap=True)


def domain_errors(fn):
    """Print an RbmError (or an OSError no library call turned into one) as one `Error:` line
    and exit 1 (2 for a usage error): no traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RbmError as e:
            error_line(str(e))
            raise typer.Exit(2 if e.usage else 1) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            error_line(f"{where}{e.strerror or e}")
            raise typer.Exit(1) from None
    return wrapper


def table(title: str, rows: dict) -> Table:
    """A two-column table of escaped keys and values."""
    t = Table(title=esc(title), show_header=False)
    for k, v in rows.items():
        t.add_row(esc(k), esc(v))
    return t


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option `name` (the parameter's name) was set on the command line."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def refuse_overwrite(paths: dict[str, Optional[Path]], force: bool) -> None:
    """Check every output of one command before any work ({option: path}): two options naming
    the same file (one would replace the other) are a usage error even with --force; a run
    folder's own config.json, metrics.jsonl or eval.json is refused even with --force (exit 1);
    each output then passes `check_output` (no silent overwrite, no checkpoint name, no name
    too long, no folder, no unwritable place)."""
    seen: dict[str, str] = {}
    for option, p in paths.items():
        if p is None or str(p) == "-":
            continue
        key = os.path.normcase(os.path.realpath(p))
        if key in seen:
            raise RbmError(f"{seen[key]} and {option} name the same file {p}; give each its own path", usage=True)
        seen[key] = option
    refuse_run_records(paths)
    for option, p in paths.items():
        check_output(p, force=force, option=option)


def refuse_run_records(paths: dict[str, Optional[Path]]) -> None:
    """A run folder's own config.json, metrics.jsonl or eval.json is no output of a command,
    not even with --force (exit 1: the folder, not the command line, makes it one)."""
    from rbmcli.train.run_folder import RECORDS, is_run_record  # here: `rbm --help` stays free of torch

    for option, p in paths.items():
        if p is not None and str(p) != "-" and is_run_record(Path(p)):
            raise RbmError(f"{option} {p} is one of the run folder's own files ({', '.join(RECORDS)}), "
                           "never replaced (not even with --force); choose another name")


PLAIN_EVERY_S = 30.0  # seconds between two plain progress lines of one task off a terminal


def duration(seconds: float) -> str:
    """12 s, 3 min 05 s, 1 h 02 min: a duration as a person reads it."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class PlainProgress:
    """Progress as plain lines on stderr where rich's bars draw nothing (a log file, a pipe,
    CI): a task's first report, then at most one line every PLAIN_EVERY_S seconds, and its
    end; each line gives the count, the time spent and, once known, the time left."""

    def __init__(self):
        self.start: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.ended: set[str] = set()

    def __call__(self, task: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        first = task not in self.start
        self.start.setdefault(task, now)
        end = total is not None and done >= total
        if task in self.ended or not (first or end or now - self.last[task] >= PLAIN_EVERY_S):
            return
        self.last[task] = now
        if end:
            self.ended.add(task)
        spent = now - self.start[task]
        line = f"{task}: {done:,}" + (f"/{total:,} ({100 * done / max(total, 1):.0f} %)" if total else "")
        line += f", {duration(spent)}"
        if total and 0 < done < total:
            line += f", about {duration(spent / done * (total - done))} left"
        err.print(esc(line), highlight=False, soft_wrap=True)


def bar_progress(total_label: str, quiet: bool = False):
    """A rich progress bar on stderr and its callback(done, total); off a terminal, plain
    lines (PlainProgress) instead; with quiet, nothing."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(total_label), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                   TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=True)
    task = bar.add_task(total_label, total=None)
    plain = PlainProgress() if not quiet and not err.is_terminal else None

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)
        if plain is not None:
            plain(total_label, done, total)
    return bar, update


def task_progress(quiet: bool):
    """A rich progress display with one bar per named task: callback(task, done, total); off a
    terminal, plain lines (PlainProgress) instead; with quiet, nothing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=quiet or not err.is_terminal)
    plain = PlainProgress() if not quiet and not err.is_terminal else None
    tasks = {}

    def update(task: str, done: int, total: int | None):
        if task not in tasks:
            tasks[task] = progress.add_task(task, total=total)
        progress.update(tasks[task], completed=done, total=total)
        if plain is not None:
            plain(task, done, total)

    return progress, update
