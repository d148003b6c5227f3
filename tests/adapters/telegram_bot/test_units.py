"""The Telegram adapter's small parts: reply splitting, escaping, bounded retries and the admin cache."""

from __future__ import annotations

import datetime as dtm

import pytest
from telegram import ChatMemberMember, ChatMemberOwner, User
from telegram.error import BadRequest, RetryAfter, TimedOut

from bot.adapters.telegram_bot import _retry as _telegram_retry
from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._render import MAX_MESSAGE, mention, split_html
from bot.adapters.telegram_bot._retry import call_api


def test_split_html_keeps_every_line_and_each_chunk_under_the_limit() -> None:
    lines = [f"<code>line {i}</code> " + "x" * 90 for i in range(200)]
    chunks = split_html("\n".join(lines))
    assert len(chunks) > 1 and all(len(chunk) <= MAX_MESSAGE for chunk in chunks)
    assert "\n".join(chunks).split("\n") == lines


def test_split_html_cuts_a_single_overlong_line() -> None:
    chunks = split_html("short\n" + "y" * 9000)
    assert [len(c) for c in chunks] == [5, MAX_MESSAGE, MAX_MESSAGE, 9000 - 2 * MAX_MESSAGE]


def test_mention_escapes_the_display_name() -> None:
    assert mention(7, "<b>Eve</b> & co") == '<a href="tg://user?id=7">&lt;b&gt;Eve&lt;/b&gt; &amp; co</a>'


class Flaky:
    """An API method failing with the given errors before it succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_telegram_retry.asyncio, "sleep", sleep)
    return waits


@pytest.mark.asyncio
async def test_flood_control_waits_what_telegram_asks_then_retries(no_sleep: list[float]) -> None:
    method = Flaky(RetryAfter(dtm.timedelta(seconds=3)), TimedOut())
    assert await call_api(method) == "ok"
    assert method.calls == 3 and no_sleep == [3.0, _telegram_retry.NETWORK_BACKOFF * 2]


@pytest.mark.asyncio
async def test_a_flood_wait_over_the_bound_or_too_many_failures_give_up(no_sleep: list[float]) -> None:
    with pytest.raises(RetryAfter):
        await call_api(Flaky(RetryAfter(dtm.timedelta(seconds=3600))))
    with pytest.raises(TimedOut):
        await call_api(Flaky(TimedOut(), TimedOut(), TimedOut()))
    assert no_sleep == [_telegram_retry.NETWORK_BACKOFF, _telegram_retry.NETWORK_BACKOFF * 2]


@pytest.mark.asyncio
async def test_bad_request_is_never_retried(no_sleep: list[float]) -> None:
    method = Flaky(BadRequest("message can't be deleted"))
    with pytest.raises(BadRequest):
        await call_api(method)
    assert method.calls == 1 and no_sleep == []


class Members:
    """Answers getChatMember from a dict and counts the calls, like a bot would."""

    def __init__(self, statuses: dict[int, str]) -> None:
        self.statuses = statuses
        self.calls = 0
        self.id = 99

    async def get_chat_member(self, chat_id: int, user_id: int) -> object:
        self.calls += 1
        someone = User(user_id, "U", False)
        if self.statuses.get(user_id) == "creator":
            return ChatMemberOwner(someone, is_anonymous=False)
        return ChatMemberMember(someone)


@pytest.mark.asyncio
async def test_admin_answers_are_cached_for_the_ttl_only() -> None:
    now = [0.0]
    cache = AdminCache(ttl=60, clock=lambda: now[0])
    bot = Members({1: "creator"})
    assert await cache.is_admin(bot, -1, 1) and not await cache.is_admin(bot, -1, 2)  # type: ignore[arg-type]
    assert await cache.is_admin(bot, -1, 1) and bot.calls == 2  # type: ignore[arg-type]
    bot.statuses[1] = "member"
    now[0] = 61
    assert not await cache.is_admin(bot, -1, 1) and bot.calls == 3  # type: ignore[arg-type]
