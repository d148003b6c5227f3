"""Which database: a URL or a SQLite path -> an async SQLAlchemy engine set up for that engine's concurrency.

SQLite (aiosqlite): WAL, foreign keys, a busy timeout, and ``BEGIN IMMEDIATE`` for writes, so a write transaction
holds the file's write lock from its first statement (a deferred one could fail half-way on a lock upgrade).
PostgreSQL (asyncpg): a connection pool; transactions are READ COMMITTED and writes that must not interleave take
advisory locks (see ``queries.lock``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.core.errors import StorageError

WRITE = "bot_write"  # execution option: this connection's transaction writes (SQLite: BEGIN IMMEDIATE)
_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}


def database_url(target: str | Path) -> URL:
    """``postgresql://...``, ``sqlite:///file`` or a plain file path (SQLite) -> the URL with its async driver."""
    text = str(target)
    if "://" not in text:
        return URL.create("sqlite+aiosqlite", database=text)
    try:
        url = make_url(text)
    except ArgumentError:
        raise StorageError(f"not a database URL: {_hide_password(text)}") from None
    backend = url.drivername.split("+", 1)[0]
    if backend not in _DRIVERS:
        raise StorageError(f"unsupported database {backend!r}: use postgresql://... or sqlite:///path")
    return url.set(drivername=_DRIVERS[backend])


def describe(url: URL) -> str:
    """The URL for messages: the password hidden."""
    return url.render_as_string(hide_password=True)


def create_engine(
    url: URL, *, busy_timeout: float, schema: str | None = None, pool_size: int = 10, pool_timeout: float = 30.0
) -> AsyncEngine:
    """The engine for ``url``; ``schema`` puts a PostgreSQL connection's tables in that schema (``search_path``)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout)
    connect_args: dict[str, Any] = {"timeout": busy_timeout, "command_timeout": 60}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL, busy_timeout: float) -> AsyncEngine:
    memory = is_memory(url)
    if not memory:
        try:
            Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StorageError(f"cannot create the folder of the database {url.database}: {error.strerror}") from None
    engine = create_async_engine(url, connect_args={"timeout": busy_timeout})
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun by ``_begin`` below, not by the driver
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not memory:
            cursor.execute("PRAGMA journal_mode = WAL")  # readers go on while one connection writes
        cursor.execute("PRAGMA synchronous = NORMAL")  # with WAL: a crash of the process loses nothing
        cursor.close()

    @event.listens_for(sync, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

    return engine


def is_busy(error: BaseException) -> bool:
    """Another connection holds the lock (SQLite), or PostgreSQL chose this transaction to abort (deadlock, ...)."""
    orig = getattr(error, "orig", None) or error
    if isinstance(orig, sqlite3.OperationalError):
        return getattr(orig, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return code in ("40001", "40P01", "55P03")  # serialization failure, deadlock, lock not available


def _hide_password(text: str) -> str:
    head, sep, tail = text.partition("@")
    if not sep or "://" not in head:
        return text
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}" if ":" in credentials else text
