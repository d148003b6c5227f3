"""End to end: the real python-telegram-bot client, the real service and tiny models, a fake Bot API on 127.0.0.1.

Tiny models score at random, so "toxic" is made deterministic through the service: a threshold of 1e-6 on ``insult``
(the service refuses 0) makes every message an insult, whatever its score.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.adapters import _telegram_retry
from bot.adapters.telegram_bot import serve
from bot.config import Settings
from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.registry import Registry
from bot.core.types import Actor, ChatRef
from bot.storage import EventRecord, Storage
from tests.fakes._telegram_payloads import BOT_ID, DEFAULT_TOKEN, user
from tests.fakes.telegram_server import Call, FakeTelegramServer
from tests.tiny_models import TinyModels

# one event loop for the module, so every test shares one classifier (loading TensorFlow models is the slow part)
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180, func_only=True)]

GROUP = -100123
ADMIN = user(1, "Ada")
MEMBER = user(2, "Bob")
PRIVATE = MEMBER["id"]  # a private chat's id is the user's id
CHAT = ChatRef("telegram", str(GROUP))
SERVICE_ADMIN = Actor("1", is_admin=True)
ANY_SCORE = 1e-6  # a threshold every score reaches (a sigmoid of a tiny model's logit is far above it)
LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def classifier(registry: Registry) -> AsyncIterator[Classifier]:
    shared = Classifier(registry)
    await shared.load()  # as `python -m bot run` does: replies then wait for no model loading
    yield shared
    await shared.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        fake.add_chat(GROUP)
        fake.add_chat(PRIVATE, "private")
        fake.set_member(GROUP, ADMIN["id"], "creator")
        yield fake


@pytest.fixture
def settings(server: FakeTelegramServer, tiny_models: TinyModels, tmp_path: Path) -> Settings:
    return Settings(
        BOT_MODELS_FILE=tiny_models.models_yaml,
        BOT_DATABASE=tmp_path / "bot.sqlite3",
        TELEGRAM_TOKEN=DEFAULT_TOKEN,
        TELEGRAM_API_BASE_URL=server.url,
    )


@pytest.fixture
def bot(server: FakeTelegramServer, settings: Settings, classifier: Classifier, registry: Registry) -> Bot:
    return Bot(server, settings, classifier, registry)


@dataclass
class Bot:
    """Starts the real adapter on a fresh service over the test's database, as ``python -m bot`` wires it."""

    server: FakeTelegramServer
    settings: Settings
    classifier: Classifier
    registry: Registry

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ModerationService]:
        """The bot serving until the block ends; fails fast if ``serve`` dies while starting."""
        storage = await Storage.open(self.settings.database_path)
        service = ModerationService(self.classifier, storage, self.registry)
        stop = asyncio.Event()
        mark = len(self.server.calls)
        task = asyncio.create_task(serve(service, self.settings, stop))
        polling = asyncio.create_task(self.server.wait_for("getUpdates", start=mark))
        try:
            await asyncio.wait({task, polling}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                polling.cancel()
                task.result()
                raise AssertionError("serve returned before polling")
            await polling
            yield service
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=30)
            finally:
                await storage.close()


async def reply_to(server: FakeTelegramServer, message: dict[str, Any], *, timeout: float = 60) -> Call:
    """The bot's sendMessage answering ``message``."""
    return await server.wait_for(
        "sendMessage",
        lambda p: (p.get("reply_parameters") or {}).get("message_id") == message["message_id"],
        timeout=timeout,
    )


async def event_of(service: ModerationService, message: dict[str, Any], *, timeout: float = 60) -> EventRecord:
    """The logged event of ``message`` once the bot has carried it out (bounded wait)."""
    async with asyncio.timeout(timeout):
        while True:
            for event in await service.recent_events(CHAT):
                if event.message_id == str(message["message_id"]) and (event.action == "none" or event.action_result):
                    return event
            await asyncio.sleep(0.05)


async def make_everything_an_insult(service: ModerationService, action: str) -> None:
    await service.set_threshold(CHAT, SERVICE_ADMIN, "insult", ANY_SCORE)
    await service.set_action(CHAT, SERVICE_ADMIN, action)


async def test_classify_replies_with_the_table_and_escapes_user_text(server, bot) -> None:
    async with bot.running():
        command = await server.post_message(GROUP, MEMBER, "/classify <b>you</b> & me")
        reply = (await reply_to(server, command)).params
        assert reply["parse_mode"] == "HTML"
        assert "<pre>" in reply["text"] and all(label in reply["text"] for label in LABELS)
        assert "&lt;b&gt;you&lt;/b&gt; &amp; me" in reply["text"] and "<b>you</b>" not in reply["text"]

        original = await server.post_message(GROUP, ADMIN, "what a lovely picture", push=False)
        replying = await server.post_message(GROUP, MEMBER, "/classify", reply_to=original["message_id"])
        assert "what a lovely picture" in (await reply_to(server, replying)).params["text"]

        huge = await server.post_message(PRIVATE, MEMBER, "word " * 2000)  # private chat: any text is classified
        reply = (await reply_to(server, huge)).params
        assert len(reply["text"]) <= 4096 and "<pre>" in reply["text"]

        empty = await server.post_message(GROUP, MEMBER, "/classify")
        assert "Usage" in (await reply_to(server, empty)).params["text"]
    assert server.calls_to("setMyCommands"), "the command menu is set at start-up"


async def test_a_toxic_message_is_deleted_and_its_author_warned(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        await server.wait_for("deleteMessage", lambda p: p["message_id"] == message["message_id"])
        warning = (await server.wait_for("sendMessage", lambda p: "Removed a message" in p["text"])).params
        assert 'href="tg://user?id=2"' in warning["text"] and "insult" in warning["text"]
        buttons = [b["callback_data"] for row in warning["reply_markup"]["inline_keyboard"] for b in row]
        assert len(buttons) == 2 and all(b.startswith("fb:") for b in buttons)
        assert server.message(GROUP, message["message_id"]) is None

        photo = await server.post_message(GROUP, MEMBER, "look at this idiot", caption=True)
        await server.wait_for("deleteMessage", lambda p: p["message_id"] == photo["message_id"])

        admin_message = await server.post_message(GROUP, ADMIN, "admins are never acted on")
        judged = await event_of(service, admin_message)
        assert judged.action == "none" and "admin" in judged.reason
        assert server.message(GROUP, admin_message["message_id"]) is not None
        assert (await event_of(service, message)).action_result == "deleted"
        assert (await event_of(service, photo)).action_result == "deleted"


async def test_an_edited_old_message_is_warned_when_it_can_no_longer_be_deleted(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        old = await server.post_message(GROUP, MEMBER, "hello", age_seconds=49 * 3600, push=False)
        await server.edit_message(GROUP, old["message_id"], "now you are an idiot")
        delete = await server.wait_for("deleteMessage", lambda p: p["message_id"] == old["message_id"])
        assert delete.status == 400
        warning = (await reply_to(server, old)).params
        assert "Removed" not in warning["text"], "the message is still there: the warning replies to it"
        event = await event_of(service, old)
        assert event.action_result == "delete failed: Message can't be deleted for everyone"
        assert not [c for c in server.calls_to("sendMessage") if "need to be an admin" in c.params["text"]]


async def test_a_bot_without_admin_rights_tells_the_chat_once(server, bot) -> None:
    server.set_member(GROUP, BOT_ID, "member")
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        for text in ("you idiot", "you stupid idiot"):
            message = await server.post_message(GROUP, MEMBER, text)
            await reply_to(server, message)  # warned in reply, since the message stays
            assert (await event_of(service, message)).action_result == "delete failed: Message can't be deleted"
        notices = [c for c in server.calls_to("sendMessage") if "need to be an admin" in c.params["text"]]
        assert len(notices) == 1


async def test_admin_commands_are_refused_to_members_and_survive_a_restart(server, bot) -> None:
    async with bot.running() as service:
        refused = await server.post_message(GROUP, MEMBER, "/model tiny-sentiment")
        assert "Only this chat's admins" in (await reply_to(server, refused)).params["text"]
        assert (await service.settings(CHAT)).model is None

        private = await server.post_message(PRIVATE, MEMBER, "/settings")
        assert "work in groups" in (await reply_to(server, private)).params["text"]

        accepted = await server.post_message(GROUP, ADMIN, "/model tiny-sentiment")
        assert "now uses <code>tiny-sentiment</code>" in (await reply_to(server, accepted)).params["text"]
        unknown = await server.post_message(GROUP, ADMIN, "/model no-such-model")
        assert "unknown model 'no-such-model'" in (await reply_to(server, unknown)).params["text"]

    async with bot.running():  # a new Application and service on the same database
        listing = await server.post_message(GROUP, ADMIN, "/model")
        lines = (await reply_to(server, listing)).params["text"].split("\n")
        assert [line for line in lines if "current" in line] == [
            next(line for line in lines if "<code>tiny-sentiment</code>" in line)
        ]
        classify = await server.post_message(GROUP, MEMBER, "/classify nice day")
        table = (await reply_to(server, classify)).params["text"]
        assert "POSITIVE" in table and "insult" not in table


async def test_admins_tune_thresholds_and_actions_and_read_settings_and_stats(server, bot) -> None:
    async with bot.running():

        async def ask(text: str) -> str:
            command = await server.post_message(GROUP, ADMIN, text)
            return (await reply_to(server, command)).params["text"]

        assert "Threshold of <code>insult</code> is now 1e-06" in await ask("/threshold insult 0.000001")
        assert "must be above 0" in await ask("/threshold insult 0")
        assert "Usage" in await ask("/threshold insult high")
        assert "unknown label" in await ask("/threshold rudeness 0.5")
        assert "now <code>timeout</code>" in await ask("/action timeout")
        assert "explode" in await ask("/action explode")
        shown = await ask("/settings")
        assert "action: <code>timeout</code>" in shown and "insult 1e-06*" in shown
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        await server.wait_for("restrictChatMember", lambda p: p["user_id"] == MEMBER["id"])
        stats = await ask("/stats")
        assert "messages acted on or flagged: 1" in stats and "timeout 1" in stats
        assert server.message(GROUP, message["message_id"]) is None


async def test_not_toxic_from_an_admin_lifts_the_timeout_and_members_cannot_review(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "timeout")
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        restrict = await server.wait_for("restrictChatMember", lambda p: p["user_id"] == MEMBER["id"])
        assert restrict.params["permissions"]["can_send_messages"] is False and restrict.params["until_date"]
        warning = await server.wait_for("sendMessage", lambda p: "muted" in p["text"])
        event = await event_of(service, message)
        assert event.action_result == "timed out" and event.has_strike
        warning_id = warning.result["message_id"]

        query = await server.press_button(GROUP, MEMBER, warning_id, f"fb:{event.id}:0")
        answer = await server.wait_for("answerCallbackQuery", lambda p: p["callback_query_id"] == query)
        assert answer.params.get("show_alert") is True and "admins" in answer.params["text"]
        assert (await service.recent_events(CHAT))[0].feedback_correct is None

        query = await server.press_button(GROUP, ADMIN, warning_id, f"fb:{event.id}:0")
        await server.wait_for("answerCallbackQuery", lambda p: p["callback_query_id"] == query)
        lifted = await server.wait_for("restrictChatMember", lambda p: p["permissions"].get("can_send_messages"))
        assert lifted.params["user_id"] == MEMBER["id"]
        edited = await server.wait_for("editMessageText", lambda p: p["message_id"] == warning_id)
        assert "marked not toxic" in edited.params["text"] and "strike cleared" in edited.params["text"]
        [reviewed] = await service.recent_events(CHAT)
        assert reviewed.feedback_correct is False and reviewed.strike_cleared


async def test_flood_control_is_waited_out_and_retried(server, bot) -> None:
    server.fail("sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1)
    async with bot.running():
        command = await server.post_message(GROUP, MEMBER, "/classify hello")
        reply = await reply_to(server, command)
        attempts = [c for c in server.calls_to("sendMessage") if c.params.get("reply_parameters")]
        assert [c.status for c in attempts] == [429, 200] and reply is attempts[1]


async def test_network_errors_in_a_handler_do_not_stop_the_bot(server, bot, monkeypatch) -> None:
    monkeypatch.setattr(_telegram_retry, "NETWORK_BACKOFF", 0.01)
    server.fail("sendMessage", status=502, description="Bad Gateway", times=3)
    async with bot.running():
        lost = await server.post_message(GROUP, MEMBER, "/classify first")
        await server.wait_for("sendMessage", lambda p: p["reply_parameters"]["message_id"] == lost["message_id"])
        second = await server.post_message(GROUP, MEMBER, "/classify second")
        assert "<pre>" in (await reply_to(server, second)).params["text"]
        assert [c.status for c in server.calls_to("sendMessage")][:3] == [502, 502, 502]
