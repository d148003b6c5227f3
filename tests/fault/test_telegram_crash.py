"""SIGKILL in the middle of a Telegram load, then a restart: every message moderated exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes._telegram_payloads import DEFAULT_TOKEN
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fault.conftest import Load
from tests.fault.harness import START_WITHIN, BotProcess, Rows, bot_env, record_figure, wait_until
from tests.fault.telegram_load import GROUP, check_exactly_once, post_load, settled
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.fault, pytest.mark.asyncio, pytest.mark.timeout(600, func_only=True)]


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
            sent = await post_load(server, load, 2000)
            await wait_until(lambda: rows.events() >= 150, within=240, what="the first events")
            await bot.kill()
            at_kill = rows.events()
            unsettled_at_kill = rows.actions_unsettled()

            await bot.start()
            await settled(rows, server, within=300)
        finally:
            await bot.stop_quietly()
    assert 0 < at_kill < len(sent.striking), "the kill should land in the middle of the load"
    check_exactly_once(rows, sent, bot.log())
    record_figure(
        "telegram_sigkill",
        messages=2000,
        events_at_kill=at_kill,
        actions_in_flight_at_kill=unsettled_at_kill,
        lost=0,
        duplicates=0,
    )
