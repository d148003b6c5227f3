"""SQL for the moderation log: events, strikes, feedback and their statistics (run by ``Storage``)."""

from __future__ import annotations

import hashlib
import json

import aiosqlite

from bot.core.errors import UnknownEventError
from bot.core.outbox import PendingAction
from bot.core.records import Action, ActionReport, ChatStats, EventRecord, NewEvent, Recorded, excerpt
from bot.core.types import ChatRef
from bot.storage import inbox

_SELECT_EVENT = """
SELECT e.id, e.created_at, e.platform, e.chat_id, e.message_id, e.author_id, e.model, e.scores, e.action, e.reason,
       e.flagged, e.triggered, e.thresholds, e.text, e.text_stored, e.timeout_seconds, e.action_ok, e.action_result,
       s.id IS NOT NULL, s.cleared_at IS NOT NULL, f.correct
FROM events e
LEFT JOIN strikes s ON s.event_id = e.id
LEFT JOIN feedback f ON f.event_id = e.id
"""


async def record(conn: aiosqlite.Connection, event: NewEvent, *, lease: float) -> Recorded:
    """Log the decision on a message once: a new event (and its strike), or the update of the message's event.

    A redelivery (same text, or a revision not newer than the stored one) changes nothing. An edit re-scores the same
    event: the decision may change, a strike is added if the message had none (never a second one). The inbox row
    is marked done in the same transaction. ``act``: the decision is new and has an action to carry out.
    """
    digest = hashlib.sha256(event.text.encode("utf-8", "replace")).hexdigest()
    async with conn.execute(
        "SELECT id, revision, text_hash, action FROM events WHERE platform = ? AND chat_id = ? AND message_id = ?",
        (event.chat.platform, event.chat.chat_id, event.message_id),
    ) as cursor:
        existing = await cursor.fetchone()
    acting = str(event.action) != "none"
    changed = True
    if existing is None:
        event_id = await _insert(conn, event, digest, due_at=event.created_at + lease if acting else None)
        act = acting
    elif event.revision <= existing[1] or digest == existing[2]:
        event_id, act, changed = int(existing[0]), False, False
    else:
        event_id = int(existing[0])
        act = acting and str(event.action) != existing[3]
        await _update(conn, event_id, event, digest, due_at=event.created_at + lease if act else None)
    if event.strike and changed:
        await conn.execute(
            "INSERT INTO strikes (event_id, platform, chat_id, author_id, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (event_id) DO NOTHING",
            (event_id, event.chat.platform, event.chat.chat_id, event.author_id, event.created_at),
        )
    if event.inbox_id is not None:
        await inbox.done(conn, event.inbox_id, now=event.created_at)
    return Recorded(event_id, act)


async def insert(conn: aiosqlite.Connection, event: NewEvent) -> int:
    """Log the event (and its strike) as ``record`` does; return the event id."""
    return (await record(conn, event, lease=0.0)).event_id


def _values(event: NewEvent) -> tuple:
    text = event.text if event.store_text else excerpt(event.text)
    return (
        event.model,
        json.dumps({label: round(float(score), 6) for label, score in event.scores.items()}),
        str(event.action),
        event.reason,
        json.dumps(list(event.flagged)),
        json.dumps(list(event.triggered)),
        json.dumps(dict(event.thresholds)),
        text,
        int(event.store_text),
        event.timeout_seconds,
        event.revision,
    )


async def _insert(conn: aiosqlite.Connection, event: NewEvent, digest: str, *, due_at: float | None) -> int:
    cursor = await conn.execute(
        "INSERT INTO events (created_at, platform, chat_id, message_id, author_id, author_name, model, scores, "
        "action, reason, flagged, triggered, thresholds, text, text_stored, timeout_seconds, revision, text_hash, "
        "action_state, action_due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.created_at,
            event.chat.platform,
            event.chat.chat_id,
            event.message_id,
            event.author_id,
            event.author_name,
            *_values(event),
            digest,
            "settled" if due_at is None else "pending",
            due_at,
        ),
    )
    event_id = cursor.lastrowid
    await cursor.close()
    return int(event_id)


async def _update(
    conn: aiosqlite.Connection, event_id: int, event: NewEvent, digest: str, *, due_at: float | None
) -> None:
    """An edit: the new scores and decision replace the old ones; its action is due again when it changed."""
    await conn.execute(
        "UPDATE events SET model = ?, scores = ?, action = ?, reason = ?, flagged = ?, triggered = ?, thresholds = ?, "
        "text = ?, text_stored = ?, timeout_seconds = ?, revision = ?, text_hash = ?, "
        "action_state = CASE WHEN ? IS NULL THEN action_state ELSE 'pending' END, "
        "action_attempts = CASE WHEN ? IS NULL THEN action_attempts ELSE 0 END, "
        "action_due_at = COALESCE(?, action_due_at) WHERE id = ?",
        (*_values(event), digest, due_at, due_at, due_at, event_id),
    )


async def count_strikes(
    conn: aiosqlite.Connection, chat: ChatRef, author_id: str, *, since: float, excluding: str | None = None
) -> int:
    """Uncleared strikes of the author in the chat since ``since``, but for the one of message ``excluding``."""
    async with conn.execute(
        "SELECT COUNT(*) FROM strikes s JOIN events e ON e.id = s.event_id WHERE s.platform = ? AND s.chat_id = ? "
        "AND s.author_id = ? AND s.created_at >= ? AND s.cleared_at IS NULL AND e.message_id IS NOT ?",
        (chat.platform, chat.chat_id, author_id, since, excluding),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0])


async def set_action_report(
    conn: aiosqlite.Connection, event_id: int, report: ActionReport, *, retry_at: float | None = None
) -> None:
    """What the platform answered; with ``retry_at`` the action is due again then, else it is settled."""
    cursor = await conn.execute(
        "UPDATE events SET action_ok = ?, action_result = ?, action_attempts = action_attempts + 1, "
        "action_state = CASE WHEN ? IS NULL THEN 'settled' ELSE 'retry' END, action_due_at = ? WHERE id = ?",
        (int(report.ok), report.detail, retry_at, retry_at, event_id),
    )
    if cursor.rowcount == 0:
        raise UnknownEventError(event_id)


async def action_attempts(conn: aiosqlite.Connection, event_id: int) -> int:
    async with conn.execute("SELECT action_attempts FROM events WHERE id = ?", (event_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise UnknownEventError(event_id)
    return int(row[0])


async def due_actions(
    conn: aiosqlite.Connection, platform: str, *, now: float, limit: int, lease: float
) -> list[PendingAction]:
    """Actions due by ``now`` (cut short by a crash, or to retry), oldest first, leased to the caller."""
    async with conn.execute(
        "SELECT e.id, e.platform, e.chat_id, e.message_id, e.author_id, e.author_name, e.action, e.reason, "
        "e.triggered, e.timeout_seconds, e.action_attempts, i.chat_id FROM events e "
        "LEFT JOIN inbox i ON i.platform = e.platform AND i.key = e.message_id "
        "WHERE e.platform = ? AND e.action_state != 'settled' AND e.action_due_at <= ? "
        "ORDER BY e.action_due_at, e.id LIMIT ?",
        (platform, now, limit),
    ) as cursor:
        rows = await cursor.fetchall()
    if rows:
        marks = ", ".join("?" for _ in rows)
        await conn.execute(
            f"UPDATE events SET action_due_at = ? WHERE id IN ({marks})",  # noqa: S608 - only placeholders
            (now + lease, *(row[0] for row in rows)),
        )
    return [
        PendingAction(
            event_id=row[0],
            chat=ChatRef(row[1], row[2]),
            message_id=row[3],
            author_id=row[4],
            author_name=row[5],
            action=row[6],
            reason=row[7],
            triggered=tuple(json.loads(row[8])),
            timeout_seconds=int(row[9]),
            attempts=int(row[10]),
            place=row[11],
        )
        for row in rows
    ]


async def release_actions(conn: aiosqlite.Connection, platform: str, *, now: float) -> int:
    """At start: actions a dead process had in hand (still ``pending``) are due at once."""
    cursor = await conn.execute(
        "UPDATE events SET action_due_at = ? WHERE platform = ? AND action_state = 'pending' AND action_due_at > ?",
        (now, platform, now),
    )
    return cursor.rowcount


MAX_ID = 2**63 - 1  # SQLite integers are 64-bit: a larger id (a crafted button or command) names no event


async def get(conn: aiosqlite.Connection, event_id: int) -> EventRecord:
    if not 0 < event_id <= MAX_ID:
        raise UnknownEventError(event_id)
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
        thresholds=json.loads(row[12]),
        text=row[13],
        text_stored=bool(row[14]),
        timeout_seconds=int(row[15]),
        report=None if row[16] is None else ActionReport(bool(row[16]), row[17] or ""),
        has_strike=bool(row[18]),
        strike_cleared=bool(row[19]),
        feedback_correct=None if row[20] is None else bool(row[20]),
    )
