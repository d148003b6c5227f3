"""End to end: the real python-telegram-bot client, the real service and tiny models, a fake Bot API on 127.0.0.1.

Tiny models score at random, so "toxic" is made deterministic through the service: a threshold of 1e-6 on ``insult``
(the service refuses 0) makes every message an insult, whatever its score.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.adapters.telegram_bot import TelegramConfigError, serve
from bot.adapters.telegram_bot import _retry as _telegram_retry
from bot.config import Settings
from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.records import ActionReport, EventRecord
from bot.core.registry import Registry
from bot.core.types import Actor, ChatRef
from bot.storage import Storage
from tests.adapters.command_cases import CASES, CommandCase, ids
from tests.fakes._telegram_payloads import BOT_ID, BOT_USERNAME, DEFAULT_TOKEN, user
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
    for model in registry.specs:  # load and run each model once: tests then wait for replies, not for TensorFlow
        await shared.classify(["warm up"], model=model)
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
    async def service(self) -> AsyncIterator[ModerationService]:
        """A fresh service over the test's database (a restart keeps the database, nothing else)."""
        storage = await Storage.open(self.settings.database_path)
        try:
            yield ModerationService(self.classifier, storage, self.registry)
        finally:
            await storage.close()

    @contextlib.asynccontextmanager
    async def running(self, settings: Settings | None = None) -> AsyncIterator[ModerationService]:
        """The bot serving until the block ends; fails fast if ``serve`` dies while starting."""
        settings = settings or self.settings
        async with self.service() as service:
            stop = asyncio.Event()
            mark = len(self.server.calls)
            task = asyncio.create_task(serve(service, settings, stop))
            ready = "setWebhook" if settings.telegram_webhook_url else "getUpdates"
            started = asyncio.create_task(self.server.wait_for(ready, answered=False, start=mark))
            try:
                await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    started.cancel()
                    task.result()
                    raise AssertionError("serve returned before it was ready")
                await started
                yield service
            finally:
                stop.set()
                await asyncio.wait_for(task, timeout=30)


async def reply_to(server: FakeTelegramServer, message: dict[str, Any], *, within: float = 60) -> Call:
    """The bot's (successful) sendMessage answering ``message``."""
    return await server.wait_for(
        "sendMessage",
        lambda p: (p.get("reply_parameters") or {}).get("message_id") == message["message_id"],
        status=200,
        within=within,
    )


async def event_of(service: ModerationService, message: dict[str, Any], *, within: float = 60) -> EventRecord:
    """The logged event of ``message`` once the bot has carried it out (bounded wait)."""
    async with asyncio.timeout(within):
        while True:
            for event in await service.recent_events(CHAT):
                if event.message_id == str(message["message_id"]) and (event.action == "none" or event.report):
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

        addressed = await server.post_message(GROUP, MEMBER, f"/classify@{BOT_USERNAME} hi")  # as group menus send it
        assert "<pre>" in (await reply_to(server, addressed)).params["text"]

        empty = await server.post_message(GROUP, MEMBER, "/classify")
        assert "usage: /classify [explain] TEXT" in (await reply_to(server, empty)).params["text"]
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
        assert (await event_of(service, message)).report == ActionReport(True, "deleted")
        assert (await event_of(service, photo)).report == ActionReport(True, "deleted")


async def test_flag_reacts_and_warn_replies_leaving_the_message(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "flag")
        flagged = await server.post_message(GROUP, MEMBER, "you are a bit silly")
        reaction = await server.wait_for("setMessageReaction", lambda p: p["message_id"] == flagged["message_id"])
        assert reaction.params["reaction"] == [{"type": "emoji", "emoji": "👀"}]
        assert (await event_of(service, flagged)).report == ActionReport(True, "flagged")

        await service.set_action(CHAT, SERVICE_ADMIN, "warn")
        warned = await server.post_message(GROUP, MEMBER, "you are so stupid")
        warning = (await reply_to(server, warned)).params
        assert "please keep it civil" in warning["text"] and warning["reply_markup"]["inline_keyboard"]
        assert (await event_of(service, warned)).report == ActionReport(True, "warned")
        assert server.message(GROUP, warned["message_id"]) is not None
        assert not server.calls_to("deleteMessage")


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
        assert event.report == ActionReport(False, "delete failed: Message can't be deleted for everyone")
        assert not [c for c in server.calls_to("sendMessage") if "need to be an admin" in c.params["text"]]


async def test_a_bot_without_admin_rights_tells_the_chat_once(server, bot) -> None:
    server.set_member(GROUP, BOT_ID, "member")
    async with bot.running() as service:
        await make_everything_an_insult(service, "delete")
        for text in ("you idiot", "you stupid idiot"):
            message = await server.post_message(GROUP, MEMBER, text)
            await reply_to(server, message)  # warned in reply, since the message stays
            refused = ActionReport(False, "delete failed: Message can't be deleted")
            assert (await event_of(service, message)).report == refused
        notices = [c for c in server.calls_to("sendMessage") if "need to be an admin" in c.params["text"]]
        assert len(notices) == 1


async def test_admin_commands_are_refused_to_members_and_survive_a_restart(server, bot) -> None:
    async with bot.running() as service:
        refused = await server.post_message(GROUP, MEMBER, "/model tiny-sentiment")
        assert "only the chat's admins can change the model" in (await reply_to(server, refused)).params["text"]
        assert (await service.settings(CHAT)).model is None

        private = await server.post_message(PRIVATE, MEMBER, "/settings")
        assert "work in groups" in (await reply_to(server, private)).params["text"]

        accepted = await server.post_message(GROUP, ADMIN, "/model tiny-sentiment")
        assert "now uses tiny-sentiment." in (await reply_to(server, accepted)).params["text"]
        unknown = await server.post_message(GROUP, ADMIN, "/model no-such-model")
        assert "unknown model 'no-such-model'" in (await reply_to(server, unknown)).params["text"]

    async with bot.running():  # a new Application and service on the same database
        listing = await server.post_message(GROUP, ADMIN, "/model")
        lines = (await reply_to(server, listing)).params["text"].split("\n")
        assert [line for line in lines if "in use here" in line] == [
            next(line for line in lines if line.startswith("tiny-sentiment:"))
        ]
        classify = await server.post_message(GROUP, MEMBER, "/classify nice day")
        table = (await reply_to(server, classify)).params["text"]
        assert "POSITIVE" in table and "insult" not in table


async def test_admins_tune_thresholds_and_actions_and_read_settings_and_stats(server, bot) -> None:
    async with bot.running():

        async def ask(text: str) -> str:
            command = await server.post_message(GROUP, ADMIN, text)
            return (await reply_to(server, command)).params["text"]

        assert "insult: thresholds set to 1e-06 (now flag 1e-06, act 1e-06)" in await ask("/threshold insult 0.000001")
        assert "must be above 0" in await ask("/threshold insult 0")
        assert "not a number" in await ask("/threshold insult high")
        assert "usage: /threshold LABEL [flag|act] VALUE|default" in await ask("/threshold insult")
        assert "unknown label" in await ask("/threshold rudeness 0.5")
        assert "now get: timeout" in await ask("/action timeout")
        assert "explode" in await ask("/action explode")
        shown = await ask("/settings")
        assert "action: <code>timeout</code>" in shown and "threshold insult: <code>flag 1e-06*, act 1e-06*" in shown
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        await server.wait_for("restrictChatMember", lambda p: p["user_id"] == MEMBER["id"])
        stats = await ask("/stats")
        assert "events logged: <code>1</code>" in stats and "timeout 1" in stats
        assert server.message(GROUP, message["message_id"]) is None


async def test_not_toxic_from_an_admin_lifts_the_timeout_and_members_cannot_review(server, bot) -> None:
    async with bot.running() as service:
        await make_everything_an_insult(service, "timeout")
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        restrict = await server.wait_for("restrictChatMember", lambda p: p["user_id"] == MEMBER["id"])
        assert restrict.params["permissions"]["can_send_messages"] is False and restrict.params["until_date"]
        warning = await server.wait_for("sendMessage", lambda p: "muted" in p["text"])
        event = await event_of(service, message)
        assert event.report == ActionReport(True, "timed out") and event.has_strike
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


async def test_network_errors_in_a_handler_are_logged_and_the_bot_goes_on(server, bot, monkeypatch, caplog) -> None:
    monkeypatch.setattr(_telegram_retry, "NETWORK_BACKOFF", 0.01)
    server.fail("sendMessage", status=502, description="Bad Gateway", times=3)
    async with bot.running():
        lost = await server.post_message(GROUP, MEMBER, "/classify first")
        start = 0
        for _ in range(3):  # three attempts, then the handler gives up
            failed = await server.wait_for("sendMessage", status=502, start=start)
            assert failed.params["reply_parameters"]["message_id"] == lost["message_id"]
            start = server.calls.index(failed) + 1
        second = await server.post_message(GROUP, MEMBER, "/classify second")
        assert "<pre>" in (await reply_to(server, second)).params["text"]
    assert "error while handling an update" in caplog.text


async def listening(port: int, *, within: float = 30) -> None:
    """Wait (bounded) until something accepts connections on 127.0.0.1:port."""
    async with asyncio.timeout(within):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


async def test_webhook_mode_takes_updates_only_with_the_secret(server, bot, settings) -> None:
    with socket.socket() as probe:  # a free port for the bot's webhook listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/telegram/hook"
    hooked = settings.model_copy(
        update={
            "telegram_webhook_url": url,
            "telegram_webhook_listen": "127.0.0.1",
            "telegram_webhook_port": port,
            "telegram_webhook_secret": SecretStr("s3cret-token"),
        }
    )
    async with bot.running(hooked):
        await listening(port)
        assert server.webhook is not None and server.webhook["url"] == url
        assert server.webhook["secret_token"] == "s3cret-token"
        command = await server.post_message(GROUP, MEMBER, "/classify via webhook")  # POSTed to the bot
        assert "<pre>" in (await reply_to(server, command)).params["text"]
        assert server.deliveries == [200] and not server.calls_to("getUpdates")

        forged = {"update_id": 999, "message": await server.post_message(GROUP, MEMBER, "/classify x", push=False)}
        async with aiohttp.ClientSession() as session:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "guess"}):
                async with session.post(url, json=forged, headers=headers) as answer:
                    assert answer.status == 403


async def test_a_rejected_token_stops_serve_with_a_clear_error_that_hides_the_token(bot, settings) -> None:
    wrong = settings.model_copy(update={"telegram_token": SecretStr("4242:WRONG-secret")})
    async with bot.service() as service:
        with pytest.raises(TelegramConfigError, match="rejected TELEGRAM_TOKEN") as raised:
            await asyncio.wait_for(serve(service, wrong, asyncio.Event()), timeout=30)
    assert "WRONG-secret" not in str(raised.value)


async def test_an_unreachable_api_at_start_is_retried_until_stopped(bot, settings, caplog) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens here once the probe closes
    unreachable = settings.model_copy(update={"telegram_api_base_url": closed})
    stop = asyncio.Event()
    async with bot.service() as service:
        task = asyncio.create_task(serve(service, unreachable, stop))
        async with asyncio.timeout(30):
            while "cannot reach the Bot API" not in caplog.text:  # noqa: ASYNC110 - a log line has no event to await
                await asyncio.sleep(0.05)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, timeout=30)  # returns cleanly, no exception


async def test_the_log_channel_gets_each_event_with_buttons_that_review_it_there(server, bot) -> None:
    log_chat = -100555
    server.add_chat(log_chat, title="Mod log")
    async with bot.running() as service:
        await make_everything_an_insult(service, "warn")
        setting = await server.post_message(GROUP, ADMIN, f"/logchannel {log_chat}")
        assert f"Mod-log: {log_chat}." in (await reply_to(server, setting)).params["text"]
        message = await server.post_message(GROUP, MEMBER, "you are so stupid")
        post = await server.wait_for("sendMessage", lambda p: p["chat_id"] == log_chat)
        event = await event_of(service, message)
        assert "you are so stupid" in post.params["text"] and f"event #{event.id}" in post.params["text"]
        buttons = post.params["reply_markup"]["inline_keyboard"][0]
        assert [b["callback_data"] for b in buttons] == [f"fb:{event.id}:0", f"fb:{event.id}:1"]

        query = await server.press_button(log_chat, ADMIN, post.result["message_id"], f"fb:{event.id}:0")
        answer = await server.wait_for("answerCallbackQuery", lambda p: p["callback_query_id"] == query)
        assert "marked not toxic" in answer.params["text"]  # an admin of the event's chat, pressing in the log
        reviewed = await service.event(event.id)
        assert reviewed.feedback_correct is False and reviewed.strike_cleared


@pytest.mark.parametrize("case", CASES, ids=ids())
async def test_every_command_of_the_shared_surface_works_on_telegram(server, bot, case: CommandCase) -> None:
    async with bot.running() as service:
        values = {"sentiment": "tiny-sentiment", "member": str(MEMBER["id"]), "channel": "-100555"}
        values |= await case.before(service, CHAT)
        command = await server.post_message(GROUP, ADMIN, case.fill(case.text, values))
        text = (await reply_to(server, command)).params["text"]
        assert case.fill(case.says, values) in text
        if case.settled is not None:
            assert case.settled(await service.settings(CHAT)), text
