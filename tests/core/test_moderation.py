"""ModerationService: message -> classification -> decision -> logged event; settings, feedback, statistics.

The real Classifier and a real database are used; only the network inside the classifier is a word table
(tests/fakes/scripted_backend.py), so the scores are known.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.errors import InvalidSettingError, PermissionDenied, UnknownEventError, UnknownModelError
from bot.core.model_folder import LabelThresholds
from bot.core.moderation import ModerationService
from bot.core.records import EXCERPT_CHARS, Action, ActionReport
from bot.core.types import Actor, ChatRef, Message, Task
from bot.storage import Storage
from tests.databases import Database
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry

pytestmark = pytest.mark.asyncio

CHAT = ChatRef("discord", "guild-1")
OTHER = ChatRef("telegram", "-100")
ADMIN = Actor("admin-1", is_admin=True)
MEMBER = Actor("member-1")
MESSAGE_IDS = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def storage(db: Database) -> AsyncIterator[Storage]:
    store = await db.open()
    yield store
    await store.close()


@pytest_asyncio.fixture
async def service(tmp_path: Path, storage: Storage, clock: Clock) -> AsyncIterator[ModerationService]:
    registry = scripted_registry(tmp_path)
    classifier = scripted_classifier(registry)
    yield ModerationService(classifier, storage, registry, clock=clock)
    await classifier.aclose()


def msg(text: str, *, author: Actor = MEMBER, chat: ChatRef = CHAT, roles: frozenset[str] = frozenset()) -> Message:
    return Message(chat=chat, message_id=str(next(MESSAGE_IDS)), author=author, text=text, author_roles=roles)


async def test_a_clean_message_is_not_logged(service: ModerationService) -> None:
    outcome = await service.handle(msg("have a nice day"))
    assert outcome.event_id is None
    assert outcome.decision.action is Action.NONE
    assert outcome.classification is not None and outcome.classification.model == "scripted-toxic"


async def test_an_insult_warns_and_logs_the_event_with_its_strike(service: ModerationService, storage: Storage) -> None:
    text = "you are so stupid, " + "really " * 20
    outcome = await service.handle(msg(text))
    assert outcome.decision.action is Action.WARN
    assert outcome.decision.triggered == ("insult",) and outcome.decision.strikes == 1
    event = await storage.get_event(outcome.event_id)
    assert (event.action, event.author_id, event.chat, event.has_strike) == ("warn", "member-1", CHAT, True)
    assert event.reason == outcome.decision.reason
    assert event.scores["insult"] == pytest.approx(0.91)
    assert len(event.text) == EXCERPT_CHARS and not event.text_stored  # the chat did not opt in to storing text


async def test_the_third_strike_in_24h_times_out_and_old_strikes_expire(
    service: ModerationService, clock: Clock
) -> None:
    actions = []
    for _ in range(3):
        actions.append((await service.handle(msg("stupid"))).decision)
        clock.now += 3600
    assert [d.action for d in actions] == [Action.WARN, Action.WARN, Action.TIMEOUT]
    assert actions[2].timeout_seconds == 600 and actions[2].strikes == 3
    assert "3rd strike in 24 h -> timeout 10 min" in actions[2].reason
    clock.now += 24 * 3600  # the three strikes leave the window
    assert (await service.handle(msg("stupid"))).decision.strikes == 1


async def test_concurrent_messages_of_one_author_count_every_strike(service: ModerationService) -> None:
    outcomes = await asyncio.gather(*(service.handle(msg(f"stupid {n}")) for n in range(6)))
    assert sorted(o.decision.strikes for o in outcomes) == [1, 2, 3, 4, 5, 6]
    assert sum(o.decision.action is Action.TIMEOUT for o in outcomes) == 4


async def test_swearing_alone_is_flagged_without_a_strike(service: ModerationService, storage: Storage) -> None:
    outcome = await service.handle(msg("damn it"))
    assert outcome.decision.action is Action.FLAG
    assert not (await storage.get_event(outcome.event_id)).has_strike


async def test_admins_are_logged_but_never_acted_on(service: ModerationService, storage: Storage) -> None:
    outcome = await service.handle(msg("stupid", author=ADMIN))
    assert outcome.decision.action is Action.NONE
    assert "but the author is an admin: never acted on" in outcome.decision.reason
    assert outcome.event_id is not None and not (await storage.get_event(outcome.event_id)).has_strike


async def test_exempt_users_and_roles_set_by_an_admin_are_never_acted_on(service: ModerationService) -> None:
    await service.set_exempt(CHAT, ADMIN, "user", MEMBER.user_id, True)
    await service.set_exempt(CHAT, ADMIN, "role", "trusted", True)
    assert (await service.handle(msg("stupid"))).decision.action is Action.NONE
    other = Actor("member-2")
    assert (
        await service.handle(msg("stupid", author=other, roles=frozenset({"trusted"})))
    ).decision.action is Action.NONE
    await service.set_exempt(CHAT, ADMIN, "user", MEMBER.user_id, False)
    assert (await service.handle(msg("stupid"))).decision.action is Action.WARN


async def test_a_disabled_chat_is_not_even_classified(service: ModerationService) -> None:
    await service.set_enabled(CHAT, ADMIN, False)
    outcome = await service.handle(msg("I will kill you"))
    assert (outcome.event_id, outcome.classification, outcome.decision.action) == (None, None, Action.NONE)
    assert (await service.handle(msg("I will kill you", chat=OTHER))).decision.action is Action.WARN


async def test_an_empty_message_is_ignored(service: ModerationService) -> None:
    outcome = await service.handle(msg("   "))
    assert outcome.event_id is None and outcome.classification is None


async def test_a_sentiment_model_never_acts(service: ModerationService) -> None:
    await service.set_model(CHAT, ADMIN, "scripted-sentiment")
    outcome = await service.handle(msg("stupid"))
    assert outcome.classification is not None and outcome.classification.task is Task.SINGLE_LABEL
    assert outcome.decision.action is Action.NONE and outcome.event_id is None


async def test_thresholds_come_from_the_chat_then_models_yaml(service: ModerationService) -> None:
    # models.yaml puts threat at 0.4 (both points); "kill" scores threat 0.85
    assert (await service.handle(msg("kill"))).decision.thresholds["threat"] == LabelThresholds(0.4, 0.4)
    await service.set_threshold(CHAT, ADMIN, "threat", 0.9)
    assert (await service.handle(msg("kill"))).decision.action is Action.FLAG  # toxic 0.90 still flags
    await service.set_threshold(CHAT, ADMIN, "threat", None)
    assert (await service.handle(msg("kill"))).decision.thresholds["threat"] == LabelThresholds(0.4, 0.4)


async def test_an_admin_moves_the_act_point_and_the_flag_point_apart(service: ModerationService) -> None:
    # "stupid" scores insult 0.91: over an act threshold of 0.95 it would act, under it it is flagged for review
    settings = await service.set_threshold(CHAT, ADMIN, "insult", 0.95, "act")
    assert settings.thresholds == {"insult": {"act": 0.95}}
    decision = (await service.handle(msg("stupid"))).decision
    assert decision.action is Action.FLAG and decision.triggered == () and "insult" in decision.flagged
    assert "insult < act 0.95" in decision.reason and decision.thresholds["insult"] == LabelThresholds(0.5, 0.95)
    await service.set_threshold(CHAT, ADMIN, "insult", 0.92, "flag")
    assert (await service.handle(msg("stupid"))).decision.flagged == ("toxic",)  # insult under both points now
    await service.set_threshold(CHAT, ADMIN, "insult", 0.8)  # no point: both
    assert (await service.settings(CHAT)).thresholds == {"insult": {"flag": 0.8, "act": 0.8}}
    assert (await service.handle(msg("stupid"))).decision.action is Action.WARN
    await service.set_threshold(CHAT, ADMIN, "insult", None, "act")  # reset one point
    assert (await service.settings(CHAT)).thresholds == {"insult": {"flag": 0.8}}
    with pytest.raises(InvalidSettingError, match="'flag' or 'act'"):
        await service.set_threshold(CHAT, ADMIN, "insult", 0.5, "warn")


SPANISH_INSULT = "Eres un stupid y todos en esta ciudad lo saben muy bien, no vuelvas nunca más por aquí"


async def test_a_message_in_another_language_is_only_flagged_unless_the_chat_turns_the_gate_off(
    service: ModerationService, storage: Storage
) -> None:
    outcome = await service.handle(msg(SPANISH_INSULT))  # the model declares languages: [en]
    assert outcome.decision.action is Action.FLAG and outcome.decision.triggered == ("insult",)
    assert "in Spanish, not English: flagged only" in outcome.decision.reason
    assert not (await storage.get_event(outcome.event_id)).has_strike
    assert (await service.handle(msg("you are so stupid"))).decision.action is Action.WARN  # English still acts
    await service.set_language_gate(CHAT, ADMIN, False)
    decision = (await service.handle(msg(SPANISH_INSULT))).decision
    assert decision.action is Action.WARN and "strike 2 of 3" in decision.reason


async def test_acting_labels_and_action_are_chat_settings(service: ModerationService) -> None:
    await service.set_acting_labels(CHAT, ADMIN, ["obscene"])
    await service.set_action(CHAT, ADMIN, "delete")
    assert (await service.handle(msg("damn"))).decision.action is Action.DELETE
    assert (await service.handle(msg("stupid"))).decision.action is Action.FLAG


async def test_a_chat_that_stores_text_keeps_whole_messages(service: ModerationService, storage: Storage) -> None:
    await service.set_store_text(CHAT, ADMIN, True)
    text = "you are so stupid " * 10
    outcome = await service.handle(msg(text))
    event = await storage.get_event(outcome.event_id)
    assert event.text == text and event.text_stored


@pytest.mark.parametrize(
    "change",
    [
        lambda s, chat, who: s.set_model(chat, who, "scripted-sentiment"),
        lambda s, chat, who: s.set_threshold(chat, who, "insult", 0.9),
        lambda s, chat, who: s.set_action(chat, who, "delete"),
        lambda s, chat, who: s.set_exempt(chat, who, "user", "x", True),
        lambda s, chat, who: s.set_log_channel(chat, who, "123"),
        lambda s, chat, who: s.set_enabled(chat, who, False),
        lambda s, chat, who: s.set_acting_labels(chat, who, ["toxic"]),
        lambda s, chat, who: s.set_store_text(chat, who, True),
        lambda s, chat, who: s.set_escalation(chat, who, strike_limit=1, window_seconds=60, timeout_seconds=60),
    ],
)
async def test_every_settings_change_needs_an_admin_and_is_audited(
    service: ModerationService, storage: Storage, change
) -> None:
    before = await service.settings(CHAT)
    with pytest.raises(PermissionDenied, match="only the chat's admins can"):
        await change(service, CHAT, MEMBER)
    assert await service.settings(CHAT) == before
    assert await storage.audit_log(CHAT) == []
    after = await change(service, CHAT, ADMIN)
    assert after != before and await service.settings(CHAT) == after
    entries = await storage.audit_log(CHAT)
    assert entries and {entry.actor_id for entry in entries} == {ADMIN.user_id}


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda s: s.set_model(CHAT, ADMIN, "gpt-17"), UnknownModelError, "unknown model 'gpt-17'"),
        (lambda s: s.set_action(CHAT, ADMIN, "ban"), InvalidSettingError, "unknown action 'ban'"),
        (lambda s: s.set_threshold(CHAT, ADMIN, "insult", 1.5), InvalidSettingError, "at most 1"),
        (lambda s: s.set_threshold(CHAT, ADMIN, "insult", 0.0), InvalidSettingError, "above 0"),
        (lambda s: s.set_threshold(CHAT, ADMIN, "insult", float("nan")), InvalidSettingError, "above 0"),
        (lambda s: s.set_threshold(CHAT, ADMIN, "rudeness", 0.5), InvalidSettingError, "unknown label 'rudeness'"),
        (lambda s: s.set_acting_labels(CHAT, ADMIN, ["insult", "x"]), InvalidSettingError, "unknown label 'x'"),
        (lambda s: s.set_exempt(CHAT, ADMIN, "group", "x", True), InvalidSettingError, "'user' or a 'role'"),
        (
            lambda s: s.set_escalation(CHAT, ADMIN, strike_limit=3, window_seconds=0, timeout_seconds=60),
            InvalidSettingError,
            "window and timeout",
        ),
    ],
)
async def test_invalid_settings_are_refused_with_a_clear_error(
    service: ModerationService, change, error: type[Exception], message: str
) -> None:
    before = await service.settings(CHAT)
    with pytest.raises(error, match=message):
        await change(service)
    assert await service.settings(CHAT) == before


async def test_not_toxic_feedback_clears_the_strike_and_lifts_a_running_timeout(
    service: ModerationService, clock: Clock
) -> None:
    await service.set_escalation(CHAT, ADMIN, strike_limit=2, window_seconds=86400, timeout_seconds=600)
    await service.handle(msg("stupid"))
    timed_out = await service.handle(msg("stupid"))
    assert timed_out.decision.action is Action.TIMEOUT
    result = await service.feedback(timed_out.event_id, ADMIN, False, chat=CHAT)
    assert (result.strike_cleared, result.lift_timeout, result.author_id, result.chat) == (True, True, "member-1", CHAT)
    assert result.event.feedback_correct is False
    # one strike left in the window: the next insult is the 2nd strike again
    assert (await service.handle(msg("stupid"))).decision.strikes == 2


async def test_feedback_after_the_timeout_ran_out_lifts_nothing(service: ModerationService, clock: Clock) -> None:
    await service.set_action(CHAT, ADMIN, "timeout")
    outcome = await service.handle(msg("stupid"))
    clock.now += 601
    result = await service.feedback(outcome.event_id, ADMIN, False)
    assert result.strike_cleared and not result.lift_timeout


async def test_confirming_keeps_the_strike(service: ModerationService) -> None:
    outcome = await service.handle(msg("stupid"))
    result = await service.feedback(outcome.event_id, ADMIN, True)
    assert not result.strike_cleared and not result.lift_timeout and result.event.feedback_correct is True
    assert (await service.stats(CHAT)).active_strikes == 1


async def test_feedback_needs_an_admin_of_the_events_chat(service: ModerationService) -> None:
    outcome = await service.handle(msg("stupid"))
    with pytest.raises(PermissionDenied):
        await service.feedback(outcome.event_id, MEMBER, False)
    with pytest.raises(PermissionDenied, match="belongs to another chat"):
        await service.feedback(outcome.event_id, ADMIN, False, chat=OTHER)
    with pytest.raises(UnknownEventError):
        await service.feedback(10_000, ADMIN, False)
    assert (await service.stats(CHAT)).active_strikes == 1


async def test_action_results_and_stats(service: ModerationService, storage: Storage) -> None:
    warned = await service.handle(msg("stupid"))
    await service.handle(msg("damn"))
    report = ActionReport(False, "forbidden: missing Manage Messages")
    await service.record_action_report(warned.event_id, report)
    assert (await storage.get_event(warned.event_id)).report == report
    stats = await service.stats(CHAT)
    assert stats.model == "scripted-toxic"
    assert dict(stats.by_action) == {"warn": 1, "flag": 1}
    assert (stats.events, stats.active_strikes, stats.action_failures) == (2, 1, 1)


async def test_classify_uses_the_chats_model_or_the_one_asked_for(service: ModerationService) -> None:
    assert (await service.classify("stupid")).model == "scripted-toxic"
    await service.set_model(CHAT, ADMIN, "scripted-sentiment")
    assert (await service.classify("stupid", chat=CHAT)).model == "scripted-sentiment"
    assert (await service.classify("stupid", chat=CHAT, model="scripted-toxic")).model == "scripted-toxic"
    with pytest.raises(UnknownModelError):
        await service.classify("stupid", model="nope")
    assert (await service.stats(CHAT)).events == 0  # /classify logs nothing


async def test_a_model_removed_from_models_yaml_falls_back_to_the_default(
    service: ModerationService, storage: Storage
) -> None:
    import dataclasses

    await storage.update_settings(CHAT, "old-admin", lambda s: dataclasses.replace(s, model="retired"), now=1.0)
    assert (await service.handle(msg("stupid"))).classification.model == "scripted-toxic"


async def test_a_flagged_message_is_explained_and_the_explanation_logged(service: ModerationService, storage) -> None:
    outcome = await service.handle(msg("well you are so stupid today"))
    assert outcome.explanation is not None and outcome.explanation.label == "insult"
    assert [w.word for w in outcome.explanation.words] == ["stupid"]
    assert (await storage.get_event(outcome.event_id)).explanation == outcome.explanation
    clean = await service.handle(msg("have a nice day"))
    assert clean.explanation is None


async def test_classify_explains_on_request(service: ModerationService) -> None:
    classification = await service.classify("so damn stupid")
    explanation = await service.explain("so damn stupid", classification, label="obscene")
    assert explanation is not None and [w.word for w in explanation.words] == ["damn"]
