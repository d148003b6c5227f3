"""Queries of the moderators' dashboard: the review queue, a member's history, daily counts, per-chat exports, and
the dashboard's signing key (run by ``Storage``; SQLAlchemy Core, so both engines run the same statements)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, cast, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.records import Action, EventRecord
from bot.core.types import ChatRef
from bot.storage.events import EVENT, event_record
from bot.storage.queries import json_array_elements
from bot.storage.tables import events, feedback, secrets

DAY_SECONDS = 86400


async def queue(
    conn: AsyncConnection,
    chat: ChatRef,
    *,
    author_id: str | None = None,
    unreviewed_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[EventRecord]:
    """The chat's flagged and acted events, newest first; optionally one member's, only unreviewed, or older than
    ``before_id`` (the next page)."""
    e = events.c
    query = EVENT.where(e.platform == chat.platform, e.chat_id == chat.chat_id, e.action != str(Action.NONE))
    if author_id is not None:
        query = query.where(e.author_id == author_id)
    if unreviewed_only:
        query = query.where(feedback.c.correct.is_(None))
    if before_id is not None:
        query = query.where(e.id < before_id)
    return [event_record(row) for row in await conn.execute(query.order_by(e.id.desc()).limit(limit))]


async def authors(conn: AsyncConnection, chat: ChatRef, *, prefix: str = "", limit: int = 20) -> list[str]:
    """Ids of the chat's members with logged events that start with ``prefix`` (the member search), latest first."""
    e = events.c
    query = (
        select(e.author_id)
        .where(e.platform == chat.platform, e.chat_id == chat.chat_id, e.author_id.startswith(prefix, autoescape=True))
        .group_by(e.author_id)
        .order_by(func.max(e.id).desc())
        .limit(limit)
    )
    return [row[0] for row in await conn.execute(query)]


def _day(column: Any) -> Any:
    """Days since the epoch (UTC) of a timestamp column, the same on both engines."""
    return cast(func.floor(column / DAY_SECONDS), Integer)


async def daily_actions(conn: AsyncConnection, chat: ChatRef, *, since: float) -> list[tuple[int, str, int]]:
    """(day, action, events) of the chat since ``since``."""
    e = events.c
    day = _day(e.created_at).label("day")
    query = (
        select(day, e.action, func.count())
        .where(e.platform == chat.platform, e.chat_id == chat.chat_id, e.created_at >= since)
        .group_by(day, e.action)
        .order_by(day, e.action)
    )
    return [(int(row[0]), str(row[1]), int(row[2])) for row in await conn.execute(query)]


async def daily_labels(conn: AsyncConnection, chat: ChatRef, *, since: float) -> list[tuple[int, str, int]]:
    """(day, label, events on which the label was over its threshold) of the chat since ``since``."""
    e = events.c
    label = json_array_elements(conn, e.flagged)
    day = _day(e.created_at).label("day")
    query = (
        select(day, label.c.value, func.count())
        .select_from(events.join(label, true()))
        .where(e.platform == chat.platform, e.chat_id == chat.chat_id, e.created_at >= since)
        .group_by(day, label.c.value)
        .order_by(day, label.c.value)
    )
    return [(int(row[0]), str(row[1]), int(row[2])) for row in await conn.execute(query)]


async def daily_reviews(conn: AsyncConnection, chat: ChatRef, *, since: float) -> list[tuple[int, int, int]]:
    """(day of the event, confirmed, marked not toxic) of the chat's reviewed events since ``since``."""
    e = events.c
    day = _day(e.created_at).label("day")
    query = (
        select(day, func.sum(feedback.c.correct), func.sum(1 - feedback.c.correct))
        .select_from(feedback.join(events, e.id == feedback.c.event_id))
        .where(e.platform == chat.platform, e.chat_id == chat.chat_id, e.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    return [(int(row[0]), int(row[1]), int(row[2])) for row in await conn.execute(query)]


async def reviewed(conn: AsyncConnection, chat: ChatRef) -> list[EventRecord]:
    """The chat's reviewed events, oldest first (the export)."""
    e = events.c
    query = EVENT.where(e.platform == chat.platform, e.chat_id == chat.chat_id, feedback.c.correct.is_not(None))
    return [event_record(row) for row in await conn.execute(query.order_by(e.id))]


async def secret(conn: AsyncConnection, name: str, candidate: str, *, now: float) -> str:
    """The secret stored under ``name``; ``candidate`` is stored first when there is none (first start). Several
    processes starting at once all get the first one stored."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(secrets).values(name=name, value=candidate, created_at=now)
    await conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
    return str((await conn.execute(select(secrets.c.value).where(secrets.c.name == name))).scalar_one())
