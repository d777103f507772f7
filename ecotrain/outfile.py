"""Where `report -o` and `export -o` write: checked before any work, written whole or not at all.

- No path (or ``-``): standard output.
- A missing folder is an error, never created on the user's behalf; so is a folder given as
  the file, or a place we may not write (exit 2).
- A regular file is written to a temporary file beside it and renamed at the end, so a failed
  or interrupted export leaves the old file (or nothing), not half a file. The result follows
  the umask like any file the user creates (0644 by default).
- A device or FIFO (``/dev/stdout``, ``/dev/null``, ``/dev/full``) is written in place.
- Disk full or an I/O error while writing: one line, exit 1, the temporary file removed.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ecotrain.errors import UserError, os_error


def is_stdout(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` means standard output (none given, or ``-``)."""
    return path is None or str(path) == "-"


def check_target(path: str | os.PathLike) -> Path:
    """The output path, once we know it can be written (raises a one-line UserError)."""
    text = str(path)
    if not text.strip():
        raise UserError("empty output path")
    target = Path(text).expanduser()
    try:
        st = target.stat()
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise os_error(e, text) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{text} is a directory: give a file name")
    parent = target.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UserError(f"cannot write {text}: directory {parent} {what}")
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def open_output(path: str | os.PathLike | None, binary: bool = False) -> Iterator[IO]:
    """A file object for the output at ``path`` (stdout when None or ``-``).

    The target is checked first (:func:`check_target`); OSErrors while writing become a
    one-line UserError. Text mode writes UTF-8 with ``\\n`` line ends.
    """
    if is_stdout(path):
        stream = sys.stdout.buffer if binary else sys.stdout
        try:
            yield stream
            stream.flush()
        except BrokenPipeError:
            raise  # the reader went away (`| head`): the CLI exits quietly, as tools do
        except OSError as e:
            raise os_error(e, "standard output") from None
        return
    target = check_target(path)
    mode = "wb" if binary else "w"
    kwargs = {} if binary else {"encoding": "utf-8", "newline": ""}
    if target.exists() and not target.is_file():
        # A device or FIFO: nothing to rename over; write in place.
        try:
            with open(target, mode, **kwargs) as f:
                yield f
        except OSError as e:
            raise os_error(e, str(path)) from None
        return
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise os_error(e, str(path)) from None
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise os_error(e, str(path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_output(path: str | os.PathLike | None, text: str) -> None:
    """Write ``text`` to ``path`` (stdout when None or ``-``), whole or not at all."""
    with open_output(path) as f:
        f.write(text)
