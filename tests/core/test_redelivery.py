"""Exactly-once decisions: a redelivered, re-processed or edited message never makes a second event or strike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.moderation import ModerationService
from bot.core.policy import Action
from bot.core.types import Actor, ChatRef, Message
from bot.storage import Storage
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry

pytestmark = pytest.mark.asyncio

CHAT = ChatRef("telegram", "-100")
MEMBER = Actor("member-1", display_name="Member One")


@pytest_asyncio.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    store = await Storage.open(tmp_path / "bot.sqlite3")
    yield store
    await store.close()


@pytest_asyncio.fixture
async def service(tmp_path: Path, storage: Storage) -> AsyncIterator[ModerationService]:
    registry = scripted_registry(tmp_path)
    classifier = scripted_classifier(registry)
    yield ModerationService(classifier, storage, registry)
    await classifier.aclose()


def message(text: str, message_id: str = "42", *, revision: int = 0) -> Message:
    return Message(CHAT, message_id, MEMBER, text, edited=revision > 0, revision=revision)


async def counts(storage: Storage) -> tuple[int, int]:
    stats = await storage.stats(CHAT)
    return stats.events, stats.active_strikes


async def test_a_redelivered_message_keeps_its_one_event_and_one_strike(
    service: ModerationService, storage: Storage
) -> None:
    first = await service.handle(message("you are stupid"))
    again = await service.handle(message("you are stupid"))
    assert first.act and first.decision.action is Action.WARN
    assert again.event_id == first.event_id and not again.act, "nothing new to carry out"
    assert await counts(storage) == (1, 1)


async def test_concurrent_deliveries_of_one_message_make_one_event(
    service: ModerationService, storage: Storage
) -> None:
    outcomes = await asyncio.gather(*(service.handle(message("stupid")) for _ in range(5)))
    assert len({o.event_id for o in outcomes}) == 1 and sum(o.act for o in outcomes) == 1
    assert await counts(storage) == (1, 1)


async def test_four_edits_are_one_event_and_at_most_one_strike_never_a_timeout(
    service: ModerationService, storage: Storage
) -> None:
    first = await service.handle(message("stupid"))
    edits = [await service.handle(message(f"stupid {'!' * n}", revision=n)) for n in range(1, 5)]
    assert {edit.event_id for edit in edits} == {first.event_id}
    assert all(edit.decision.action is Action.WARN for edit in edits), "an edit does not count its own strike"
    assert not any(edit.act for edit in edits), "the same decision is not carried out again"
    assert await counts(storage) == (1, 1)


async def test_an_edit_that_changes_the_decision_updates_the_event_and_is_carried_out(
    service: ModerationService, storage: Storage
) -> None:
    first = await service.handle(message("damn it"))
    assert first.decision.action is Action.FLAG and first.act
    edit = await service.handle(message("stupid and damn it", revision=5))
    assert edit.event_id == first.event_id and edit.act and edit.decision.action is Action.WARN
    event = await storage.get_event(first.event_id)
    assert event.action == "warn" and event.has_strike
    stale = await service.handle(message("damn it"))  # the original delivered late must not undo the edit
    assert not stale.act and (await storage.get_event(first.event_id)).action == "warn"
    assert await counts(storage) == (1, 1)


async def test_text_that_cannot_be_encoded_is_replaced_at_the_boundary_and_stored(
    service: ModerationService, storage: Storage
) -> None:
    outcome = await service.handle(message("stupid \ud800 you\x00"))
    event = await storage.get_event(outcome.event_id)
    assert event.text == "stupid \ufffd you\ufffd"
    assert (await service.classify("stupid \udfff")).scores
