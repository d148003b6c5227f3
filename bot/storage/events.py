"""SQL for the moderation log: events, strikes, feedback and their statistics (run by ``Storage``)."""

from __future__ import annotations

import json

import aiosqlite

from bot.core.errors import UnknownEventError
from bot.core.model_folder import LabelThresholds
from bot.core.records import Action, ActionReport, ChatStats, EventRecord, NewEvent, excerpt
from bot.core.types import ChatRef
from bot.storage.chat_settings import thresholds_overrides

_SELECT_EVENT = """
SELECT e.id, e.created_at, e.platform, e.chat_id, e.message_id, e.author_id, e.model, e.scores, e.action, e.reason,
       e.flagged, e.triggered, e.thresholds, e.text, e.text_stored, e.timeout_seconds, e.action_ok, e.action_result,
       s.id IS NOT NULL, s.cleared_at IS NOT NULL, f.correct
FROM events e
LEFT JOIN strikes s ON s.event_id = e.id
LEFT JOIN feedback f ON f.event_id = e.id
"""


async def insert(conn: aiosqlite.Connection, event: NewEvent) -> int:
    """Insert the event (text only when the chat opted in, else an excerpt) and its strike; return the event id."""
    text = event.text if event.store_text else excerpt(event.text)
    cursor = await conn.execute(
        "INSERT INTO events (created_at, platform, chat_id, message_id, author_id, model, scores, action, reason, "
        "flagged, triggered, thresholds, text, text_stored, timeout_seconds) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.created_at,
            event.chat.platform,
            event.chat.chat_id,
            event.message_id,
            event.author_id,
            event.model,
            json.dumps({label: round(float(score), 6) for label, score in event.scores.items()}),
            event.action,
            event.reason,
            json.dumps(list(event.flagged)),
            json.dumps(list(event.triggered)),
            json.dumps({label: {"flag": t.flag, "act": t.act} for label, t in event.thresholds.items()}),
            text,
            int(event.store_text),
            event.timeout_seconds,
        ),
    )
    event_id = cursor.lastrowid
    await cursor.close()
    if event.strike:
        await conn.execute(
            "INSERT INTO strikes (event_id, platform, chat_id, author_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (event_id, event.chat.platform, event.chat.chat_id, event.author_id, event.created_at),
        )
    return int(event_id)


async def count_strikes(conn: aiosqlite.Connection, chat: ChatRef, author_id: str, *, since: float) -> int:
    """Strikes of the author in the chat since ``since`` that feedback has not cleared."""
    async with conn.execute(
        "SELECT COUNT(*) FROM strikes WHERE platform = ? AND chat_id = ? AND author_id = ? AND created_at >= ? "
        "AND cleared_at IS NULL",
        (chat.platform, chat.chat_id, author_id, since),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def set_action_report(conn: aiosqlite.Connection, event_id: int, report: ActionReport) -> None:
    cursor = await conn.execute(
        "UPDATE events SET action_ok = ?, action_result = ? WHERE id = ?", (int(report.ok), report.detail, event_id)
    )
    if cursor.rowcount == 0:
        raise UnknownEventError(event_id)


async def get(conn: aiosqlite.Connection, event_id: int) -> EventRecord:
    async with conn.execute(_SELECT_EVENT + "WHERE e.id = ?", (event_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise UnknownEventError(event_id)
    return _record(row)


async def recent(conn: aiosqlite.Connection, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]:
    """The chat's latest events, newest first."""
    async with conn.execute(
        _SELECT_EVENT + "WHERE e.platform = ? AND e.chat_id = ? ORDER BY e.id DESC LIMIT ?",
        (chat.platform, chat.chat_id, limit),
    ) as cursor:
        return [_record(row) for row in await cursor.fetchall()]


async def reviewed(conn: aiosqlite.Connection) -> list[EventRecord]:
    """Every event an admin has reviewed, oldest first."""
    async with conn.execute(_SELECT_EVENT + "WHERE f.correct IS NOT NULL ORDER BY e.id") as cursor:
        return [_record(row) for row in await cursor.fetchall()]


async def record_feedback(
    conn: aiosqlite.Connection, event_id: int, actor_id: str, correct: bool, *, now: float
) -> bool:
    """Store the verdict (a later one replaces it). "Not toxic" clears the event's strike, "confirm" restores it.

    Returns True when this call cleared a strike.
    """
    await get(conn, event_id)  # raises UnknownEventError
    await conn.execute(
        "INSERT INTO feedback (event_id, actor_id, correct, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (event_id) DO UPDATE SET actor_id = excluded.actor_id, correct = excluded.correct, "
        "created_at = excluded.created_at",
        (event_id, actor_id, int(correct), now),
    )
    if correct:
        await conn.execute("UPDATE strikes SET cleared_at = NULL WHERE event_id = ?", (event_id,))
        return False
    cursor = await conn.execute(
        "UPDATE strikes SET cleared_at = ? WHERE event_id = ? AND cleared_at IS NULL", (now, event_id)
    )
    return cursor.rowcount > 0


async def stats(conn: aiosqlite.Connection, chat: ChatRef, *, model: str | None) -> ChatStats:
    key = (chat.platform, chat.chat_id)
    by_action = dict(
        await _pairs(
            conn, "SELECT action, COUNT(*) FROM events WHERE platform = ? AND chat_id = ? GROUP BY action", key
        )
    )
    by_label = dict(
        await _pairs(
            conn,
            "SELECT j.value, COUNT(*) FROM events e, json_each(e.flagged) j "
            "WHERE e.platform = ? AND e.chat_id = ? GROUP BY j.value ORDER BY COUNT(*) DESC, j.value",
            key,
        )
    )
    feedback = dict(
        await _pairs(
            conn,
            "SELECT f.correct, COUNT(*) FROM feedback f JOIN events e ON e.id = f.event_id "
            "WHERE e.platform = ? AND e.chat_id = ? GROUP BY f.correct",
            key,
        )
    )
    [[active]] = await _pairs(
        conn, "SELECT COUNT(*) FROM strikes WHERE platform = ? AND chat_id = ? AND cleared_at IS NULL", key
    )
    [[failures]] = await _pairs(
        conn, "SELECT COUNT(*) FROM events WHERE platform = ? AND chat_id = ? AND action_ok = 0", key
    )
    return ChatStats(
        chat=chat,
        model=model,
        events=sum(by_action.values()),
        by_action=by_action,
        by_label=by_label,
        confirmed=feedback.get(1, 0),
        rejected=feedback.get(0, 0),
        active_strikes=active,
        action_failures=failures,
    )


async def _pairs(conn: aiosqlite.Connection, query: str, params: tuple) -> list:
    async with conn.execute(query, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


def _record(row: tuple) -> EventRecord:
    return EventRecord(
        id=row[0],
        created_at=row[1],
        chat=ChatRef(platform=row[2], chat_id=row[3]),
        message_id=row[4],
        author_id=row[5],
        model=row[6],
        scores=json.loads(row[7]),
        action=Action(row[8]),
        reason=row[9],
        flagged=tuple(json.loads(row[10])),
        triggered=tuple(json.loads(row[11])),
        thresholds={
            label: LabelThresholds(**points) for label, points in thresholds_overrides(json.loads(row[12])).items()
        },
        text=row[13],
        text_stored=bool(row[14]),
        timeout_seconds=int(row[15]),
        report=None if row[16] is None else ActionReport(bool(row[16]), row[17] or ""),
        has_strike=bool(row[18]),
        strike_cleared=bool(row[19]),
        feedback_correct=None if row[20] is None else bool(row[20]),
    )
