"""Alembic migrations on both engines: a new database, a SQLite file of the aiosqlite release upgraded in place,
refusals of newer schemas, a failing step that leaves everything as it was, and tables.py agreeing with them.

``fixtures/release_v1.sql``, ``release_v2.sql`` and ``release_v3.sql`` are SQL dumps of databases written by the
releases before this storage layer (their own migrations and ``Storage``; v3 is the last one), so the upgrade is
tested on the real old files.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.core.errors import StorageError
from bot.core.records import ActionReport, ChatSettings
from bot.storage import Storage, head_revision, migrate
from bot.storage.tables import metadata
from tests.databases import Database
from tests.storage.helpers import CHAT, OTHER_CHAT, new_event

pytestmark = pytest.mark.asyncio

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = {"chat_settings", "events", "strikes", "feedback", "audit_log", "inbox"}


def release_database(path: Path, version: int) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript((FIXTURES / f"release_v{version}.sql").read_text(encoding="utf-8"))
    return path


def sqlite_value(path: Path, query: str) -> object:
    with sqlite3.connect(path) as conn:
        return conn.execute(query).fetchone()[0]


async def table_names(storage: Storage) -> set[str]:
    async with storage._engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def revision(storage: Storage) -> str | None:
    async with storage._engine.connect() as conn:
        return await conn.run_sync(migrate.current_revision)


async def test_a_new_database_is_migrated_to_the_newest_revision(db: Database) -> None:
    async with await db.open() as storage:
        assert await revision(storage) == head_revision()
        assert await table_names(storage) >= TABLES


async def test_the_query_tables_match_what_the_migrations_build(db: Database) -> None:
    async with await db.open() as storage, storage._engine.connect() as conn:

        def differences(sync) -> list:
            return compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)

        assert await conn.run_sync(differences) == []


@pytest.mark.parametrize("version", [2, 3])
async def test_a_release_file_is_upgraded_in_place_keeping_its_data(tmp_path: Path, version: int) -> None:
    path = release_database(tmp_path / "bot.sqlite3", version)
    async with await Storage.open(path) as storage:
        assert await revision(storage) == head_revision()
        assert await storage.get_settings(CHAT) == ChatSettings(
            chat=CHAT,
            action="delete",
            thresholds={"insult": {"flag": 0.7, "act": 0.7}},  # revision 0004: an old override means both points
            exempt_users=frozenset({"7"}),
            store_text=True,
            language_gate=True,  # the column 0004 added, at its default
        )
        assert (await storage.get_settings(OTHER_CHAT)).strike_limit == 2
        assert [entry.setting for entry in await storage.audit_log(CHAT)] == [
            "store_text", "exempt_users", "action", "thresholds"
        ]  # fmt: skip
        first, second = await storage.get_event(1), await storage.get_event(2)
        assert (first.report, first.feedback_correct, first.strike_cleared) == (
            ActionReport(True, "deleted"),
            False,
            True,
        )
        assert second.report == ActionReport(False, "forbidden: missing permissions")  # v2: words; v3: typed
        assert second.text == "kept whole text of a message" and second.has_strike and not second.strike_cleared
        stats = await storage.stats(CHAT)
        assert (stats.events, stats.active_strikes, stats.confirmed, stats.rejected) == (3, 1, 1, 1)
        assert stats.action_failures == 1
        assert await storage.count_strikes(CHAT, "u1", since=0.0) == 1
        new_id = await storage.record_event(new_event(message_id="after-upgrade"))
        assert new_id == 5  # ids go on after the old ones
        assert (await storage.get_event(new_id)).message_id == "after-upgrade"
    # rewritten in the file, not only read back in the new form
    assert json.loads(sqlite_value(path, "SELECT thresholds FROM chat_settings WHERE chat_id = '-100123'")) == {
        "insult": {"flag": 0.7, "act": 0.7}
    }
    # an aiosqlite release opening the upgraded file refuses it as newer instead of breaking it
    assert sqlite_value(path, "PRAGMA user_version") == migrate.LEGACY_FENCE
    assert sqlite_value(path, "PRAGMA integrity_check") == "ok"


async def test_the_release_s_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = release_database(tmp_path / "bot.sqlite3", 1)
    async with await Storage.open(path) as storage:
        settings = await storage.get_settings(CHAT)
        assert (settings.model, settings.action, settings.acting_labels, settings.store_text) == (
            "tiny-toxic",
            "delete",
            ("insult",),
            False,  # the column version 2 added, at its default
        )
        old = await storage.get_event(1)
        assert (old.text, old.has_strike, old.thresholds, old.feedback_correct) == ("you are so st", True, {}, None)
        event, cleared = await storage.record_feedback(1, "admin-1", False, now=9.0)  # version 2 feature, old data
        assert cleared and event.feedback_correct is False


async def test_opening_again_changes_nothing(db: Database) -> None:
    async with await db.open() as storage:
        await storage.record_event(new_event())
    async with await db.open() as storage:
        assert (await storage.stats(CHAT)).events == 1
        assert await revision(storage) == head_revision()


async def test_a_database_from_a_newer_bot_is_refused(db: Database) -> None:
    async with await db.open() as storage, storage._engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(StorageError, match=r"revision 9999_from_the_future, newer than this bot knows .*upgrade"):
        await db.open()


async def test_a_release_file_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(StorageError, match=r"schema is version 7, newer than this bot knows \(3\): upgrade the bot"):
        await Storage.open(path)


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        await Storage.open(path)
    assert path.read_bytes().startswith(b"this is a text file")  # left as it was


async def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path, monkeypatch, db: Database) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9000_broken.py").write_text(
        f'revision = "9000"\ndown_revision = "{head_revision()}"\nbranch_labels = None\ndepends_on = None\n\n'
        "from alembic import op\n\n\ndef upgrade():\n"
        '    op.create_table("half_done", __import__("sqlalchemy").Column("x", __import__("sqlalchemy").Integer))\n'
        '    op.execute("ALTER TABLE no_such_table ADD COLUMN x INTEGER")\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(migrate, "SCRIPTS", scripts)
    with pytest.raises(StorageError, match="no_such_table"):
        await db.open()
    monkeypatch.undo()
    async with await db.open() as storage:  # the good revisions still apply: nothing of the failed run was left
        assert "half_done" not in await table_names(storage)
        assert await revision(storage) == head_revision()


async def test_a_failing_upgrade_of_a_release_file_leaves_it_at_its_version(tmp_path: Path, monkeypatch) -> None:
    path = release_database(tmp_path / "bot.sqlite3", 1)
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPTS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    second = next((scripts / "versions").glob("0002_*.py"))
    second.write_text(second.read_text() + '\n    op.execute("ALTER TABLE no_such_table ADD COLUMN x INTEGER")\n')
    monkeypatch.setattr(migrate, "SCRIPTS", scripts)
    with pytest.raises(StorageError, match="no_such_table"):
        await Storage.open(path)
    assert sqlite_value(path, "PRAGMA user_version") == 1
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "feedback" not in names and "alembic_version" not in names  # the half-done step was rolled back


async def test_events_logged_once_per_edit_by_a_release_are_kept_and_the_message_key_becomes_unique(
    tmp_path: Path,
) -> None:
    path = release_database(tmp_path / "bot.sqlite3", 3)
    with sqlite3.connect(path) as conn:  # how the releases logged two edits of message m1: one more event each
        for event_id in (10, 11):
            conn.execute(
                "INSERT INTO events (id, created_at, platform, chat_id, message_id, author_id, model, scores, action, "
                "reason) VALUES (?, 6.0, 'telegram', '-100123', 'm1', 'u1', 'tiny-toxic', '{}', 'warn', 'r')",
                (event_id,),
            )
    async with await Storage.open(path) as storage:
        kept = [(await storage.get_event(i)).message_id for i in (1, 10, 11)]
        assert kept == ["m1", "m1#10", "m1#11"]
        again = await storage.record_event(new_event(chat=CHAT, message_id="m1"))  # the key is unique from now on
        assert again == 1 and (await storage.stats(CHAT)).events == 5
