"""SQL for per-chat settings and the admin audit log (called by ``Storage`` inside its transactions)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import aiosqlite

from bot.core.records import Action, AuditEntry, ChatSettings
from bot.core.types import ChatRef

_COLUMNS = (
    "model, thresholds, action, acting_labels, strike_limit, strike_window_seconds, timeout_seconds, "
    "exempt_users, exempt_roles, log_channel, enabled, store_text"
)


async def load(conn: aiosqlite.Connection, chat: ChatRef) -> ChatSettings:
    """The chat's settings, or the defaults when it never changed any."""
    query = f"SELECT {_COLUMNS} FROM chat_settings WHERE platform = ? AND chat_id = ?"  # noqa: S608 - constant columns
    async with conn.execute(query, (chat.platform, chat.chat_id)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return ChatSettings(chat=chat)
    return ChatSettings(
        chat=chat,
        model=row[0],
        thresholds={str(label): float(value) for label, value in json.loads(row[1]).items()},
        action=Action(row[2]),
        acting_labels=tuple(json.loads(row[3])),
        strike_limit=int(row[4]),
        strike_window_seconds=int(row[5]),
        timeout_seconds=int(row[6]),
        exempt_users=frozenset(json.loads(row[7])),
        exempt_roles=frozenset(json.loads(row[8])),
        log_channel=row[9],
        enabled=bool(row[10]),
        store_text=bool(row[11]),
    )


async def save(conn: aiosqlite.Connection, settings: ChatSettings, *, now: float) -> None:
    """Insert or replace the chat's row."""
    values = (
        settings.chat.platform,
        settings.chat.chat_id,
        settings.model,
        json.dumps(dict(sorted(settings.thresholds.items()))),
        settings.action,
        json.dumps(list(settings.acting_labels)),
        settings.strike_limit,
        settings.strike_window_seconds,
        settings.timeout_seconds,
        json.dumps(sorted(settings.exempt_users)),
        json.dumps(sorted(settings.exempt_roles)),
        settings.log_channel,
        int(settings.enabled),
        int(settings.store_text),
        now,
    )
    await conn.execute(
        f"INSERT OR REPLACE INTO chat_settings (platform, chat_id, {_COLUMNS}, updated_at) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def changes(old: ChatSettings, new: ChatSettings) -> list[tuple[str, Any, Any]]:
    """(setting, old value, new value) for every field that differs, as JSON-friendly values."""
    return [
        (item.name, _plain(getattr(old, item.name)), _plain(getattr(new, item.name)))
        for item in fields(ChatSettings)
        if item.name != "chat" and getattr(old, item.name) != getattr(new, item.name)
    ]


async def record_audit(
    conn: aiosqlite.Connection, chat: ChatRef, actor_id: str, diff: list[tuple[str, Any, Any]], *, now: float
) -> None:
    await conn.executemany(
        "INSERT INTO audit_log (created_at, platform, chat_id, actor_id, setting, old_value, new_value) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (now, chat.platform, chat.chat_id, actor_id, name, json.dumps(old), json.dumps(new))
            for name, old, new in diff
        ],
    )


async def audit_log(conn: aiosqlite.Connection, chat: ChatRef, *, limit: int = 50) -> list[AuditEntry]:
    """The chat's most recent admin changes, newest first."""
    async with conn.execute(
        "SELECT created_at, actor_id, setting, old_value, new_value FROM audit_log "
        "WHERE platform = ? AND chat_id = ? ORDER BY id DESC LIMIT ?",
        (chat.platform, chat.chat_id, limit),
    ) as cursor:
        rows = await cursor.fetchall()
    return [
        AuditEntry(created_at=row[0], chat=chat, actor_id=row[1], setting=row[2], old=_load(row[3]), new=_load(row[4]))
        for row in rows
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
