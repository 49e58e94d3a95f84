"""The `rbm` command: a thin Typer layer over the library, one module per command.

Each command validates its options, builds a config, calls one library function with a
progress callback and renders the result (rbmcli.cli.common: one `Error:` line, exit 1 for a
domain error, 2 for a usage error, 130 after Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rbmcli import __version__
from rbmcli.cli import evaluate, info, reconstruct, report, sample, train
from rbmcli.cli.common import domain_errors, err

app = typer.Typer(add_completion=True, no_args_is_help=True, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Restricted Boltzmann machines trained by backprop: train, sample, reconstruct, evaluate, report, info.")


def _version(value: bool):
    if value:
        print(f"rbmcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False):
    """Restricted Boltzmann machines trained by backprop (contrastive free energy)."""
    from rbmcli.train.allocator import keep_freed_memory

    keep_freed_memory()  # before any tensor exists: glibc's 32 MiB mmap trap (rbmcli/train/allocator.py)


for _command in (train, sample, reconstruct, evaluate, report, info):
    _name = _command.__name__.rsplit(".", 1)[1]
    app.command(_name)(domain_errors(getattr(_command, _name)))


def main():
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("Aborted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
