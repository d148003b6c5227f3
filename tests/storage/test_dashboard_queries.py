"""The dashboard's queries: the queue and its filters, daily counts, per-chat exports, stored explanations, secrets."""

from __future__ import annotations

import dataclasses

from bot.core.explain import Explanation, WordWeight
from bot.storage import Storage
from bot.storage.dashboard import DAY_SECONDS
from tests.storage.helpers import CHAT, OTHER_CHAT, new_event

DAY0 = 20_000 * DAY_SECONDS  # midnight UTC of day 20000


async def test_the_queue_is_newest_first_per_chat_and_filters_by_member_review_and_page(storage: Storage) -> None:
    ids = [
        await storage.record_event(new_event(author_id=author, message_id=str(n), created_at=DAY0 + n))
        for n, author in enumerate(["a", "b", "a", "a_b%"])
    ]
    await storage.record_event(new_event(chat=OTHER_CHAT, author_id="a"))
    await storage.record_event(new_event(action="none", message_id="x"))  # logged but not flagged or acted on
    assert [e.id for e in await storage.review_queue(CHAT)] == ids[::-1]
    assert [e.id for e in await storage.review_queue(CHAT, author_id="a")] == [ids[2], ids[0]]
    await storage.record_feedback(ids[2], "admin", True, now=DAY0 + 10)
    assert [e.id for e in await storage.review_queue(CHAT, author_id="a", unreviewed_only=True)] == [ids[0]]
    assert [e.id for e in await storage.review_queue(CHAT, before_id=ids[2], limit=1)] == [ids[1]]
    assert await storage.event_authors(CHAT, prefix="a") == ["a_b%", "a"]
    assert await storage.event_authors(CHAT, prefix="a_") == ["a_b%"]  # LIKE wildcards are taken literally
    assert await storage.event_authors(CHAT, prefix="%") == []


async def test_daily_counts_by_action_label_and_verdict(storage: Storage) -> None:
    first = await storage.record_event(new_event(created_at=DAY0 + 5, action="warn"))
    await storage.record_event(new_event(created_at=DAY0 + 6, action="flag", flagged=("toxic",), strike=False))
    second = await storage.record_event(new_event(created_at=DAY0 + DAY_SECONDS + 1, action="timeout"))
    await storage.record_event(new_event(created_at=DAY0 - 5 * DAY_SECONDS))  # before ``since``
    await storage.record_event(new_event(chat=OTHER_CHAT, created_at=DAY0 + 5))
    await storage.record_feedback(first, "admin", False, now=DAY0 + 50)
    await storage.record_feedback(second, "admin", True, now=DAY0 + 50)
    counts = await storage.daily_counts(CHAT, since=DAY0)
    assert counts.actions == [(20_000, "flag", 1), (20_000, "warn", 1), (20_001, "timeout", 1)]
    assert counts.labels == [(20_000, "insult", 1), (20_000, "toxic", 2), (20_001, "insult", 1), (20_001, "toxic", 1)]
    assert counts.reviews == [(20_000, 0, 1), (20_001, 1, 0)]


async def test_the_export_holds_only_this_chats_reviewed_events(storage: Storage) -> None:
    mine = await storage.record_event(new_event(store_text=True))
    theirs = await storage.record_event(new_event(chat=OTHER_CHAT, store_text=True))
    await storage.record_event(new_event())
    for event_id in (mine, theirs):
        await storage.record_feedback(event_id, "admin", False, now=1.0)
    assert [e.id for e in await storage.chat_reviewed_events(CHAT)] == [mine]


async def test_an_explanation_is_stored_with_its_event(storage: Storage) -> None:
    why = Explanation("insult", 0.81, (WordWeight("stupid", 11, 17, 0.7),))
    event_id = await storage.record_event(dataclasses.replace(new_event(), explanation=why))
    assert (await storage.get_event(event_id)).explanation == why
    assert (await storage.get_event(await storage.record_event(new_event()))).explanation is None


async def test_a_secret_is_stored_once_and_then_always_returned(storage: Storage) -> None:
    assert await storage.secret("dashboard", "first", now=1.0) == "first"
    assert await storage.secret("dashboard", "second", now=2.0) == "first"
    assert await storage.secret("other", "third", now=2.0) == "third"
