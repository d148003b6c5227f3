"""The few statements that differ between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def upsert(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    *,
    key: Sequence[str],
    update: Sequence[str] | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET the other columns (or ``update``) to the new values."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(dict(values))
    columns = update if update is not None else [name for name in values if name not in key]
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={name: statement.excluded[name] for name in columns}
    )


async def lock(conn: AsyncConnection, *key: str) -> None:
    """Serialise transactions on ``key`` until this one ends (PostgreSQL: an advisory lock).

    SQLite needs nothing: a write transaction (``BEGIN IMMEDIATE``) already holds the database's one write lock.
    Different keys that hash alike only wait for each other, they never share a result.
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest()
    await conn.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest, "big", signed=True))))


def json_array_elements(conn: AsyncConnection, column: ColumnElement[str]) -> Any:
    """A table-valued function with one ``value`` column per element of the JSON array in ``column`` (text)."""
    if conn.dialect.name == "postgresql":
        return func.jsonb_array_elements_text(cast(column, JSONB)).table_valued("value", joins_implicitly=True)
    return func.json_each(column).table_valued("value", joins_implicitly=True)
