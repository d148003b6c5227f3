"""Schema migrations: from an empty file, from the previous version with data in it, and refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.core.errors import StorageError
from bot.core.records import ActionReport, ChatSettings
from bot.storage import SCHEMA_VERSION, Storage
from bot.storage.schema import migrate
from tests.storage.helpers import CHAT, new_event

pytestmark = pytest.mark.asyncio


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


async def write_version_1(path: Path) -> None:
    """A database as version 1 of the bot left it: settings, an event with its strike, an audit entry."""
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=1) == 1
        await conn.execute(
            "INSERT INTO chat_settings (platform, chat_id, model, thresholds, action, acting_labels, exempt_users, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (CHAT.platform, CHAT.chat_id, "tiny-toxic", '{"insult": 0.7}', "delete", '["insult"]', '["7"]', 1.0),
        )
        await conn.execute(
            "INSERT INTO events (id, created_at, platform, chat_id, message_id, author_id, model, scores, action, "
            "reason, flagged, triggered, text) VALUES (1, 5.0, ?, ?, 'm1', 'u1', 'tiny-toxic', ?, 'delete', 'r', "
            "'[\"insult\"]', '[\"insult\"]', 'you are so st')",
            (CHAT.platform, CHAT.chat_id, json.dumps({"insult": 0.9})),
        )
        await conn.execute(
            "INSERT INTO strikes (event_id, platform, chat_id, author_id, created_at) VALUES (1, ?, ?, 'u1', 5.0)",
            (CHAT.platform, CHAT.chat_id),
        )


async def test_an_empty_file_is_migrated_to_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "bot.sqlite3"
    async with await Storage.open(path):
        pass
    assert pragma(path, "user_version") == SCHEMA_VERSION == 4
    assert pragma(path, "journal_mode") == "wal"
    assert {"chat_settings", "events", "strikes", "feedback", "audit_log", "inbox"} <= tables(path)


async def test_version_1_is_migrated_to_the_current_version_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    await write_version_1(path)
    with sqlite3.connect(path) as conn:  # what v1 adapters reported: words, success being one of a few
        conn.execute("UPDATE events SET action_result = 'deleted' WHERE id = 1")
        conn.execute(
            "INSERT INTO events (id, created_at, platform, chat_id, message_id, author_id, model, scores, action, "
            "reason, action_result) VALUES (2, 6.0, ?, ?, 'm2', 'u2', 'tiny-toxic', '{}', 'warn', 'r', "
            "'forbidden: missing Send Messages')",
            (CHAT.platform, CHAT.chat_id),
        )
    assert pragma(path, "user_version") == 1
    assert "feedback" not in tables(path)

    async with await Storage.open(path) as storage:
        settings = await storage.get_settings(CHAT)
        assert settings == ChatSettings(
            chat=CHAT,
            model="tiny-toxic",
            thresholds={"insult": 0.7},
            action="delete",
            acting_labels=("insult",),
            exempt_users=frozenset({"7"}),
            store_text=False,  # the column v2 added, at its default
        )
        old = await storage.get_event(1)
        assert (old.text, old.has_strike, old.thresholds, old.feedback_correct) == ("you are so st", True, {}, None)
        # v3: the words became a typed report
        assert old.report == ActionReport(True, "deleted")
        assert (await storage.get_event(2)).report == ActionReport(False, "forbidden: missing Send Messages")
        assert (await storage.stats(CHAT)).action_failures == 1
        # the v2 features work on v1 data
        event, cleared = await storage.record_feedback(1, "admin-1", False, now=9.0)
        assert cleared and event.feedback_correct is False
        assert await storage.count_strikes(CHAT, "u1", since=0.0) == 0
        new_id = await storage.record_event(new_event(store_text=True, text="kept whole"))
        assert (await storage.get_event(new_id)).text == "kept whole"
        assert (await storage.get_event(new_id)).report is None  # not reported yet
    assert pragma(path, "user_version") == SCHEMA_VERSION


async def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with await Storage.open(path) as storage:
        await storage.record_event(new_event())
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn) == SCHEMA_VERSION
    async with await Storage.open(path) as storage:
        assert (await storage.stats(CHAT)).events == 1


async def test_a_database_from_a_newer_bot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match=r"schema is version 5, newer than this bot knows \(4\): upgrade the bot"):
        await Storage.open(path)


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        await Storage.open(path)
    assert path.read_bytes().startswith(b"this is a text file")  # left as it was


async def test_a_failing_migration_step_leaves_the_previous_version(tmp_path: Path, monkeypatch) -> None:
    from bot.storage import schema

    path = tmp_path / "bot.sqlite3"
    await write_version_1(path)
    broken = (*schema.MIGRATIONS[:1], (*schema.MIGRATIONS[1][:2], "ALTER TABLE no_such_table ADD COLUMN x"))
    monkeypatch.setattr(schema, "MIGRATIONS", broken)
    with pytest.raises(StorageError, match="no_such_table"):
        await Storage.open(path)
    assert pragma(path, "user_version") == 1
    assert "feedback" not in tables(path)  # the half-done step was rolled back


async def test_version_3_events_logged_once_per_edit_are_kept_and_the_message_key_becomes_unique(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    await write_version_1(path)
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, target=3) == 3
        for event_id in (2, 3):  # how releases before v4 logged two edits of message m1: one event each
            await conn.execute(
                "INSERT INTO events (id, created_at, platform, chat_id, message_id, author_id, model, scores, action, "
                "reason) VALUES (?, 6.0, ?, ?, 'm1', 'u1', 'tiny-toxic', '{}', 'warn', 'r')",
                (event_id, CHAT.platform, CHAT.chat_id),
            )
    async with await Storage.open(path) as storage:
        assert [(await storage.get_event(i)).message_id for i in (1, 2, 3)] == ["m1", "m1#2", "m1#3"]
        again = await storage.record_decision(new_event(message_id="m1"))  # the key is unique from now on
        assert again.event_id == 1 and not again.act
    assert pragma(path, "user_version") == SCHEMA_VERSION == 4
