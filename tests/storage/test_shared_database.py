"""Several bot processes on one database: each test opens two ``Storage`` instances (separate connection pools and
separate in-process queues, as two processes have) on the same database, on both engines, and races them."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from bot.core.records import ChatSettings, NewEvent
from bot.storage import Storage
from tests.databases import Database
from tests.storage.helpers import CHAT, new_event

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def pair(db: Database) -> AsyncIterator[tuple[Storage, Storage]]:
    first = await db.open()
    second = await db.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_concurrent_decisions_for_one_author_each_count_the_strikes_before_them(
    pair: tuple[Storage, Storage],
) -> None:
    seen: list[int] = []

    def decide(message_id: str):
        def with_prior(prior: int) -> tuple[int, NewEvent]:
            seen.append(prior)
            return prior, new_event(message_id=message_id, author_id="repeat", created_at=time.time())

        return with_prior

    async def process(storage: Storage, name: str) -> list[int]:
        results = []
        for n in range(30):
            prior, _ = await storage.record_decision(CHAT, "repeat", since=0.0, decide=decide(f"{name}-{n}"))
            results.append(prior)
        return results

    workers = [process(storage, f"p{index}-{task}") for index, storage in enumerate(pair) for task in range(4)]
    priors = [prior for batch in await asyncio.gather(*workers) for prior in batch]
    # 240 strikes logged by 8 concurrent writers in two "processes": every one saw a different count, 0 ... 239
    assert sorted(priors) == list(range(240))
    assert await pair[0].count_strikes(CHAT, "repeat", since=0.0) == 240


async def test_concurrent_settings_changes_lose_no_update_and_audit_each_step(pair: tuple[Storage, Storage]) -> None:
    def bump(settings: ChatSettings) -> ChatSettings:
        return dataclasses.replace(settings, strike_limit=settings.strike_limit + 1)

    async def admin(storage: Storage, name: str) -> None:
        for _ in range(15):
            await storage.update_settings(CHAT, name, bump, now=time.time())

    await asyncio.gather(*(admin(storage, f"admin-{i}-{k}") for i, storage in enumerate(pair) for k in range(3)))
    await asyncio.sleep(0.6)  # past the settings cache of the instance that did not write last
    assert {(await storage.get_settings(CHAT)).strike_limit for storage in pair} == {3 + 90}
    entries = sorted(await pair[1].audit_log(CHAT, limit=200), key=lambda entry: entry.old)
    # a chain 3 -> 4 -> ... -> 93: each change read the value the previous one wrote
    assert [(entry.old, entry.new) for entry in entries] == [(n, n + 1) for n in range(3, 93)]


async def test_the_same_verdict_from_two_processes_clears_the_strike_once(pair: tuple[Storage, Storage]) -> None:
    event_ids = [await pair[0].record_event(new_event(message_id=str(n))) for n in range(20)]
    verdicts = [store.record_feedback(event_id, "admin", False, now=1.0) for event_id in event_ids for store in pair]
    results = await asyncio.gather(*verdicts)
    cleared = [was_cleared for _, was_cleared in results]
    assert cleared.count(True) == 20  # one of the two verdicts per event cleared it
    assert (await pair[1].stats(CHAT)).active_strikes == 0


async def test_a_settings_change_in_one_process_applies_in_the_other_within_a_second(
    pair: tuple[Storage, Storage],
) -> None:
    writer, reader = pair
    assert (await reader.get_settings(CHAT)).action == "warn"  # now cached by the reader
    await writer.update_settings(CHAT, "admin", lambda s: dataclasses.replace(s, action="delete"), now=1.0)
    changed_at = time.monotonic()
    while (await reader.get_settings(CHAT)).action != "delete":
        assert time.monotonic() - changed_at < 1.0, "the other process still uses the old settings after 1 s"
        await asyncio.sleep(0.02)
    assert (await writer.get_settings(CHAT)).action == "delete"  # the writer sees its own change at once
