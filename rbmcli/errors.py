"""The one domain exception of rbmcli.

The library raises `RbmError` for every problem a user can fix (bad data, bad checkpoint,
bad option); the CLI prints it as one `Error: ...` line and exits 1 (or 2 for usage).
"""


class RbmError(Exception):
    """A user-facing error; `usage=True` marks a bad option combination (exit code 2)."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage
