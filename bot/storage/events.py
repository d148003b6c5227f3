"""Queries of the moderation log: events, strikes, feedback and their statistics (run by ``Storage``)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Row, Select, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.errors import UnknownEventError
from bot.core.explain import Explanation
from bot.core.model_folder import LabelThresholds
from bot.core.outbox import PendingAction
from bot.core.records import Action, ActionReport, ChatStats, EventRecord, NewEvent, Recorded, excerpt
from bot.core.types import ChatRef
from bot.storage import inbox as inbox_rows
from bot.storage.chat_settings import thresholds_overrides
from bot.storage.queries import json_array_elements, upsert
from bot.storage.tables import events, feedback, inbox, strikes

EVENT: Select[Any] = (  # an event with its strike and its verdict
    select(
        events,
        strikes.c.id.is_not(None).label("has_strike"),
        strikes.c.cleared_at.is_not(None).label("strike_cleared"),
        feedback.c.correct,
    )
    .outerjoin(strikes, strikes.c.event_id == events.c.id)
    .outerjoin(feedback, feedback.c.event_id == events.c.id)
)


async def record(conn: AsyncConnection, event: NewEvent, *, lease: float) -> Recorded:
    """Log the decision on a message once: a new event (and its strike), or the update of the message's event.

    A redelivery (same text, or a revision not newer than the stored one) changes nothing. An edit re-scores the same
    event: the decision may change, a strike is added if the message had none (never a second one). The inbox row
    is marked done in the same transaction. ``act``: the decision is new and has an action to carry out, due
    ``lease`` seconds later unless its report comes first (a crash in between leaves it to ``due_actions``).
    """
    digest = hashlib.sha256(event.text.encode("utf-8", "replace")).hexdigest()
    e = events.c
    existing = (
        await conn.execute(
            select(e.id, e.revision, e.text_hash, e.action).where(
                e.platform == event.chat.platform, e.chat_id == event.chat.chat_id, e.message_id == event.message_id
            )
        )
    ).first()
    acting = str(event.action) != "none"
    changed = True
    if existing is None:
        event_id = await _insert(conn, event, digest, due_at=event.created_at + lease if acting else None)
        act = acting
    elif event.revision <= existing.revision or digest == existing.text_hash:
        event_id, act, changed = int(existing.id), False, False
    else:
        event_id = int(existing.id)
        act = acting and str(event.action) != existing.action
        due_at = event.created_at + lease if act else None
        values = _values(event) | {"text_hash": digest}
        if due_at is not None:  # the changed decision is carried out again
            values |= {"action_state": "pending", "action_attempts": 0, "action_due_at": due_at}
        await conn.execute(update(events).where(e.id == event_id).values(values))
    if event.strike and changed:
        has_strike = (await conn.execute(select(strikes.c.id).where(strikes.c.event_id == event_id))).first()
        if has_strike is None:
            await conn.execute(
                strikes.insert().values(
                    event_id=event_id,
                    platform=event.chat.platform,
                    chat_id=event.chat.chat_id,
                    author_id=event.author_id,
                    created_at=event.created_at,
                )
            )
    if event.inbox_id is not None:
        await inbox_rows.done(conn, event.inbox_id, now=event.created_at)
    return Recorded(event_id, act)


async def insert(conn: AsyncConnection, event: NewEvent) -> int:
    """Log the event (and its strike) as ``record`` does; return the event id."""
    return (await record(conn, event, lease=0.0)).event_id


def _values(event: NewEvent) -> dict[str, Any]:
    """The columns a decision sets (text only when the chat opted in, else an excerpt)."""
    return {
        "model": event.model,
        "scores": json.dumps({label: round(float(score), 6) for label, score in event.scores.items()}),
        "action": str(event.action),
        "reason": event.reason,
        "flagged": json.dumps(list(event.flagged)),
        "triggered": json.dumps(list(event.triggered)),
        "thresholds": json.dumps({label: {"flag": t.flag, "act": t.act} for label, t in event.thresholds.items()}),
        "text": event.text if event.store_text else excerpt(event.text),
        "text_stored": int(event.store_text),
        "timeout_seconds": event.timeout_seconds,
        "revision": event.revision,
        "explanation": None if event.explanation is None else event.explanation.to_json(),
    }


async def _insert(conn: AsyncConnection, event: NewEvent, digest: str, *, due_at: float | None) -> int:
    values = _values(event) | {
        "created_at": event.created_at,
        "platform": event.chat.platform,
        "chat_id": event.chat.chat_id,
        "message_id": event.message_id,
        "author_id": event.author_id,
        "author_name": event.author_name,
        "text_hash": digest,
        "action_state": "settled" if due_at is None else "pending",
        "action_due_at": due_at,
    }
    return int((await conn.execute(events.insert().values(values).returning(events.c.id))).scalar_one())


async def count_strikes(
    conn: AsyncConnection, chat: ChatRef, author_id: str, *, since: float, excluding: str | None = None
) -> int:
    """Uncleared strikes of the author in the chat since ``since``, but for the one of message ``excluding``."""
    c = strikes.c
    query = select(func.count()).where(
        c.platform == chat.platform,
        c.chat_id == chat.chat_id,
        c.author_id == author_id,
        c.created_at >= since,
        c.cleared_at.is_(None),
    )
    if excluding is not None:
        query = query.join(events, events.c.id == c.event_id).where(events.c.message_id != excluding)
    return int((await conn.execute(query)).scalar_one())


async def set_action_report(
    conn: AsyncConnection, event_id: int, report: ActionReport, *, retry_at: float | None = None
) -> None:
    """What the platform answered; with ``retry_at`` the action is due again then, else it is settled."""
    e = events.c
    values = {
        "action_ok": int(report.ok),
        "action_result": report.detail,
        "action_attempts": e.action_attempts + 1,
        "action_state": "settled" if retry_at is None else "retry",
        "action_due_at": retry_at,
    }
    done = await conn.execute(update(events).where(e.id == event_id).values(values))
    if done.rowcount == 0:
        raise UnknownEventError(event_id)


async def action_attempts(conn: AsyncConnection, event_id: int) -> int:
    value = (await conn.execute(select(events.c.action_attempts).where(events.c.id == event_id))).scalar()
    if value is None:
        raise UnknownEventError(event_id)
    return int(value)


async def due_actions(
    conn: AsyncConnection, platform: str, *, now: float, limit: int, lease: float
) -> list[PendingAction]:
    """Actions due by ``now`` (cut short by a crash, or to retry), oldest first, leased to the caller.

    Another process skips the rows this one chose (PostgreSQL ``FOR UPDATE SKIP LOCKED``).
    """
    e = events.c
    chosen = (
        select(e.id)
        .where(e.platform == platform, e.action_state != "settled", e.action_due_at <= now)
        .order_by(e.action_due_at, e.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = [int(row[0]) for row in await conn.execute(chosen)]
    if not ids:
        return []
    await conn.execute(update(events).where(e.id.in_(ids)).values(action_due_at=now + lease))
    query = (
        select(events, inbox.c.chat_id.label("place"))
        .outerjoin(inbox, (inbox.c.key == e.message_id) & inbox.c.platform.startswith(e.platform))  # or its shard
        .where(e.id.in_(ids))
        .order_by(e.id)
    )
    return [
        PendingAction(
            event_id=int(row.id),
            chat=ChatRef(row.platform, row.chat_id),
            message_id=row.message_id,
            author_id=row.author_id,
            author_name=row.author_name,
            action=row.action,
            reason=row.reason,
            triggered=tuple(json.loads(row.triggered)),
            timeout_seconds=int(row.timeout_seconds),
            attempts=int(row.action_attempts),
            place=row.place,
        )
        for row in await conn.execute(query)
    ]


async def release_actions(conn: AsyncConnection, platform: str, *, now: float) -> int:
    """At start: actions a dead process had in hand (still ``pending``) are due at once."""
    e = events.c
    done = await conn.execute(
        update(events)
        .where(e.platform == platform, e.action_state == "pending", e.action_due_at > now)
        .values(action_due_at=now)
    )
    return done.rowcount


MAX_ID = 2**63 - 1  # 64-bit integers: a larger id (a crafted button or command) names no event


async def get(conn: AsyncConnection, event_id: int) -> EventRecord:
    if not 0 < event_id <= MAX_ID:
        raise UnknownEventError(event_id)
    row = (await conn.execute(EVENT.where(events.c.id == event_id))).first()
    if row is None:
        raise UnknownEventError(event_id)
    return event_record(row)


async def recent(conn: AsyncConnection, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]:
    """The chat's latest events, newest first."""
    query = (
        EVENT.where(events.c.platform == chat.platform, events.c.chat_id == chat.chat_id)
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return [event_record(row) for row in await conn.execute(query)]


async def reviewed(conn: AsyncConnection) -> list[EventRecord]:
    """Every event an admin has reviewed, oldest first."""
    query = EVENT.where(feedback.c.correct.is_not(None)).order_by(events.c.id)
    return [event_record(row) for row in await conn.execute(query)]


async def record_feedback(conn: AsyncConnection, event_id: int, actor_id: str, correct: bool, *, now: float) -> bool:
    """Store the verdict (a later one replaces it). "Not toxic" clears the event's strike, "confirm" restores it.

    Returns True when this call cleared a strike.
    """
    await get(conn, event_id)  # raises UnknownEventError
    values = {"event_id": event_id, "actor_id": actor_id, "correct": int(correct), "created_at": now}
    await conn.execute(upsert(conn, feedback, values, key=("event_id",)))
    if correct:
        await conn.execute(update(strikes).where(strikes.c.event_id == event_id).values(cleared_at=None))
        return False
    cleared = await conn.execute(
        update(strikes).where(strikes.c.event_id == event_id, strikes.c.cleared_at.is_(None)).values(cleared_at=now)
    )
    return cleared.rowcount > 0


async def stats(conn: AsyncConnection, chat: ChatRef, *, model: str | None) -> ChatStats:
    e = events.c
    in_chat = (e.platform == chat.platform, e.chat_id == chat.chat_id)
    actions = select(e.action, func.count()).where(*in_chat).group_by(e.action)
    by_action = {row[0]: row[1] for row in await conn.execute(actions)}
    label = json_array_elements(conn, e.flagged)
    labels = (
        select(label.c.value, func.count())
        .select_from(events.join(label, true()))
        .where(*in_chat)
        .group_by(label.c.value)
        .order_by(func.count().desc(), label.c.value)
    )
    by_label = {row[0]: row[1] for row in await conn.execute(labels)}
    verdicts = (
        select(feedback.c.correct, func.count())
        .join(events, events.c.id == feedback.c.event_id)
        .where(*in_chat)
        .group_by(feedback.c.correct)
    )
    verdict = {int(row[0]): row[1] for row in await conn.execute(verdicts)}
    active = await conn.execute(
        select(func.count()).where(
            strikes.c.platform == chat.platform, strikes.c.chat_id == chat.chat_id, strikes.c.cleared_at.is_(None)
        )
    )
    failures = await conn.execute(select(func.count()).where(*in_chat, e.action_ok == 0))
    return ChatStats(
        chat=chat,
        model=model,
        events=sum(by_action.values()),
        by_action=by_action,
        by_label=by_label,
        confirmed=verdict.get(1, 0),
        rejected=verdict.get(0, 0),
        active_strikes=int(active.scalar_one()),
        action_failures=int(failures.scalar_one()),
    )


def event_record(row: Row[Any]) -> EventRecord:
    r = row._mapping
    return EventRecord(
        id=int(r["id"]),
        created_at=r["created_at"],
        chat=ChatRef(platform=r["platform"], chat_id=r["chat_id"]),
        message_id=r["message_id"],
        author_id=r["author_id"],
        model=r["model"],
        scores=json.loads(r["scores"]),
        action=Action(r["action"]),
        reason=r["reason"],
        flagged=tuple(json.loads(r["flagged"])),
        triggered=tuple(json.loads(r["triggered"])),
        thresholds={
            label: LabelThresholds(**points)
            for label, points in thresholds_overrides(json.loads(r["thresholds"])).items()
        },
        text=r["text"],
        text_stored=bool(r["text_stored"]),
        timeout_seconds=int(r["timeout_seconds"]),
        report=None if r["action_ok"] is None else ActionReport(bool(r["action_ok"]), r["action_result"] or ""),
        has_strike=bool(r["has_strike"]),
        strike_cleared=bool(r["strike_cleared"]),
        feedback_correct=None if r["correct"] is None else bool(r["correct"]),
        explanation=Explanation.from_json(r["explanation"]),
    )
