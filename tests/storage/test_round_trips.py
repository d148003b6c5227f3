"""Storage round trips: settings with defaults and audit, events and strikes, feedback, statistics."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.errors import StorageError, UnknownEventError
from bot.core.model_folder import LabelThresholds
from bot.core.records import EXCERPT_CHARS, ActionReport, ChatSettings
from bot.storage import Storage
from tests.databases import Database
from tests.storage.helpers import CHAT, OTHER_CHAT, new_event

pytestmark = pytest.mark.asyncio


async def test_settings_of_an_unknown_chat_are_the_defaults(storage: Storage) -> None:
    assert await storage.get_settings(CHAT) == ChatSettings(chat=CHAT)


async def test_settings_round_trip_every_field(storage: Storage) -> None:
    wanted = ChatSettings(
        chat=CHAT,
        model="tiny-sentiment",
        thresholds={"insult": {"flag": 0.5, "act": 0.7}, "threat": {"act": 0.35}},
        action="timeout",
        acting_labels=("threat", "obscene"),
        strike_limit=5,
        strike_window_seconds=3600,
        timeout_seconds=120,
        exempt_users=frozenset({"42", "43"}),
        exempt_roles=frozenset({"mods"}),
        log_channel="#mod-log",
        enabled=False,
        store_text=True,
        language_gate=False,
    )
    stored = await storage.update_settings(CHAT, "admin-1", lambda _: wanted, now=10.0)
    assert stored == wanted
    assert await storage.get_settings(CHAT) == wanted
    assert await storage.get_settings(OTHER_CHAT) == ChatSettings(chat=OTHER_CHAT)


async def test_settings_changes_are_audited_field_by_field(storage: Storage) -> None:
    await storage.update_settings(CHAT, "admin-1", lambda s: dataclasses.replace(s, action="delete"), now=10.0)
    await storage.update_settings(
        CHAT,
        "admin-2",
        lambda s: dataclasses.replace(s, thresholds={"insult": {"act": 0.8}}, store_text=True),
        now=20.0,
    )
    await storage.update_settings(CHAT, "admin-2", lambda s: s, now=30.0)  # no change: no audit entry
    entries = await storage.audit_log(CHAT)
    assert [(e.actor_id, e.setting, e.old, e.new, e.created_at) for e in entries] == [
        ("admin-2", "store_text", False, True, 20.0),
        ("admin-2", "thresholds", {}, {"insult": {"act": 0.8}}, 20.0),
        ("admin-1", "action", "warn", "delete", 10.0),
    ]
    assert await storage.audit_log(OTHER_CHAT) == []


async def test_a_failing_settings_change_writes_neither_settings_nor_audit(storage: Storage) -> None:
    def broken(settings: ChatSettings) -> ChatSettings:
        return dataclasses.replace(settings, action="explode")  # the CHECK constraint refuses it

    with pytest.raises(StorageError, match="the database refused the write"):
        await storage.update_settings(CHAT, "admin-1", broken, now=10.0)
    assert await storage.get_settings(CHAT) == ChatSettings(chat=CHAT)
    assert await storage.audit_log(CHAT) == []
    # the connection is usable afterwards (the transaction was rolled back)
    await storage.update_settings(CHAT, "admin-1", lambda s: dataclasses.replace(s, action="flag"), now=11.0)
    assert (await storage.get_settings(CHAT)).action == "flag"


async def test_event_round_trip_keeps_an_excerpt_unless_the_chat_stores_text(storage: Storage) -> None:
    text = "x" * 30 + " and then a much longer tail that must not be kept"
    short_id = await storage.record_event(new_event(text=text, store_text=False))
    full_id = await storage.record_event(new_event(text=text, store_text=True, message_id="m-2"))
    short, full = await storage.get_event(short_id), await storage.get_event(full_id)
    assert len(short.text) == EXCERPT_CHARS and short.text.endswith("…") and text.startswith(short.text[:-1])
    assert not short.text_stored
    assert full.text == text and full.text_stored
    assert full.scores == {"toxic": 0.93, "insult": 0.81, "threat": 0.02}
    assert full.flagged == ("toxic", "insult") and full.triggered == ("insult",)
    assert full.thresholds == {
        "toxic": LabelThresholds(0.5, 0.5),
        "insult": LabelThresholds(0.4, 0.5),
        "threat": LabelThresholds(0.5, 0.9),
    }
    assert (full.chat, full.message_id, full.author_id, full.model, full.action) == (
        CHAT,
        "m-2",
        "user-1",
        "tiny-toxic",
        "warn",
    )
    assert full.has_strike and not full.strike_cleared and full.feedback_correct is None


async def test_short_text_is_kept_whole_even_without_store_text(storage: Storage) -> None:
    event_id = await storage.record_event(new_event(text="you idiot"))
    assert (await storage.get_event(event_id)).text == "you idiot"


async def test_strikes_are_counted_per_author_and_chat_within_the_window(storage: Storage) -> None:
    for at in (100.0, 200.0, 300.0):
        await storage.record_event(new_event(created_at=at))
    await storage.record_event(new_event(created_at=300.0, author_id="user-2"))
    await storage.record_event(new_event(created_at=300.0, chat=OTHER_CHAT))
    await storage.record_event(new_event(created_at=300.0, strike=False, action="flag"))
    assert await storage.count_strikes(CHAT, "user-1", since=0.0) == 3
    assert await storage.count_strikes(CHAT, "user-1", since=150.0) == 2
    assert await storage.count_strikes(CHAT, "user-2", since=0.0) == 1
    assert await storage.count_strikes(OTHER_CHAT, "user-1", since=0.0) == 1


async def test_not_toxic_feedback_clears_the_strike_and_confirm_restores_it(storage: Storage) -> None:
    event_id = await storage.record_event(new_event())
    event, cleared = await storage.record_feedback(event_id, "admin-1", False, now=50.0)
    assert cleared and event.strike_cleared and event.feedback_correct is False
    assert await storage.count_strikes(CHAT, "user-1", since=0.0) == 0
    event, cleared = await storage.record_feedback(event_id, "admin-2", True, now=60.0)
    assert not cleared and not event.strike_cleared and event.feedback_correct is True
    assert await storage.count_strikes(CHAT, "user-1", since=0.0) == 1


async def test_feedback_on_an_unknown_event_is_a_clear_error(storage: Storage) -> None:
    with pytest.raises(UnknownEventError, match="no moderation event #404"):
        await storage.record_feedback(404, "admin-1", False, now=1.0)
    with pytest.raises(UnknownEventError):
        await storage.record_action_report(404, ActionReport(True, "deleted"))


async def test_action_results_are_stored_and_failures_counted(storage: Storage) -> None:
    ok = await storage.record_event(new_event(action="delete"))
    refused = await storage.record_event(new_event(action="delete"))
    await storage.record_action_report(ok, ActionReport(True, "deleted"))
    await storage.record_action_report(refused, ActionReport(False, "forbidden: missing Manage Messages"))
    assert (await storage.get_event(refused)).report == ActionReport(False, "forbidden: missing Manage Messages")
    assert (await storage.get_event(ok)).report == ActionReport(True, "deleted")
    assert (await storage.stats(CHAT)).action_failures == 1


async def test_stats_count_actions_labels_feedback_and_strikes(storage: Storage) -> None:
    first = await storage.record_event(new_event(flagged=("toxic", "insult")))
    await storage.record_event(new_event(flagged=("toxic", "threat"), action="timeout", timeout_seconds=600))
    third = await storage.record_event(new_event(flagged=("toxic",), action="flag", strike=False))
    await storage.record_event(new_event(chat=OTHER_CHAT))
    await storage.record_feedback(first, "admin-1", False, now=1.0)
    await storage.record_feedback(third, "admin-1", True, now=1.0)
    await storage.update_settings(CHAT, "admin-1", lambda s: dataclasses.replace(s, model="tiny-toxic"), now=1.0)
    stats = await storage.stats(CHAT)
    assert stats.events == 3
    assert stats.by_action == {"warn": 1, "timeout": 1, "flag": 1}
    assert stats.by_label == {"toxic": 3, "insult": 1, "threat": 1}
    assert (stats.confirmed, stats.rejected, stats.active_strikes) == (1, 1, 1)
    assert stats.model == "tiny-toxic"


async def test_reviewed_events_are_the_ones_with_feedback(storage: Storage) -> None:
    ids = [await storage.record_event(new_event(message_id=str(n))) for n in range(4)]
    await storage.record_feedback(ids[2], "admin-1", True, now=1.0)
    await storage.record_feedback(ids[0], "admin-1", False, now=2.0)
    assert [event.id for event in await storage.reviewed_events()] == [ids[0], ids[2]]


async def test_recent_events_are_newest_first_and_per_chat(storage: Storage) -> None:
    ids = [await storage.record_event(new_event(message_id=str(n))) for n in range(3)]
    await storage.record_event(new_event(chat=OTHER_CHAT))
    assert [event.id for event in await storage.recent_events(CHAT, limit=2)] == [ids[2], ids[1]]


async def test_data_survives_closing_and_reopening(db: Database) -> None:
    async with await db.open() as first:
        event_id = await first.record_event(new_event(store_text=True, text="kept"))
        await first.update_settings(CHAT, "admin-1", lambda s: dataclasses.replace(s, enabled=False), now=1.0)
    async with await db.open() as second:
        assert (await second.get_event(event_id)).text == "kept"
        assert (await second.get_settings(CHAT)).enabled is False
