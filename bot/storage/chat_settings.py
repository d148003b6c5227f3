"""Queries of per-chat settings and the admin audit log (run by ``Storage`` inside its transactions)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.model_folder import POINTS
from bot.core.records import Action, AuditEntry, ChatSettings
from bot.core.types import ChatRef
from bot.storage.queries import upsert
from bot.storage.tables import audit_log as audit_table
from bot.storage.tables import chat_settings as table

_KEY = ("platform", "chat_id")


async def load(conn: AsyncConnection, chat: ChatRef) -> ChatSettings:
    """The chat's settings, or the defaults when it never changed any."""
    query = select(table).where(table.c.platform == chat.platform, table.c.chat_id == chat.chat_id)
    row = (await conn.execute(query)).mappings().first()
    if row is None:
        return ChatSettings(chat=chat)
    return ChatSettings(
        chat=chat,
        model=row["model"],
        thresholds=thresholds_overrides(json.loads(row["thresholds"])),
        action=Action(row["action"]),
        acting_labels=tuple(json.loads(row["acting_labels"])),
        strike_limit=int(row["strike_limit"]),
        strike_window_seconds=int(row["strike_window_seconds"]),
        timeout_seconds=int(row["timeout_seconds"]),
        exempt_users=frozenset(json.loads(row["exempt_users"])),
        exempt_roles=frozenset(json.loads(row["exempt_roles"])),
        log_channel=row["log_channel"],
        enabled=bool(row["enabled"]),
        store_text=bool(row["store_text"]),
        language_gate=bool(row["language_gate"]),
    )


async def save(conn: AsyncConnection, settings: ChatSettings, *, now: float) -> None:
    """Insert or update the chat's row."""
    values = {
        "platform": settings.chat.platform,
        "chat_id": settings.chat.chat_id,
        "model": settings.model,
        "thresholds": json.dumps(
            {label: dict(sorted(pts.items())) for label, pts in sorted(settings.thresholds.items())}
        ),
        "action": str(settings.action),
        "acting_labels": json.dumps(list(settings.acting_labels)),
        "strike_limit": settings.strike_limit,
        "strike_window_seconds": settings.strike_window_seconds,
        "timeout_seconds": settings.timeout_seconds,
        "exempt_users": json.dumps(sorted(settings.exempt_users)),
        "exempt_roles": json.dumps(sorted(settings.exempt_roles)),
        "log_channel": settings.log_channel,
        "enabled": int(settings.enabled),
        "store_text": int(settings.store_text),
        "language_gate": int(settings.language_gate),
        "updated_at": now,
    }
    await conn.execute(upsert(conn, table, values, key=_KEY))


def thresholds_overrides(raw: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Stored overrides as ``{label: {point: x}}``; a bare number (stored before flag/act existed) means both."""
    return {
        str(label): {str(point): float(x) for point, x in value.items()}
        if isinstance(value, dict)
        else dict.fromkeys(POINTS, float(value))
        for label, value in raw.items()
    }


def changes(old: ChatSettings, new: ChatSettings) -> list[tuple[str, Any, Any]]:
    """(setting, old value, new value) for every field that differs, as JSON-friendly values."""
    return [
        (item.name, _plain(getattr(old, item.name)), _plain(getattr(new, item.name)))
        for item in fields(ChatSettings)
        if item.name != "chat" and getattr(old, item.name) != getattr(new, item.name)
    ]


async def record_audit(
    conn: AsyncConnection, chat: ChatRef, actor_id: str, diff: list[tuple[str, Any, Any]], *, now: float
) -> None:
    rows = [
        {
            "created_at": now,
            "platform": chat.platform,
            "chat_id": chat.chat_id,
            "actor_id": actor_id,
            "setting": name,
            "old_value": json.dumps(old),
            "new_value": json.dumps(new),
        }
        for name, old, new in diff
    ]
    await conn.execute(audit_table.insert(), rows)


async def audit_log(conn: AsyncConnection, chat: ChatRef, *, limit: int = 50) -> list[AuditEntry]:
    """The chat's most recent admin changes, newest first."""
    c = audit_table.c
    query = (
        select(c.created_at, c.actor_id, c.setting, c.old_value, c.new_value)
        .where(c.platform == chat.platform, c.chat_id == chat.chat_id)
        .order_by(c.id.desc())
        .limit(limit)
    )
    return [
        AuditEntry(created_at=row[0], chat=chat, actor_id=row[1], setting=row[2], old=_load(row[3]), new=_load(row[4]))
        for row in await conn.execute(query)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return dict(sorted(value.items()))
    return value


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)
