"""Errors that mean "the user asked for something wrong" (one line, exit code 2), and the one
place that turns any expected failure of a CLI command into one line on stderr.

Exit codes: 2 = fix your input (option, config, path, URL); 1 = a fault of the moment or of
the environment (database unreachable or corrupt, disk full). Never a traceback for either.
"""

from __future__ import annotations

import errno
import io
import os
import sys

# An OSError with one of these says the path the user gave cannot be used (exit 2); any other
# (disk full, I/O error, quota) is a fault of the machine (exit 1).
_USER_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENAMETOOLONG,
        errno.EEXIST,
        errno.ELOOP,
    }
)


class UserError(Exception):
    """A mistake in the user's input (option, config, region, URL); printed as one line."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def os_error(e: OSError, what: str | None = None) -> UserError:
    """An OSError as a one-line UserError: ``what`` (or the file it names) and why;
    exit code 2 for a path that cannot be used, 1 for a fault such as a full disk."""
    where = what or (str(e.filename) if e.filename is not None else None)
    why = e.strerror or str(e) or type(e).__name__
    message = f"{where}: {why}" if where else why
    return UserError(message, exit_code=2 if e.errno in _USER_ERRNOS else 1)


def cli_failure(e: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit code) for an expected failure of a CLI command; None for a bug
    (which keeps its traceback: it is ours to fix, not the user's)."""
    if isinstance(e, UserError):
        return str(e), e.exit_code
    exc = sys.modules.get("sqlalchemy.exc")
    if exc is not None and isinstance(e, exc.DBAPIError | exc.DatabaseError):
        from ecotrain.store.engine import mask_url

        detail = mask_url(_first_line(getattr(e, "orig", None) or e))
        if isinstance(e, exc.OperationalError | exc.InterfaceError):
            # Unreachable, locked past its timeout, disk I/O: a fault of the moment. Records
            # of runs are safe in the spool meanwhile.
            return f"database unavailable: {detail}", 1
        if "file is not a database" in detail or "malformed" in detail:
            return f"the database is not a readable SQLite store ({detail}); check --db", 1
        return f"database error: {detail}", 1
    if isinstance(e, OSError):
        _quiet_stdout()  # stdout may be what failed: don't fail again flushing it at exit
        err = os_error(e)
        return str(err), err.exit_code
    if isinstance(e, ValueError) and type(e).__module__.startswith("ecotrain"):
        # Library validation errors (unknown region, GPU, bad value) carry a user message.
        return str(e), 2
    return None


class _ClosedStream(io.TextIOBase):
    """Stands for a standard output the caller closed (``>&-``): any write is a one-line
    error, but a command that prints nothing (``export -o FILE``) still works."""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def guard_stdout() -> None:
    """Give a closed standard output a stand-in that fails cleanly when written."""
    if sys.stdout is None:
        sys.stdout = _ClosedStream()


def _quiet_stdout() -> None:
    """Point fd 1 at /dev/null, so the interpreter's last flush of a broken or full stdout
    does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def _first_line(e: object) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
