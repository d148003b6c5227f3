"""Storage under load and trouble: concurrent writers, a database locked by another connection, a killed process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bot.core.errors import StorageBusyError
from bot.storage import Storage
from tests.storage.helpers import CHAT, new_event

REPO = Path(__file__).resolve().parents[2]


def lock_exclusively(path: Path) -> sqlite3.Connection:
    """Another connection that holds the write lock until it commits."""
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    return locker


@pytest.mark.asyncio
async def test_1000_events_from_50_concurrent_tasks_are_all_stored(storage: Storage) -> None:
    async def writer(task: int) -> list[int]:
        return [
            await storage.record_event(new_event(author_id=f"user-{task}", message_id=f"{task}-{n}")) for n in range(20)
        ]

    ids = [event_id for batch in await asyncio.gather(*(writer(task) for task in range(50))) for event_id in batch]
    assert len(set(ids)) == 1000
    assert (await storage.stats(CHAT)).events == 1000
    assert (await storage.stats(CHAT)).active_strikes == 1000
    for task in (0, 17, 49):
        assert await storage.count_strikes(CHAT, f"user-{task}", since=0.0) == 20
    messages = {event.message_id for event in await storage.recent_events(CHAT, limit=2000)}
    assert messages == {f"{task}-{n}" for task in range(50) for n in range(20)}


@pytest.mark.asyncio
async def test_writes_wait_for_a_database_locked_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = await Storage.open(path, busy_timeout=0.1, lock_timeout=30.0)
    try:
        locker = lock_exclusively(path)
        writes = [asyncio.create_task(storage.record_event(new_event(message_id=str(n)))) for n in range(20)]
        await asyncio.sleep(0.5)  # several busy timeouts pass while the lock is held
        pending_while_locked = sum(not write.done() for write in writes)
        assert (await storage.get_settings(CHAT)).action == "warn"  # reads go on (WAL)
        locker.execute("COMMIT")
        locker.close()
        ids = await asyncio.gather(*writes)
        assert pending_while_locked == 20
        assert len(set(ids)) == 20
        assert (await storage.stats(CHAT)).events == 20
    finally:
        await storage.close()


@pytest.mark.asyncio
async def test_a_lock_held_too_long_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    storage = await Storage.open(path, busy_timeout=0.05, lock_timeout=0.3)
    try:
        before = await storage.record_event(new_event(message_id="before"))
        locker = lock_exclusively(path)
        event = new_event(message_id="during")
        with pytest.raises(
            StorageBusyError, match=r"stayed locked by another connection for 0.3 s; nothing was written"
        ):
            await storage.record_event(event)
        locker.execute("COMMIT")
        locker.close()
        # nothing half-written: no event and no strike of the failed attempt; the caller's retry stores it once
        assert (await storage.stats(CHAT)).events == 1
        retried = await storage.record_event(event)
        stats = await storage.stats(CHAT)
        assert (stats.events, stats.active_strikes) == (2, 2)
        assert (await storage.get_event(before)).message_id == "before"
        assert (await storage.get_event(retried)).message_id == "during"
    finally:
        await storage.close()


WRITER = textwrap.dedent(
    """
    import asyncio, dataclasses, sys
    from bot.storage import Storage
    from tests.storage.helpers import new_event

    async def main(path):
        storage = await Storage.open(path)
        n = 0
        while True:
            n += 1
            await storage.record_event(new_event(message_id=str(n), author_id=f"user-{n % 7}", created_at=float(n)))
            await storage.update_settings(
                new_event().chat, "admin", lambda s: dataclasses.replace(s, strike_limit=n % 50), now=float(n)
            )

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_process_killed_mid_run_leaves_a_consistent_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        count = 0
        while count < 300:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, f"the writer stored only {count} events in 60 s"
            time.sleep(0.05)
            if path.exists():
                try:
                    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                        count = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                except sqlite3.OperationalError:  # schema not created yet
                    count = 0
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        orphans = conn.execute(
            "SELECT COUNT(*) FROM events e LEFT JOIN strikes s ON s.event_id = e.id WHERE s.id IS NULL"
        ).fetchone()[0]
        strike_limit = conn.execute("SELECT strike_limit FROM chat_settings").fetchone()[0]
        last_audit = conn.execute("SELECT new_value FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0]
        highest = conn.execute("SELECT MAX(CAST(message_id AS INTEGER)) FROM events").fetchone()[0]
    assert events >= 300 and events == highest  # no gap: every committed event is there
    assert orphans == 0  # every event has its strike
    assert int(last_audit) == strike_limit  # the settings row and its audit entry were written together
