"""The two storage engines for tests: SQLite in a temporary folder, PostgreSQL in a schema of its own per test.

PostgreSQL comes from ``BOT_TEST_POSTGRES_URL`` (``.ci/run`` defaults it to the local server). Without a reachable
server its tests are skipped with the reason, except under ``CI=true``, where that is a failure: CI must run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.storage import Storage

ENGINES = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Database:
    """Where a test's storage lives: ``target`` for ``Storage.open`` and, on PostgreSQL, the test's own schema."""

    engine: str
    target: str
    schema: str | None = None

    async def open(self, **options: Any) -> Storage:
        return await Storage.open(self.target, schema=self.schema, **options)

    @property
    def env(self) -> dict[str, str]:
        """The environment that points a ``python -m bot`` process at this database."""
        if self.engine == "sqlite":
            return {"BOT_DATABASE": self.target}
        return {"BOT_DATABASE_URL": self.target}


def postgres_url() -> str | None:
    return os.environ.get("BOT_TEST_POSTGRES_URL") or None


_checked: dict[str, str | None] = {}


async def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run, or None when the server answers (asked once per session)."""
    url = postgres_url()
    if url is None:
        return "BOT_TEST_POSTGRES_URL is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)"
    if url not in _checked:
        try:
            await _execute(url, "SELECT 1")
            _checked[url] = None
        except Exception as error:
            _checked[url] = f"PostgreSQL at {url} is not reachable: {type(error).__name__}: {error}"
    return _checked[url]


async def require_postgres() -> str:
    """The server's URL; skips the test (fails it under CI=true) when there is none."""
    reason = await postgres_unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the PostgreSQL tests cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    url = postgres_url()
    assert url is not None
    return url


@asynccontextmanager
async def database(engine: str, folder: Path) -> AsyncIterator[Database]:
    """A fresh, empty database of ``engine``: a file in ``folder``, or a new PostgreSQL schema dropped afterwards."""
    if engine == "sqlite":
        yield Database("sqlite", str(folder / "data" / "bot.sqlite3"))
        return
    url = await require_postgres()
    schema = f"test_{uuid.uuid4().hex[:12]}"
    await _execute(url, f'CREATE SCHEMA "{schema}"')
    try:
        yield Database("postgresql", url, schema)
    finally:
        await _execute(url, f'DROP SCHEMA "{schema}" CASCADE')


@asynccontextmanager
async def postgres_database() -> AsyncIterator[Database]:
    """A whole new PostgreSQL database (for bot processes, which use the default schema), dropped afterwards."""
    url = await require_postgres()
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    await _execute(url, f'CREATE DATABASE "{name}"')
    try:
        yield Database("postgresql", make_url(url).set(database=name).render_as_string(hide_password=False))
    finally:
        await _execute(url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def _execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
