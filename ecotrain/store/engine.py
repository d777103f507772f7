"""Database URLs and engines: SQLite by default, PostgreSQL for a lab, one code path."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from ecotrain.errors import UserError

_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def default_sqlite_path() -> Path:
    """The local store in the user data dir."""
    from ecotrain.config import user_data_dir

    return user_data_dir() / "ecotrain.db"


def resolve_url(value: str | os.PathLike | None) -> str:
    """Turn a path, a URL or nothing into a SQLAlchemy URL.

    ``postgres://`` and ``postgresql://`` get the psycopg 3 driver, which the
    ``[postgres]`` extra installs.
    """
    if value is None or str(value) == "":
        return f"sqlite:///{default_sqlite_path()}"
    text = str(value)
    if not _URL.match(text):
        return f"sqlite:///{Path(text).expanduser().resolve()}"
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    if text.startswith("postgresql://"):
        text = "postgresql+psycopg://" + text[len("postgresql://") :]
    try:
        url = make_url(text)
    except ArgumentError:
        raise UserError(f"bad database URL {mask_url(text)!r}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise UserError(
            f"unsupported database {url.get_backend_name()!r}: use a SQLite path or postgresql://"
        )
    return text


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***.

    The password is everything between the user's ``:`` and the *last* ``@`` before the
    host, so a password holding an ``@`` is masked whole, not half.
    """
    return _URL_PASSWORD.sub(r"\g<pre>***@", url)


_URL_PASSWORD = re.compile(r"(?P<pre>://[^/:@\s]*:)[^/\s]*@")


def _prepare_sqlite_file(url: str) -> None:
    db = make_url(url).database
    if not db or db == ":memory:":
        return
    path = Path(db)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Owner-only from the first byte: the store holds command lines and hosts.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
    except OSError as e:
        raise UserError(f"cannot create database {path}: {e.strerror}") from None
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise UserError(f"database {path} is not writable")


# SQLite: how long a writer waits for another's lock. A lock means progress (64 runs
# finishing at once on one node), so this is generous and independent of connect timeouts.
SQLITE_BUSY_TIMEOUT_S = 30.0


def make_engine(url: str, *, readonly: bool = False, timeout_s: float = 30.0) -> Engine:
    """An engine for ``url`` (already resolved). SQLite gets WAL and a busy timeout;
    ``timeout_s`` bounds how long connecting to a server may take."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        if not readonly:
            _prepare_sqlite_file(url)
        timeout_s = max(timeout_s, SQLITE_BUSY_TIMEOUT_S)
        engine = create_engine(url, connect_args={"timeout": timeout_s})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            if not readonly:
                # WAL lets the dashboard read while many runs write.
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            if readonly:
                # A reader (the dashboard, reports) must never write, even by mistake.
                cur.execute("PRAGMA query_only=ON")
                # Lab-wide aggregates join every run: with the pages memory-mapped and a
                # 64 MiB cache, the 100,000-run savings join took 0.6 s instead of 1.1 s.
                cur.execute("PRAGMA mmap_size=268435456")
                cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        return engine
    # A writer (every `ecotrain run`) connects per write rather than holding a connection
    # between heartbeats: 500 runs of a lab then cost a few connections at a time, not 500
    # (PostgreSQL's default max_connections is 100). Readers (dashboard) keep a pool.
    pool = {"pool_pre_ping": True} if readonly else {"poolclass": NullPool}
    try:
        return create_engine(
            url,
            **pool,
            connect_args={
                "connect_timeout": max(1, int(timeout_s)),
                **({"options": "-c default_transaction_read_only=on"} if readonly else {}),
            },
        )
    except ModuleNotFoundError:
        raise UserError('PostgreSQL needs psycopg: pip install "ecotrain[postgres]"') from None
