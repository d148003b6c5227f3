"""SQL for the moderators' dashboard: the review queue, a member's history, daily counts, per-chat exports, and the
dashboard's signing key. Parameterised queries only; run by ``Storage`` like the other query modules."""

from __future__ import annotations

import aiosqlite

from bot.core.records import EventRecord
from bot.core.types import ChatRef
from bot.storage.events import _SELECT_EVENT, _record

DAY_SECONDS = 86400


async def queue(
    conn: aiosqlite.Connection,
    chat: ChatRef,
    *,
    author_id: str | None = None,
    unreviewed_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[EventRecord]:
    """The chat's flagged and acted events, newest first; optionally one member's, only unreviewed, or older than
    ``before_id`` (the next page)."""
    where = ["e.platform = ?", "e.chat_id = ?", "e.action != 'none'"]
    params: list[object] = [chat.platform, chat.chat_id]
    if author_id is not None:
        where.append("e.author_id = ?")
        params.append(author_id)
    if unreviewed_only:
        where.append("f.correct IS NULL")
    if before_id is not None:
        where.append("e.id < ?")
        params.append(before_id)
    query = _SELECT_EVENT + "WHERE " + " AND ".join(where) + " ORDER BY e.id DESC LIMIT ?"
    async with conn.execute(query, (*params, limit)) as cursor:
        return [_record(row) for row in await cursor.fetchall()]


async def authors(conn: aiosqlite.Connection, chat: ChatRef, *, prefix: str = "", limit: int = 20) -> list[str]:
    """Ids of the chat's members with logged events, starting with ``prefix`` (the member search)."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with conn.execute(
        "SELECT author_id FROM events WHERE platform = ? AND chat_id = ? AND author_id LIKE ? ESCAPE '\\' "
        "GROUP BY author_id ORDER BY MAX(id) DESC LIMIT ?",
        (chat.platform, chat.chat_id, pattern, limit),
    ) as cursor:
        return [row[0] for row in await cursor.fetchall()]


async def daily_actions(conn: aiosqlite.Connection, chat: ChatRef, *, since: float) -> list[tuple[int, str, int]]:
    """(day number since the epoch, action, events) of the chat since ``since``."""
    return await _rows(
        conn,
        "SELECT CAST(created_at / ? AS INTEGER), action, COUNT(*) FROM events "
        "WHERE platform = ? AND chat_id = ? AND created_at >= ? GROUP BY 1, 2 ORDER BY 1, 2",
        (DAY_SECONDS, chat.platform, chat.chat_id, since),
    )


async def daily_labels(conn: aiosqlite.Connection, chat: ChatRef, *, since: float) -> list[tuple[int, str, int]]:
    """(day, label, events on which the label was over its threshold) of the chat since ``since``."""
    return await _rows(
        conn,
        "SELECT CAST(e.created_at / ? AS INTEGER), j.value, COUNT(*) FROM events e, json_each(e.flagged) j "
        "WHERE e.platform = ? AND e.chat_id = ? AND e.created_at >= ? GROUP BY 1, 2 ORDER BY 1, 2",
        (DAY_SECONDS, chat.platform, chat.chat_id, since),
    )


async def daily_reviews(conn: aiosqlite.Connection, chat: ChatRef, *, since: float) -> list[tuple[int, int, int]]:
    """(day of the event, confirmed, marked not toxic) for the chat's reviewed events since ``since``."""
    return await _rows(
        conn,
        "SELECT CAST(e.created_at / ? AS INTEGER), SUM(f.correct), SUM(1 - f.correct) FROM feedback f "
        "JOIN events e ON e.id = f.event_id WHERE e.platform = ? AND e.chat_id = ? AND e.created_at >= ? "
        "GROUP BY 1 ORDER BY 1",
        (DAY_SECONDS, chat.platform, chat.chat_id, since),
    )


async def reviewed(conn: aiosqlite.Connection, chat: ChatRef) -> list[EventRecord]:
    """The chat's reviewed events, oldest first (the export)."""
    async with conn.execute(
        _SELECT_EVENT + "WHERE e.platform = ? AND e.chat_id = ? AND f.correct IS NOT NULL ORDER BY e.id",
        (chat.platform, chat.chat_id),
    ) as cursor:
        return [_record(row) for row in await cursor.fetchall()]


async def secret(conn: aiosqlite.Connection, name: str, candidate: str, *, now: float) -> str:
    """The stored secret called ``name``; ``candidate`` is stored first when there is none (first start)."""
    await conn.execute(
        "INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        (name, candidate, now),
    )
    async with conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    return str(row[0])


async def _rows(conn: aiosqlite.Connection, query: str, params: tuple) -> list:
    async with conn.execute(query, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]
