"""SQL for the intake inbox: every incoming message is a row before the platform is told it arrived (run by Storage).

A row is pending until it is done: in the same transaction as its event when the message makes one (``events``),
else right after it was handled. Claims are leases (``claimed_until``), so a crashed worker's rows come back;
PostgreSQL can claim with ``FOR UPDATE SKIP LOCKED`` where SQLite, one writer at a time, needs nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from bot.core.intake import InboxEntry, InboxItem

_COLUMNS = "id, platform, key, chat_id, seq, payload, attempts"


async def add(conn: aiosqlite.Connection, platform: str, entries: Sequence[InboxEntry], *, now: float) -> int:
    """Insert the entries not seen before (a redelivery has the same key); return how many were new."""
    new = 0
    for entry in entries:
        cursor = await conn.execute(
            "INSERT INTO inbox (platform, key, chat_id, seq, payload, received_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (platform, key) DO NOTHING",
            (platform, entry.key, entry.chat_id, entry.seq, entry.payload, now),
        )
        new += cursor.rowcount
        await cursor.close()
    return new


async def claim(
    conn: aiosqlite.Connection, platform: str, *, limit: int, now: float, lease: float, skip: Sequence[int] = ()
) -> list[InboxItem]:
    """The oldest pending rows nobody holds (their lease ran out or was never taken), leased to the caller."""
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM inbox WHERE platform = ? AND done_at IS NULL "  # noqa: S608 - a constant
        "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?",
        (platform, now, limit + len(skip)),
    ) as cursor:
        rows = [row for row in await cursor.fetchall() if row[0] not in skip][:limit]
    if rows:
        marks = ", ".join("?" for _ in rows)
        await conn.execute(
            f"UPDATE inbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ({marks})",  # noqa: S608
            (now + lease, *(row[0] for row in rows)),
        )
    return [_item(row, attempts=row[6] + 1) for row in rows]


async def done(conn: aiosqlite.Connection, item_id: int, *, now: float, error: str | None = None) -> None:
    await conn.execute(
        "UPDATE inbox SET done_at = ?, claimed_until = NULL, error = ? WHERE id = ? AND done_at IS NULL",
        (now, error, item_id),
    )


async def retry(conn: aiosqlite.Connection, item_id: int, *, at: float) -> None:
    """A failed attempt: the row is claimable again from ``at`` (a backoff), its attempts kept."""
    await conn.execute("UPDATE inbox SET claimed_until = ? WHERE id = ? AND done_at IS NULL", (at, item_id))


async def release(conn: aiosqlite.Connection, platform: str) -> int:
    """At start (one process per SQLite file): rows a dead process had claimed are claimable at once."""
    cursor = await conn.execute(
        "UPDATE inbox SET claimed_until = NULL WHERE platform = ? AND done_at IS NULL AND claimed_until IS NOT NULL",
        (platform,),
    )
    return cursor.rowcount


async def counts(conn: aiosqlite.Connection, platform: str) -> tuple[int, int]:
    """(pending, done) rows of the platform."""
    async with conn.execute(
        "SELECT COALESCE(SUM(done_at IS NULL), 0), COALESCE(SUM(done_at IS NOT NULL), 0) FROM inbox WHERE platform = ?",
        (platform,),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]), int(row[1])


async def last_seq(conn: aiosqlite.Connection, platform: str, chat_id: str) -> int | None:
    """The highest ``seq`` recorded for the chat (Discord: the newest message id handled in that channel)."""
    async with conn.execute(
        "SELECT MAX(seq) FROM inbox WHERE platform = ? AND chat_id = ?", (platform, chat_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def prune(conn: aiosqlite.Connection, *, before: float) -> int:
    """Forget rows done before ``before`` (they only served to recognise redeliveries)."""
    cursor = await conn.execute("DELETE FROM inbox WHERE done_at IS NOT NULL AND done_at < ?", (before,))
    return cursor.rowcount


def _item(row: tuple, *, attempts: int) -> InboxItem:
    return InboxItem(
        id=int(row[0]), platform=row[1], key=row[2], chat_id=row[3], seq=int(row[4]), payload=row[5], attempts=attempts
    )
