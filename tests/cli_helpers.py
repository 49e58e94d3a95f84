"""What CLI tests share: running a command, synthetic digits, what a refused command shows."""

import torch
from typer.testing import CliRunner

from rbmcli.cli import app

runner = CliRunner()


def run(*args):
    """`rbm ARGS…` in process (typer's CliRunner); each argument as a string."""
    return runner.invoke(app, [str(a) for a in args])


def digits(n=64, seed=0):
    """n random uint8 images of MNIST's shape (n, 1, 28, 28)."""
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def one_error_line(r, code: int | None = None) -> str:
    """Assert (exit `code`, if given) exactly one `Error:` line and no traceback; return the line."""
    if code is not None:
        assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]
