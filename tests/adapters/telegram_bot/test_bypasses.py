# ruff: noqa: F811 - the fixtures of test_e2e are imported, then requested by name
"""Ways around moderation, closed: foreign commands, unencodable text, posts sent as a channel, edits, crafted buttons.

The real python-telegram-bot client and service against the fake Bot API (fixtures of ``test_e2e``).
"""

from __future__ import annotations

import asyncio

import pytest

from bot.core.records import ActionReport
from tests.adapters.telegram_bot.test_e2e import (  # noqa: F401 - the fixtures are used by name
    CHAT,
    GROUP,
    MEMBER,
    bot,
    classifier,
    event_of,
    make_everything_an_insult,
    reply_to,
    server,
    settings,
)
from tests.fakes._telegram_payloads import BOT_USERNAME, user

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180, func_only=True)]

CHANNEL_BOT = user(136817688, "Channel")  # the placeholder author Telegram puts on every post sent as a channel
CHANNEL = {"id": -1001999, "type": "channel", "title": "Loud channel"}


async def test_only_the_bots_own_commands_are_commands_anything_else_is_moderated(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        foreign = await server.post_message(GROUP, MEMBER, "/x you are a stupid worthless idiot")
        other_bot = await server.post_message(GROUP, MEMBER, "/classify@some_other_bot you idiot")
        for message in (foreign, other_bot):
            await server.wait_for("deleteMessage", lambda p, m=message: p["message_id"] == m["message_id"])
            assert (await event_of(service, message)).report == ActionReport(True, "deleted")
        own = await server.post_message(GROUP, MEMBER, f"/classify@{BOT_USERNAME} hello")
        assert "<pre>" in (await reply_to(server, own)).params["text"]
        assert server.message(GROUP, own["message_id"]) is not None, "the bot's own command is answered, not judged"


async def test_text_with_a_lone_surrogate_is_stored_and_acted_on(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        message = await server.post_message(GROUP, MEMBER, "you \ud800 idiot")
        await server.wait_for("deleteMessage", lambda p: p["message_id"] == message["message_id"])
        event = await event_of(service, message)
        assert event.text.startswith("you \ufffd idiot") and event.report == ActionReport(True, "deleted")


async def test_a_post_sent_as_a_channel_is_judged_and_banned_as_that_channel(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "timeout")
        post = await server.post_message(GROUP, CHANNEL_BOT, "you are all idiots", push=False)
        await server.push_update({"message": {**post, "sender_chat": CHANNEL}})
        ban = await server.wait_for("banChatSenderChat", lambda p: int(p["sender_chat_id"]) == CHANNEL["id"])
        assert int(ban.params["chat_id"]) == GROUP
        event = await event_of(service, post)
        assert event.author_id == str(CHANNEL["id"]) and event.has_strike
        assert not server.calls_to("restrictChatMember"), "the placeholder user shared by all channels is untouched"
        assert not server.calls_to("getChatMember") or all(
            int(call.params["user_id"]) != CHANNEL_BOT["id"] for call in server.calls_to("getChatMember")
        )


async def test_a_message_edited_four_times_is_one_event_and_one_strike(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "warn")
        message = await server.post_message(GROUP, MEMBER, "you are stupid")
        await reply_to(server, message)
        for n in range(4):
            await server.edit_message(GROUP, message["message_id"], f"you are stupid {'!' * (n + 1)}")
        mine = str(message["message_id"])
        for _ in range(1200):  # until the last edit was judged (at most 60 s): the event then holds its text
            if any(e.text.endswith("!!!!") for e in await service.recent_events(CHAT) if e.message_id == mine):
                break
            await asyncio.sleep(0.05)
        events = [event for event in await service.recent_events(CHAT) if event.message_id == mine]
        stats = await service.stats(CHAT)
    assert len(events) == 1 and stats.active_strikes == 1, "an edit re-scores the same event; no second strike"
    assert not server.calls_to("restrictChatMember"), "four edits are not four strikes and a timeout"


async def test_a_crafted_review_button_with_a_huge_event_id_is_answered(server, bot) -> None:
    server.set_member(GROUP, 1, "creator")
    async with bot.running():
        sent = await server.post_message(GROUP, MEMBER, "hello")
        query = await server.press_button(GROUP, user(1, "Ada"), sent["message_id"], "fb:99999999999999999999999:0")
        answer = await server.wait_for("answerCallbackQuery", lambda p: p["callback_query_id"] == query)
    assert "no moderation event" in answer.params["text"]
