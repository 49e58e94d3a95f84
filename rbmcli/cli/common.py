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
    """Check every output before any work ({option: path}): never overwrite one silently
    (exit 1 unless --force); a name too long, a folder or an unwritable place is refused."""
    for option, p in paths.items():
        check_output(p, force=force, option=option)


def bar_progress(total_label: str, quiet: bool = False):
    """A rich progress bar on stderr (off a terminal or with quiet: nothing) and its callback(done, total)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(total_label), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                   TimeRemainingColumn(), console=err, disable=quiet or not err.is_terminal, transient=True)
    task = bar.add_task(total_label, total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def task_progress(quiet: bool):
    """A rich progress display with one bar per named task: callback(task, done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        console=err, disable=quiet or not err.is_terminal)
    tasks = {}

    def update(task: str, done: int, total: int | None):
        if task not in tasks:
            tasks[task] = progress.add_task(task, total=total)
        progress.update(tasks[task], completed=done, total=total)

    return progress, update
