"""The intake worker on a real database: leftovers first, retries with backoff, poison given up, bounded stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core import intake as intake_module
from bot.core.intake import InboxEntry, InboxItem, Intake
from bot.storage import Storage

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(tmp_path / "bot.sqlite3")
    yield store
    await store.close()


def entries(*keys: int) -> list[InboxEntry]:
    return [InboxEntry(key=str(key), chat_id="c", payload=str(key)) for key in keys]


async def eventually(condition, within: float = 20.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def run_until(intake: Intake, process, stop: asyncio.Event, condition, *, grace: float = 5.0) -> None:
    task = asyncio.create_task(intake.run(process, stop, grace=grace))
    try:
        await eventually(condition)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def test_rows_left_by_a_dead_process_are_handled_first_then_new_ones_in_order(storage: Storage) -> None:
    await storage.inbox_add("telegram", entries(1, 2), now=1.0)
    await storage.inbox_claim("telegram", limit=2, now=2.0, lease=3600.0)  # claimed by a process that died
    handled: list[str] = []

    async def process(item: InboxItem) -> None:
        handled.append(item.payload)

    intake = Intake(storage, "telegram", concurrency=1)
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(process, stop, grace=1.0))
    await intake.receive(entries(3, 2))  # 2 again: a redelivery is not a new row
    await eventually(lambda: len(handled) >= 3)
    stop.set()
    await task
    assert handled == ["1", "2", "3"]
    assert await storage.inbox_counts("telegram") == (0, 3)


async def test_a_failing_row_is_retried_after_a_wait_and_a_poison_row_is_given_up(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "RETRY_BACKOFF", 0.05)
    attempts: dict[str, int] = {}

    async def process(item: InboxItem) -> None:
        attempts[item.payload] = item.attempts
        if item.payload == "poison" or (item.payload == "flaky" and item.attempts < 3):
            raise RuntimeError("boom")

    intake = Intake(storage, "telegram", max_attempts=4)
    await intake.receive([InboxEntry("a", "c", "flaky"), InboxEntry("b", "c", "poison"), InboxEntry("c", "c", "ok")])
    stop = asyncio.Event()
    await run_until(intake, process, stop, lambda: attempts.get("poison") == 4 and attempts.get("flaky") == 3)
    assert attempts == {"flaky": 3, "poison": 4, "ok": 1}
    await asyncio.sleep(0)
    assert await storage.inbox_counts("telegram") == (0, 3), "the poison row is done, with its error"


async def test_stop_finishes_work_in_flight_within_the_grace_and_leaves_the_rest(storage: Storage) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def process(item: InboxItem) -> None:
        started.set()
        await release.wait()
        finished.append(item.payload)

    intake = Intake(storage, "telegram", concurrency=2)
    await intake.receive(entries(*range(10)))
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(process, stop, grace=5.0))
    await started.wait()
    stop.set()
    await asyncio.sleep(0.05)
    release.set()  # the two in flight finish inside the grace
    await asyncio.wait_for(task, 10)
    assert len(finished) == 2
    assert await storage.inbox_counts("telegram") == (8, 2)


async def test_work_that_outlives_the_grace_is_cancelled_and_stays_pending(storage: Storage) -> None:
    async def process(item: InboxItem) -> None:
        await asyncio.sleep(3600)

    intake = Intake(storage, "telegram", concurrency=4)
    await intake.receive(entries(1, 2))
    stop = asyncio.Event()
    task = asyncio.create_task(intake.run(process, stop, grace=0.2))
    await eventually(lambda: intake.in_flight >= 2)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await storage.inbox_counts("telegram") == (2, 0)
