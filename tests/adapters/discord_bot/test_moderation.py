"""End to end: automatic moderation by the real discord.py client against a fake Discord on 127.0.0.1.

The service, storage and classifier are real (tiny models, a temporary database); only Discord is faked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.records import ActionReport
from bot.core.registry import load_registry
from tests.adapters.discord_bot.harness import (
    CLEAN_TEXT,
    SERVICE_ADMIN,
    TOXIC_TEXT,
    act_on_everything,
    chat,
    moderation_service,
    running_bot,
    split_threshold,
)
from tests.fakes.discord_server import Call, FakeDiscord
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60, func_only=True)]

MESSAGE = r"/channels/\d+/messages/{id}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier(tiny_models: TinyModels) -> AsyncIterator[Classifier]:
    shared = Classifier(load_registry(tiny_models.models_yaml))
    for name in shared.registry.names():  # loaded and warmed up once here, not inside a test's bounded waits
        await shared.classify(["warm up"], name)
    yield shared
    await shared.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def service(classifier: Classifier, tmp_path: Path, fake: FakeDiscord) -> AsyncIterator[ModerationService]:
    async with moderation_service(classifier, tmp_path / "bot.sqlite3") as core:
        room = chat(fake)
        await core.set_log_channel(room, SERVICE_ADMIN, fake.guild.channels["mod-log"]["id"])
        yield core


async def test_client_reaches_on_ready_with_the_message_content_intent(fake, service):
    async with running_bot(fake, service) as bot:
        assert bot.is_ready()
        assert bot.user is not None and str(bot.user.id) == fake.guild.users["bot"]["id"]
        assert [guild.id for guild in bot.guilds] == [int(fake.guild.id)]
    intents = fake.identifies[0]["intents"]
    assert intents & (1 << 15), "MESSAGE_CONTENT intent not requested"
    assert intents & (1 << 9), "GUILD_MESSAGES intent not requested"
    assert fake.identifies[0]["token"] == "fake-discord-token"


async def test_toxic_message_is_deleted_and_logged_and_clean_one_is_not(fake, service):
    from bot.core.report import escape_discord

    room = chat(fake)
    await split_threshold(service, room)
    await service.set_action(room, SERVICE_ADMIN, "delete")
    async with running_bot(fake, service):
        clean = await fake.send_message(CLEAN_TEXT)
        toxic = await fake.send_message(TOXIC_TEXT)
        delete = await fake.wait_for_call("DELETE", MESSAGE.format(id=toxic["id"]))
        await fake.wait_for(lambda: fake.channel_posts("mod-log"))
    assert delete.status == 204
    assert not fake.find_calls("DELETE", MESSAGE.format(id=clean["id"]))
    [post] = fake.channel_posts("mod-log")
    [embed] = post["embeds"]
    assert embed["title"] == "Deleted"
    assert TOXIC_TEXT in embed["description"]
    custom_ids = [c["custom_id"] for row in post["components"] for c in row["components"]]
    [event] = await service.recent_events(room)
    assert event.message_id == toxic["id"] and event.action == "delete"
    assert event.report == ActionReport(True, "deleted")
    assert custom_ids == [f"modbot:review:{event.id}:no", f"modbot:review:{event.id}:ok"]
    assert f"event #{event.id}" in embed["footer"]["text"]
    why = {field["name"]: field["value"] for field in embed["fields"]}["Why"]
    assert event.explanation is not None and why == escape_discord(event.explanation.summary())


async def test_an_edit_re_scores_the_same_event_and_carries_out_the_new_decision(fake, service):
    room = chat(fake)
    await split_threshold(service, room)
    await service.set_action(room, SERVICE_ADMIN, "delete")
    # the clean text gets flagged on `toxic` (a flag-only label), so the test sees when it was handled
    toxic_floor = (await service.classify(CLEAN_TEXT, chat=room)).score("toxic") / 2
    await service.set_threshold(room, SERVICE_ADMIN, "toxic", toxic_floor)
    async with running_bot(fake, service):
        message = await fake.send_message(CLEAN_TEXT)
        await fake.wait_for_call("PUT", MESSAGE.format(id=message["id"]) + r"/reactions/.+/@me")
        await fake.edit_message(message, TOXIC_TEXT)
        await fake.wait_for_call("DELETE", MESSAGE.format(id=message["id"]))
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 2)
    events = sorted(await service.recent_events(room), key=lambda event: event.id)
    # one event per message: the edit re-scored it, and the changed decision was carried out
    assert [(e.message_id, e.action, e.report.detail) for e in events] == [(message["id"], "delete", "deleted")]


async def test_warn_replies_to_the_author_and_flag_reacts(fake, service):
    room = chat(fake)
    await act_on_everything(service, room, TOXIC_TEXT, "you are an idiot")

    def reply_to(message: dict) -> Call | None:
        posts = fake.find_calls("POST", r"/channels/\d+/messages")
        return next(
            (c for c in posts if str((c.body or {}).get("message_reference", {}).get("message_id")) == message["id"]),
            None,
        )

    async with running_bot(fake, service):
        warned = await fake.send_message(TOXIC_TEXT)  # the default action is warn
        warning = await fake.wait_for(lambda: reply_to(warned))
        await service.set_action(room, SERVICE_ADMIN, "flag")
        flagged = await fake.send_message("you are an idiot")
        reaction = await fake.wait_for_call("PUT", MESSAGE.format(id=flagged["id"]) + r"/reactions/.+/@me")
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 2)
    assert f"<@{fake.guild.users['member']['id']}>" in warning.body["content"]
    assert reaction.status == 204
    results = {event.message_id: event.report.detail for event in await service.recent_events(room)}
    assert results == {warned["id"]: "warned", flagged["id"]: "flagged"}


async def test_missing_permission_on_delete_is_logged_told_once_and_the_bot_keeps_serving(fake, service):
    room = chat(fake)
    await act_on_everything(service, room, TOXIC_TEXT, "you are an idiot", "you are so stupid")
    await service.set_action(room, SERVICE_ADMIN, "delete")
    await service.set_escalation(room, SERVICE_ADMIN, strike_limit=0, window_seconds=3600, timeout_seconds=60)
    fake.fail("DELETE", r"/channels/\d+/messages/\d+", 403)
    async with running_bot(fake, service):
        first = await fake.send_message(TOXIC_TEXT)
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 2)  # the notice and the event
        second = await fake.send_message("you are an idiot")
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 3)
        fake.clear_failures()
        third = await fake.send_message("you are so stupid")
        deleted = await fake.wait_for_call("DELETE", MESSAGE.format(id=third["id"]))
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 4)
    assert deleted.status == 204
    assert [c.status for c in fake.find_calls("DELETE", MESSAGE.format(id=first["id"]))] == [403]
    notices = [p["content"] for p in fake.channel_posts("mod-log") if p["content"]]
    assert len(notices) == 1 and "missing Manage Messages" in notices[0]
    results = {event.message_id: event.report.detail for event in await service.recent_events(room)}
    assert results[first["id"]] == results[second["id"]] == "forbidden: missing Manage Messages"
    assert results[third["id"]] == "deleted"
    assert (await service.stats(room)).action_failures == 2


async def test_rate_limited_delete_is_retried_after_retry_after(fake, service):
    room = chat(fake)
    await act_on_everything(service, room, TOXIC_TEXT)
    await service.set_action(room, SERVICE_ADMIN, "delete")
    fake.fail("DELETE", r"/channels/\d+/messages/\d+", 429, times=1, retry_after=0.05)
    async with running_bot(fake, service):
        message = await fake.send_message(TOXIC_TEXT)
        await fake.wait_for(
            lambda: [c.status for c in fake.find_calls("DELETE", MESSAGE.format(id=message["id"]))] == [429, 204]
        )
        await fake.wait_for(lambda: fake.channel_posts("mod-log"))
    [event] = await service.recent_events(room)
    assert event.report == ActionReport(True, "deleted")


@pytest.mark.parametrize(
    ("code", "recorded"),
    [(10008, "not done: message already deleted"), (10004, "not done: the bot is no longer in this server")],
    ids=["message-already-deleted", "guild-left"],
)
async def test_a_vanished_message_or_guild_is_recorded_not_raised(fake, service, code, recorded):
    room = chat(fake)
    await act_on_everything(service, room, TOXIC_TEXT, CLEAN_TEXT)
    await service.set_action(room, SERVICE_ADMIN, "delete")
    fake.fail("DELETE", r"/channels/\d+/messages/\d+", 404, times=1, code=code)
    async with running_bot(fake, service):
        gone = await fake.send_message(TOXIC_TEXT)
        await fake.wait_for(lambda: len(fake.channel_posts("mod-log")) >= 2)  # the notice and the event
        later = await fake.send_message(CLEAN_TEXT)
        await fake.wait_for_call("DELETE", MESSAGE.format(id=later["id"]))
    results = {event.message_id: event.report.detail for event in await service.recent_events(room)}
    assert results[gone["id"]] == recorded


async def test_not_toxic_button_is_for_admins_and_lifts_the_timeout(fake, service):
    room = chat(fake)
    await act_on_everything(service, room, TOXIC_TEXT)
    await service.set_action(room, SERVICE_ADMIN, "timeout")
    member_path = rf"/guilds/{fake.guild.id}/members/{fake.guild.users['member']['id']}"
    async with running_bot(fake, service):
        message = await fake.send_message(TOXIC_TEXT)
        timeout = await fake.wait_for_call("PATCH", member_path)
        [post] = await fake.wait_for(lambda: fake.channel_posts("mod-log"))
        [event] = await service.recent_events(room)
        refused = await fake.click(post, f"modbot:review:{event.id}:no", user="member")
        assert "Manage Server" in (await fake.wait_reply(refused))["content"]
        assert (await service.recent_events(room))[0].feedback_correct is None
        click = await fake.click(post, f"modbot:review:{event.id}:no", user="admin")
        lifted = await fake.wait_for_call("PATCH", member_path, after=fake.calls.index(timeout) + 1)
        edit = await fake.wait_for_call("PATCH", rf"/webhooks/\d+/{click['token']}/messages/@original")
    assert fake.find_calls("DELETE", MESSAGE.format(id=message["id"]))
    assert timeout.body["communication_disabled_until"] is not None
    assert lifted.body["communication_disabled_until"] is None
    review = next(f["value"] for f in edit.body["embeds"][0]["fields"] if f["name"] == "Review")
    assert "not toxic" in review and "strike cleared" in review and "timeout lifted" in review
    assert edit.body["components"] == []
    [reviewed] = await service.recent_events(room)
    assert reviewed.feedback_correct is False and reviewed.strike_cleared
