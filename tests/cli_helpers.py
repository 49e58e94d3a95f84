"""What every CLI test asserts of a refused command."""


def one_error_line(r, code: int | None = None) -> str:
    """Assert (exit `code`, if given) exactly one `Error:` line and no traceback; return the line."""
    if code is not None:
        assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    return lines[0]
