"""The dashboard in a real browser: headless Chromium (Playwright) against the bot's own pieces on 127.0.0.1.

The real python-telegram-bot adapter talks to the fake Bot API, the real service logs events in a real database
(scores from the scripted word table: "stupid" is an insult), and the dashboard runs on uvicorn in the same event
loop, as ``python -m bot`` runs it. One browser for the module; each test gets a fresh browser context (no cookies).
Every page is saved as a screenshot in ``test-output/dashboard/``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from bot.adapters.telegram_bot import serve as serve_telegram
from bot.config import Settings
from bot.core.moderation import ModerationService
from bot.core.platforms import Platforms
from bot.core.types import Actor, ChatRef
from bot.dashboard import DashboardLinks, bind, create_app
from bot.dashboard import serve as serve_dashboard
from bot.dashboard.auth import Signer
from bot.storage import Storage
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, screenshot_path
from tests.fakes._telegram_payloads import DEFAULT_TOKEN, user
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry
from tests.fakes.telegram_server import FakeTelegramServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120, func_only=True)]

GROUP, OTHER_GROUP = -100555, -100666
ADMIN, MEMBER = user(1, "Ada"), user(2, "Bob")
CHAT, OTHER_CHAT = ChatRef("telegram", str(GROUP)), ChatRef("telegram", str(OTHER_GROUP))
SERVICE_ADMIN = Actor("1", is_admin=True)
KEY = "browser-test-signing-key-0123456789"


@dataclass
class Stack:
    server: FakeTelegramServer
    storage: Storage
    service: ModerationService
    signer: Signer
    url: str

    async def link_from_bot(self, chat_id: int) -> str:
        """Ask for ``/dashboard`` in the group as the admin; the link the bot sends the admin privately."""
        mark = len(self.server.calls)
        await self.server.post_message(chat_id, ADMIN, "/dashboard")
        private = await self.server.wait_for("sendMessage", lambda p: int(p["chat_id"]) == ADMIN["id"], start=mark)
        text = private.params["text"]
        return text[text.index(self.url) :].split()[0].split('"')[0]

    async def toxic_message(self, text: str = "you are so stupid", chat_id: int = GROUP) -> int:
        """The member posts ``text``; the id of the event once the bot has carried out its action."""
        message = await self.server.post_message(chat_id, MEMBER, text)
        chat = ChatRef("telegram", str(chat_id))
        async with asyncio.timeout(30):
            while True:
                for event in await self.storage.review_queue(chat):
                    if event.message_id == str(message["message_id"]) and event.report:
                        return event.id
                await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("dashboard-browser")
    registry = scripted_registry(folder)
    classifier = scripted_classifier(registry)
    storage = await Storage.open(folder / "bot.sqlite3")
    service = ModerationService(classifier, storage, registry)
    platforms = Platforms()
    signer = Signer(KEY)
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop = asyncio.Event()
    async with FakeTelegramServer() as server:
        for group in (GROUP, OTHER_GROUP):
            server.add_chat(group)
            server.set_member(group, ADMIN["id"], "creator")
            server.set_member(group, MEMBER["id"], "member")
        server.add_chat(ADMIN["id"], "private")
        settings = Settings(TELEGRAM_TOKEN=DEFAULT_TOKEN, TELEGRAM_API_BASE_URL=server.url, BOT_DATABASE=folder / "x")
        links = DashboardLinks(signer, url)
        tasks = [
            asyncio.create_task(serve_telegram(service, settings, stop, platforms=platforms, dashboard=links)),
            asyncio.create_task(serve_dashboard(create_app(storage, service, platforms, signer), sock, stop)),
        ]
        await server.wait_for("getUpdates", answered=False)
        for chat in (CHAT, OTHER_CHAT):
            await service.set_action(chat, SERVICE_ADMIN, "timeout")
        try:
            yield Stack(server, storage, service, signer, url)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
            await classifier.aclose()
            await storage.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def test_a_link_from_the_bot_opens_the_queue_and_not_toxic_lifts_the_timeout(stack: Stack, page: Page) -> None:
    event_id = await stack.toxic_message()
    restricted = await stack.server.wait_for("restrictChatMember", lambda p: int(p["user_id"]) == MEMBER["id"])
    assert not _can_send(restricted.params)
    await sign_in(page, await stack.link_from_bot(GROUP))
    assert page.url == f"{stack.url}/c/telegram/{GROUP}/queue", "the token is dropped from the address bar"
    row = page.locator(f"#event-{event_id}")
    await row.wait_for()
    assert "you are so stupid" in await row.locator("blockquote").inner_text()
    assert await row.locator("mark").all_inner_texts() == ["stupid"], "the explanation highlights the insult"
    await page.screenshot(path=screenshot_path("queue"), full_page=True)

    mark = len(stack.server.calls)
    await row.get_by_role("button", name="Not toxic").click()
    await row.locator("[data-verdict]").filter(has_text="lifted").wait_for()
    lifted = await stack.server.wait_for("restrictChatMember", start=mark)
    assert int(lifted.params["user_id"]) == MEMBER["id"] and _can_send(lifted.params)
    event = await stack.storage.get_event(event_id)
    assert (event.feedback_correct, event.strike_cleared) == (False, True)
    await page.screenshot(path=screenshot_path("queue-reviewed"), full_page=True)

    await row.get_by_role("link", name=f"member {MEMBER['id']}").click()
    await page.locator("#strikes-active").wait_for()
    assert await page.locator("#strikes-active").inner_text() == "0"
    await page.screenshot(path=screenshot_path("member"), full_page=True)


async def test_a_threshold_changed_on_the_settings_page_is_stored_and_audited(stack: Stack, page: Page) -> None:
    await sign_in(page, await stack.link_from_bot(GROUP))
    await page.get_by_role("link", name="Settings").click()
    await page.locator("#threshold-act-insult").fill("0.8")
    await page.locator("#save").click()
    await page.locator("#saved").wait_for()
    assert (await stack.service.settings(CHAT)).thresholds["insult"] == {"act": 0.8}
    audit = await stack.storage.audit_log(CHAT, limit=1)
    assert (audit[0].setting, audit[0].actor_id, audit[0].new) == ("thresholds", "1", {"insult": {"act": 0.8}})
    await page.screenshot(path=screenshot_path("settings"), full_page=True)
    await stack.service.set_threshold(CHAT, SERVICE_ADMIN, "insult", None)


async def test_the_charts_page_draws_every_chart(stack: Stack, page: Page) -> None:
    await stack.toxic_message("stupid again")
    await sign_in(page, await stack.link_from_bot(GROUP))
    await page.get_by_role("link", name="Charts").click()
    images = page.locator("figure img")
    await images.first.wait_for()
    await page.wait_for_load_state("networkidle")
    widths = await images.evaluate_all("images => images.map(image => image.naturalWidth)")
    assert len(widths) == 3 and all(width > 0 for width in widths)
    await page.screenshot(path=screenshot_path("charts"), full_page=True)


async def test_expired_and_tampered_links_are_refused(stack: Stack, page: Page) -> None:
    expired = DashboardLinks(Signer(KEY, clock=lambda: time.time() - 16 * 60), stack.url).link(CHAT, "1")
    response = await page.goto(expired)
    assert response is not None and response.status == 401
    assert "expired" in await page.locator("#error-message").inner_text()
    await page.screenshot(path=screenshot_path("expired-link"), full_page=True)

    link = await stack.link_from_bot(GROUP)
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    response = await page.goto(tampered)
    assert response is not None and response.status == 401
    assert "not valid" in await page.locator("#error-message").inner_text()
    response = await page.goto(f"{stack.url}/c/telegram/{GROUP}/queue")
    assert response is not None and response.status == 401, "no session was started"


async def test_another_chats_event_and_a_post_without_csrf_are_refused(stack: Stack, page: Page) -> None:
    theirs = await stack.toxic_message("so stupid over there", chat_id=OTHER_GROUP)
    mine = await stack.toxic_message("you stupid")
    await sign_in(page, await stack.link_from_bot(GROUP))
    csrf = await page.locator("input[name=csrf]").first.input_value()
    other = await _post(page, f"/c/telegram/{GROUP}/events/{theirs}/review", {"verdict": "no", "csrf": csrf})
    no_token = await _post(page, f"/c/telegram/{GROUP}/events/{mine}/review", {"verdict": "no"})
    other_pages = await page.goto(f"{stack.url}/c/telegram/{OTHER_GROUP}/queue")
    assert other["status"] == 404 and no_token["status"] == 403
    assert other_pages is not None and other_pages.status == 401, "chat A's session does not open chat B"
    assert (await stack.storage.get_event(theirs)).feedback_correct is None
    assert (await stack.storage.get_event(mine)).feedback_correct is None


async def sign_in(page: Page, link: str) -> None:
    """Open a link as the admin would; the sign-in page moves on to the chat's queue by itself."""
    await page.goto(link)
    await page.wait_for_url("**/queue")


async def _post(page: Page, path: str, fields: dict[str, str]) -> dict[str, Any]:
    """A form POST from the page's own origin with its cookies, as a script on the page could send it."""
    return await page.evaluate(
        """async ([path, fields]) => {
            const body = new URLSearchParams(fields);
            const response = await fetch(path, {method: "POST", body, headers: {"Accept": "application/json"}});
            return {status: response.status, body: await response.text()};
        }""",
        [path, fields],
    )


def _can_send(params: dict[str, Any]) -> bool:
    permissions = params["permissions"]
    return bool(permissions.get("can_send_messages"))


async def test_only_admins_get_a_link_and_only_in_private(stack: Stack) -> None:
    quiet_admin = user(3, "Cy")  # an admin who never opened a private chat with the bot
    stack.server.set_member(GROUP, quiet_admin["id"], "administrator")
    mark = len(stack.server.calls)
    for sender in (MEMBER, quiet_admin):
        await stack.server.post_message(GROUP, sender, "/dashboard")
    refused = await stack.server.wait_for("sendMessage", lambda p: "Only this chat's admins" in p["text"], start=mark)
    start = await stack.server.wait_for("sendMessage", lambda p: "open a private chat" in p["text"], start=mark)
    assert int(refused.params["chat_id"]) == GROUP and int(start.params["chat_id"]) == GROUP
    calls = stack.server.calls[mark:]
    delivered = [call.params for call in calls if call.method == "sendMessage" and call.status == 200]
    assert not [params for params in delivered if stack.url in params["text"]], "no link was delivered anywhere"


async def test_telegram_warnings_and_classify_explain_say_which_words_drove_the_score(stack: Stack) -> None:
    mark = len(stack.server.calls)
    await stack.toxic_message("honestly you are stupid")
    warning = await stack.server.wait_for("sendMessage", lambda p: "is muted" in p["text"], start=mark)
    assert "why: insult 0.91: &quot;stupid&quot; +0.89" in warning.params["text"]
    command = await stack.server.post_message(GROUP, MEMBER, "/classify explain <b>so</b> stupid")
    reply = await stack.server.wait_for("sendMessage", lambda p: "<pre>" in p["text"], start=mark)
    assert reply.params["reply_parameters"]["message_id"] == command["message_id"]
    assert "why: insult 0.91: &quot;stupid&quot; +0.89" in reply.params["text"]
    assert "&lt;b&gt;so&lt;/b&gt;" in reply.params["text"]


async def test_a_link_clicked_on_another_site_still_signs_in(stack: Stack, page: Page) -> None:
    # SameSite=Strict cookies are withheld on redirects of a cross-site navigation: the login must survive that
    link = await stack.link_from_bot(GROUP)
    await page.set_content(f'<a id="chat-link" href="{link}">dashboard</a>')
    await page.click("#chat-link")
    await page.wait_for_url(f"{stack.url}/c/telegram/{GROUP}/queue")
    await page.locator("h1").filter(has_text="Review queue").wait_for()
