"""Who gets in: signed expiring links, per-chat sessions, CSRF tokens, the admin re-check, and the signing key.

Over HTTP (httpx on the ASGI app, same event loop), against a real database and the real service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from bot.dashboard import signing_key
from bot.dashboard.auth import LinkError, Signer
from tests.dashboard.helpers import ADMIN, CHAT, KEY, OTHER_CHAT, Setup, dashboard_setup

pytestmark = pytest.mark.asyncio
QUEUE = "/c/telegram/-1001/queue"


@pytest_asyncio.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with dashboard_setup(tmp_path) as ready:
        yield ready


def client(setup: Setup) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=setup.app), base_url="http://127.0.0.1")


async def signed_in(setup: Setup, http: httpx.AsyncClient, chat=CHAT) -> str:
    """Open a fresh link for ``chat``; return the session's CSRF token as the page shows it."""
    login = await http.get("/login", params={"t": setup.signer.link_token(chat, ADMIN)})
    assert login.status_code == 200, login.text
    response = await http.get(login.text.split("url=", 1)[1].split('"', 1)[0])  # where the sign-in page moves on
    assert response.status_code == 200, response.text
    return response.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def test_a_link_opens_its_chat_with_a_strict_httponly_cookie_and_drops_the_token(setup: Setup) -> None:
    await setup.post("you are so stupid")
    async with client(setup) as http:
        response = await http.get("/login", params={"t": setup.signer.link_token(CHAT, ADMIN)})
        assert response.status_code == 200 and f'<meta http-equiv="refresh" content="0; url={QUEUE}">' in response.text
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/c/telegram/-1001/" in cookie
        page = await http.get(QUEUE)
    assert page.status_code == 200 and 'you are so <mark title="+0.89">stupid</mark>' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["content-security-policy"]


async def test_an_expired_link_is_refused(setup: Setup) -> None:
    token = setup.signer.link_token(CHAT, ADMIN)
    setup.clock.now += 15 * 60 + 1
    async with client(setup) as http:
        response = await http.get("/login", params={"t": token})
    assert response.status_code == 401 and "expired" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("tamper", ["flip", "other-key", "session-as-link"])
async def test_a_tampered_or_foreign_link_is_refused(setup: Setup, tamper: str) -> None:
    token = setup.signer.link_token(CHAT, ADMIN)
    if tamper == "flip":  # change the admin id inside the payload, keep the signature
        payload, rest = token.split(".", 1)
        token = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + rest
    elif tamper == "other-key":
        token = Signer("another-key-0123456789abcdef", clock=setup.clock).link_token(CHAT, ADMIN)
    else:
        token, _ = setup.signer.session_cookie(setup.signer.open_link(token))
    async with client(setup) as http:
        response = await http.get("/login", params={"t": token})
        queue = await http.get(QUEUE)
    assert response.status_code == 401 and "not valid" in response.text
    assert queue.status_code == 401


async def test_a_link_of_someone_who_is_not_an_admin_is_refused(setup: Setup) -> None:
    async with client(setup) as http:
        response = await http.get("/login", params={"t": setup.signer.link_token(CHAT, "99")})
    assert response.status_code == 403


async def test_chat_a_session_never_shows_chat_b(setup: Setup) -> None:
    other_event = await setup.post("you are so stupid", chat=OTHER_CHAT, message_id="9")
    async with client(setup) as http:
        csrf = await signed_in(setup, http)
        # the browser sends chat A's cookie only under chat A's path; even when forced, chat B says no
        assert (await http.get("/c/telegram/-1002/queue")).status_code == 401
        cookie = http.cookies.get("modbot_session", path="/c/telegram/-1001/")
        forced = await http.get("/c/telegram/-1002/queue", headers={"cookie": f"modbot_session={cookie}"})
        assert forced.status_code == 403
        # chat B's event through chat A's pages: not found, and nothing recorded
        review = await http.post(f"/c/telegram/-1001/events/{other_event}/review", data={"csrf": csrf, "verdict": "no"})
    assert review.status_code == 404
    assert (await setup.storage.get_event(other_event)).feedback_correct is None


async def test_state_changes_need_the_session_csrf_token(setup: Setup) -> None:
    event_id = await setup.post("you are so stupid")
    async with client(setup) as http:
        csrf = await signed_in(setup, http)
        url = f"/c/telegram/-1001/events/{event_id}/review"
        missing = await http.post(url, data={"verdict": "no"})
        wrong = await http.post(url, data={"verdict": "no", "csrf": csrf[:-1] + ("x" if csrf[-1] != "x" else "y")})
        settings = await http.post("/c/telegram/-1001/settings", data={"action": "delete"})
        assert (missing.status_code, wrong.status_code, settings.status_code) == (403, 403, 403)
        assert (await setup.storage.get_event(event_id)).feedback_correct is None
        assert (await setup.service.settings(CHAT)).action == "warn"
        ok = await http.post(url, data={"verdict": "ok", "csrf": csrf}, headers={"accept": "application/json"})
    assert ok.status_code == 200 and ok.json()["review"] == "confirmed"
    assert (await setup.storage.get_event(event_id)).feedback_correct is True


async def test_an_admin_who_lost_the_role_is_shut_out_once_the_cache_expires(tmp_path: Path) -> None:
    async with dashboard_setup(tmp_path, admin_ttl=60.0) as setup, client(setup) as http:
        await signed_in(setup, http)
        checks = setup.platform.admin_checks
        assert (await http.get(QUEUE)).status_code == 200
        assert setup.platform.admin_checks == checks  # answered from the cache
        setup.platform.admins[CHAT.chat_id].discard(ADMIN)
        assert (await http.get(QUEUE)).status_code == 200  # still cached: "briefly" is a minute
        setup.clock.now += 61
        response = await http.get(QUEUE)
    assert response.status_code == 403 and "not an admin" in response.text


async def test_sessions_expire(setup: Setup) -> None:
    async with client(setup) as http:
        await signed_in(setup, http)
        setup.clock.now += setup.signer.session_seconds + 1
        response = await http.get(QUEUE)
    assert response.status_code == 401


async def test_the_signing_key_is_generated_once_and_kept_unless_the_environment_sets_one(setup: Setup) -> None:
    first = await signing_key(None, setup.storage)
    assert len(first) >= 32 and await signing_key(None, setup.storage) == first
    assert await signing_key(SecretStr(KEY), setup.storage) == KEY
    assert KEY not in repr(SecretStr(KEY))


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Signer("short")
    with pytest.raises(LinkError):
        Signer(KEY).open_link("garbage")
