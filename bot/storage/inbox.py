"""Queries of the intake inbox: every incoming message is a row before the platform is told it arrived (run by Storage).

A row is pending until it is done: in the same transaction as its event when the message makes one (``events``),
else right after it was handled. Claims are leases (``claimed_until``), so a crashed worker's rows come back.
Several processes claim without waiting for each other: PostgreSQL locks the chosen rows ``FOR UPDATE SKIP LOCKED``;
SQLite's one write lock (``BEGIN IMMEDIATE``) already serialises claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.intake import InboxEntry, InboxItem
from bot.storage.tables import inbox


async def add(conn: AsyncConnection, platform: str, entries: Sequence[InboxEntry], *, now: float) -> int:
    """Insert the entries not seen before (a redelivery has the same key); return how many were new."""
    if not entries:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    rows = [
        {
            "platform": platform,
            "key": entry.key,
            "chat_id": entry.chat_id,
            "seq": entry.seq,
            "payload": entry.payload,
            "received_at": now,
        }
        for entry in entries
    ]
    statement = dialect.insert(inbox).values(rows).on_conflict_do_nothing(index_elements=["platform", "key"])
    return (await conn.execute(statement)).rowcount


async def claim(
    conn: AsyncConnection, platform: str, *, limit: int, now: float, lease: float, skip: Sequence[int] = ()
) -> list[InboxItem]:
    """The oldest pending rows nobody holds (their lease ran out or was never taken), leased to the caller."""
    c = inbox.c
    query = (
        select(inbox)
        .where(
            c.platform == platform,
            c.done_at.is_(None),
            (c.claimed_until.is_(None)) | (c.claimed_until <= now),
        )
        .order_by(c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip:
        query = query.where(c.id.not_in(list(skip)))
    rows = list(await conn.execute(query))
    if rows:
        await conn.execute(
            update(inbox)
            .where(c.id.in_([row.id for row in rows]))
            .values(claimed_until=now + lease, attempts=c.attempts + 1)
        )
    return [_item(row) for row in rows]


async def done(conn: AsyncConnection, item_id: int, *, now: float, error: str | None = None) -> None:
    c = inbox.c
    await conn.execute(
        update(inbox).where(c.id == item_id, c.done_at.is_(None)).values(done_at=now, claimed_until=None, error=error)
    )


async def retry(conn: AsyncConnection, item_id: int, *, at: float) -> None:
    """A failed attempt: the row is claimable again from ``at`` (a backoff), its attempts kept."""
    c = inbox.c
    await conn.execute(update(inbox).where(c.id == item_id, c.done_at.is_(None)).values(claimed_until=at))


async def release(conn: AsyncConnection, platform: str) -> int:
    """At start (SQLite: one process per file): rows a dead process had claimed are claimable at once."""
    c = inbox.c
    done_rows = await conn.execute(
        update(inbox)
        .where(c.platform == platform, c.done_at.is_(None), c.claimed_until.is_not(None))
        .values(claimed_until=None)
    )
    return done_rows.rowcount


async def counts(conn: AsyncConnection, platform: str) -> tuple[int, int]:
    """(pending, done) rows of the platform."""
    c = inbox.c
    pending = func.count().filter(c.done_at.is_(None))
    finished = func.count().filter(c.done_at.is_not(None))
    row = (await conn.execute(select(pending, finished).where(c.platform == platform))).one()
    return int(row[0]), int(row[1])


async def last_seq(conn: AsyncConnection, platform: str, chat_id: str) -> int | None:
    """The highest ``seq`` recorded for the chat (Discord: the newest message id handled in that channel)."""
    c = inbox.c
    value = (await conn.execute(select(func.max(c.seq)).where(c.platform == platform, c.chat_id == chat_id))).scalar()
    return None if value is None else int(value)


async def prune(conn: AsyncConnection, *, before: float) -> int:
    """Forget rows done before ``before`` (they only served to recognise redeliveries)."""
    c = inbox.c
    return (await conn.execute(inbox.delete().where(c.done_at.is_not(None), c.done_at < before))).rowcount


def _item(row: Row[Any]) -> InboxItem:
    return InboxItem(
        id=int(row.id),
        platform=row.platform,
        key=row.key,
        chat_id=row.chat_id,
        seq=int(row.seq),
        payload=row.payload,
        attempts=int(row.attempts) + 1,
    )
