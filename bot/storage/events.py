"""Queries of the moderation log: events, strikes, feedback and their statistics (run by ``Storage``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Row, Select, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.errors import UnknownEventError
from bot.core.explain import Explanation
from bot.core.model_folder import LabelThresholds
from bot.core.records import Action, ActionReport, ChatStats, EventRecord, NewEvent, excerpt
from bot.core.types import ChatRef
from bot.storage.chat_settings import thresholds_overrides
from bot.storage.queries import json_array_elements, upsert
from bot.storage.tables import events, feedback, strikes

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


async def insert(conn: AsyncConnection, event: NewEvent) -> int:
    """Insert the event (text only when the chat opted in, else an excerpt) and its strike; return the event id."""
    text = event.text if event.store_text else excerpt(event.text)
    values = {
        "created_at": event.created_at,
        "platform": event.chat.platform,
        "chat_id": event.chat.chat_id,
        "message_id": event.message_id,
        "author_id": event.author_id,
        "model": event.model,
        "scores": json.dumps({label: round(float(score), 6) for label, score in event.scores.items()}),
        "action": str(event.action),
        "reason": event.reason,
        "flagged": json.dumps(list(event.flagged)),
        "triggered": json.dumps(list(event.triggered)),
        "thresholds": json.dumps({label: {"flag": t.flag, "act": t.act} for label, t in event.thresholds.items()}),
        "text": text,
        "text_stored": int(event.store_text),
        "timeout_seconds": event.timeout_seconds,
        "explanation": None if event.explanation is None else event.explanation.to_json(),
    }
    event_id = int((await conn.execute(events.insert().values(values).returning(events.c.id))).scalar_one())
    if event.strike:
        await conn.execute(
            strikes.insert().values(
                event_id=event_id,
                platform=event.chat.platform,
                chat_id=event.chat.chat_id,
                author_id=event.author_id,
                created_at=event.created_at,
            )
        )
    return event_id


async def count_strikes(conn: AsyncConnection, chat: ChatRef, author_id: str, *, since: float) -> int:
    """Strikes of the author in the chat since ``since`` that feedback has not cleared."""
    c = strikes.c
    query = select(func.count()).where(
        c.platform == chat.platform,
        c.chat_id == chat.chat_id,
        c.author_id == author_id,
        c.created_at >= since,
        c.cleared_at.is_(None),
    )
    return int((await conn.execute(query)).scalar_one())


async def set_action_report(conn: AsyncConnection, event_id: int, report: ActionReport) -> None:
    values = {"action_ok": int(report.ok), "action_result": report.detail}
    done = await conn.execute(update(events).where(events.c.id == event_id).values(values))
    if done.rowcount == 0:
        raise UnknownEventError(event_id)


async def get(conn: AsyncConnection, event_id: int) -> EventRecord:
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
