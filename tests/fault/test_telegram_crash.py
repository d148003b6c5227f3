"""SIGKILL in the middle of a Telegram load, then a restart: every message moderated exactly once."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.fakes._telegram_payloads import DEFAULT_TOKEN, user
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fault.conftest import Load
from tests.fault.harness import START_WITHIN, BotProcess, Rows, bot_env, wait_stable, wait_until
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.fault, pytest.mark.asyncio, pytest.mark.timeout(600, func_only=True)]

GROUP = -100555
MESSAGES = 2000
AUTHORS = 40


async def test_sigkill_during_a_2000_message_load_then_restart_loses_and_doubles_nothing(
    tiny_models: TinyModels, load: Load, tmp_path: Path
) -> None:
    rows = Rows(tmp_path / "bot.sqlite3")
    async with FakeTelegramServer() as server:
        server.add_chat(GROUP)
        env = bot_env(
            rows.database, tiny_models.models_yaml, TELEGRAM_TOKEN=DEFAULT_TOKEN, TELEGRAM_API_BASE_URL=server.url
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            await bot.start()
            await server.wait_for("getUpdates", answered=False, within=START_WITHIN)
            plan = load.messages(MESSAGES, AUTHORS)
            sent = []
            for author, text, strikes in plan:
                message = await server.post_message(GROUP, user(1000 + author, f"U{author}"), text)
                sent.append((message["message_id"], author, strikes))
            await wait_until(lambda: rows.events() >= 150, within=240, what="the first events")
            await bot.kill()
            killed_at = rows.events()

            await bot.start()
            await wait_until(lambda: server.unconfirmed == 0, within=240, what="every update fetched")
            await wait_stable(rows.events, quiet=5, within=300)
        finally:
            await bot.stop_quietly()

    striking = [message_id for message_id, _, strikes in sent if strikes]
    per_message = rows.events_per_message()
    missing = [m for m in striking if per_message.get((str(GROUP), str(m)), 0) == 0]
    doubled = {key: count for key, count in per_message.items() if count > 1}
    assert 0 < killed_at < len(striking), "the kill should land in the middle of the load"
    assert not missing, f"{len(missing)} of {len(striking)} toxic messages were never moderated\n{bot.log()}"
    assert not doubled, f"{len(doubled)} messages have more than one event"
    assert len(per_message) == len(striking), "only the toxic messages make events"
    expected = collections.Counter(str(1000 + author) for _, author, strikes in sent if strikes)
    assert rows.strikes_per_author() == dict(expected)
