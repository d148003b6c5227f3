"""The intake inbox: recorded once per delivery key, claimed under a lease, done with its event in one transaction."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.errors import StorageError
from bot.core.intake import InboxEntry
from bot.storage import Storage
from tests.storage.helpers import new_event

pytestmark = pytest.mark.asyncio


def entries(*keys: int, chat: str = "c1") -> list[InboxEntry]:
    return [InboxEntry(key=str(key), chat_id=chat, payload=f'{{"n": {key}}}', seq=key) for key in keys]


async def test_a_redelivered_key_is_recorded_once(storage: Storage) -> None:
    assert await storage.inbox_add("telegram", entries(1, 2, 3), now=1.0) == 3
    assert await storage.inbox_add("telegram", entries(2, 3, 4), now=2.0) == 1
    assert await storage.inbox_add("discord", entries(1), now=2.0) == 1, "keys are per platform"
    assert await storage.inbox_counts("telegram") == (4, 0)


async def test_claims_take_the_oldest_rows_under_a_lease_that_expires(storage: Storage) -> None:
    await storage.inbox_add("telegram", entries(1, 2, 3), now=1.0)
    first = await storage.inbox_claim("telegram", limit=2, now=10.0, lease=60.0)
    assert [item.key for item in first] == ["1", "2"] and all(item.attempts == 1 for item in first)
    assert [i.key for i in await storage.inbox_claim("telegram", limit=5, now=11.0, lease=60.0)] == ["3"]
    assert await storage.inbox_claim("telegram", limit=5, now=12.0, lease=60.0) == []
    again = await storage.inbox_claim("telegram", limit=5, now=71.0, lease=60.0)  # the worker died: leases ran out
    assert [(i.key, i.attempts) for i in again] == [("1", 2), ("2", 2), ("3", 2)]


async def test_release_at_start_frees_claimed_rows_on_sqlite_only(storage: Storage) -> None:
    await storage.inbox_add("telegram", entries(1, 2), now=1.0)
    await storage.inbox_claim("telegram", limit=5, now=2.0, lease=600.0)
    if storage.dialect == "sqlite":  # one process per file: whatever is claimed was the dead process's
        assert await storage.inbox_release("telegram") == 2
        assert len(await storage.inbox_claim("telegram", limit=5, now=3.0, lease=600.0)) == 2
    else:  # another live process may hold them: their leases run out instead
        assert await storage.inbox_release("telegram") == 0
        assert await storage.inbox_claim("telegram", limit=5, now=3.0, lease=600.0) == []


async def test_a_failed_attempt_waits_for_its_retry_time(storage: Storage) -> None:
    await storage.inbox_add("telegram", entries(1), now=1.0)
    [item] = await storage.inbox_claim("telegram", limit=1, now=2.0, lease=600.0)
    await storage.inbox_retry(item.id, at=30.0)
    assert await storage.inbox_claim("telegram", limit=1, now=29.0, lease=600.0) == []
    assert len(await storage.inbox_claim("telegram", limit=1, now=30.0, lease=600.0)) == 1


async def test_the_event_and_its_inbox_row_are_done_in_one_transaction(storage: Storage) -> None:
    await storage.inbox_add("telegram", entries(1, 2), now=1.0)
    [item, other] = await storage.inbox_claim("telegram", limit=2, now=2.0, lease=600.0)
    event = dataclasses.replace(new_event(), inbox_id=item.id)
    _, recorded = await storage.record_decision(event.chat, event.author_id, since=0.0, decide=lambda n: (n, event))
    assert recorded is not None and recorded.act and await storage.inbox_counts("telegram") == (1, 1)
    broken = dataclasses.replace(new_event(), inbox_id=other.id, author_id=None)
    with pytest.raises(StorageError, match="refused the write"):  # no event stored: neither is its row done
        await storage.record_event(broken)  # type: ignore[arg-type]
    assert await storage.inbox_counts("telegram") == (1, 1)


async def test_done_rows_are_pruned_and_the_last_seq_of_a_chat_is_known(storage: Storage) -> None:
    await storage.inbox_add("discord", entries(5, 9, chat="c1") + entries(7, chat="c2"), now=1.0)
    assert await storage.inbox_last_seq("discord", "c1") == 9
    assert await storage.inbox_last_seq("discord", "none") is None
    for item in await storage.inbox_claim("discord", limit=5, now=2.0, lease=60.0):
        await storage.inbox_done(item.id, now=3.0)
    assert await storage.inbox_prune(before=4.0) == 3 and await storage.inbox_counts("discord") == (0, 0)
