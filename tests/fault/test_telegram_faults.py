"""The real bot against Telegram under stress: SIGTERM with a backlog, a 20 s outage, storms of 429 and 500 answers."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from tests.fakes._telegram_payloads import DEFAULT_TOKEN
from tests.fakes.telegram_server import Failure, FakeTelegramServer
from tests.fault.conftest import Load
from tests.fault.harness import START_WITHIN, BotProcess, Rows, bot_env, record_figure, wait_until
from tests.fault.telegram_load import GROUP, check_exactly_once, post_load, settled
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.fault, pytest.mark.asyncio, pytest.mark.timeout(600, func_only=True)]

GRACE = 5.0  # BOT_STOP_GRACE for these runs (the default is 10 s)
ACTION_METHODS = frozenset({"sendMessage", "deleteMessage", "restrictChatMember", "setMessageReaction"})


def telegram_bot(server: FakeTelegramServer, tiny_models: TinyModels, tmp_path: Path) -> tuple[BotProcess, Rows]:
    rows = Rows(tmp_path / "bot.sqlite3")
    env = bot_env(
        rows.database,
        tiny_models.models_yaml,
        TELEGRAM_TOKEN=DEFAULT_TOKEN,
        TELEGRAM_API_BASE_URL=server.url,
        BOT_STOP_GRACE=str(GRACE),
    )
    return BotProcess(env, tmp_path / "bot.log"), rows


def failed_actions(rows: Rows) -> int:
    return rows.scalar("SELECT COUNT(*) FROM events WHERE action_ok IS NOT 1")


async def test_sigterm_with_a_backlog_of_5000_exits_0_within_the_grace_and_the_rest_is_handled_after_restart(
    tiny_models: TinyModels, load: Load, tmp_path: Path
) -> None:
    async with FakeTelegramServer() as server:
        server.add_chat(GROUP)
        bot, rows = telegram_bot(server, tiny_models, tmp_path)
        sent = await post_load(server, load, 5000)  # waiting before the bot starts: a backlog
        try:
            await bot.start()
            await wait_until(lambda: rows.events() >= 100, within=START_WITHIN, what="the first events")
            code, seconds = await bot.terminate(within=60)
            left = rows.inbox_pending() + server.unconfirmed
            assert code == 0, bot.log()
            assert seconds <= GRACE + 2, f"exit took {seconds:.1f} s, more than the grace {GRACE:g} s + 2"
            assert left > 0, "the backlog should outlast the grace"

            await bot.start()
            await settled(rows, server, within=300)
        finally:
            await bot.stop_quietly()
    check_exactly_once(rows, sent, bot.log())
    record_figure("telegram_sigterm_backlog", backlog=5000, grace=GRACE, exit_seconds=round(seconds, 2), left=left)


async def test_a_20_s_outage_loses_nothing_and_failed_actions_are_carried_out_afterwards(
    tiny_models: TinyModels, load: Load, tmp_path: Path
) -> None:
    async with FakeTelegramServer() as server:
        server.add_chat(GROUP)
        bot, rows = telegram_bot(server, tiny_models, tmp_path)
        try:
            await bot.start()
            await server.wait_for("getUpdates", answered=False, within=START_WITHIN)
            before = await post_load(server, load, 150)
            await wait_until(lambda: rows.events() >= 20, within=120, what="the first events")
            await server.go_down()
            during = await post_load(server, load, 50, start=150)  # posted while the bot cannot reach Telegram
            await asyncio.sleep(20)
            await server.come_back()
            await settled(rows, server, within=300)
        finally:
            await bot.stop_quietly()
    sent = type(before)(before.rows + during.rows)
    check_exactly_once(rows, sent, bot.log())
    assert failed_actions(rows) == 0, "every action that failed in the outage was carried out later"
    retried = rows.scalar("SELECT COUNT(*) FROM events WHERE action_attempts > 1")
    record_figure("telegram_outage_20s", messages=200, actions_retried_after_outage=retried, lost=0)


async def test_storms_of_429_and_500_answers_lose_nothing_and_every_action_lands(
    tiny_models: TinyModels, load: Load, tmp_path: Path
) -> None:
    rng = random.Random(15)

    def storm(method: str) -> Failure | None:
        roll = rng.random()
        if method in ACTION_METHODS | {"getUpdates", "getChatMember"}:
            if roll < 0.2:
                return Failure(429, "Too Many Requests: retry after 1", 1, 1)
            if roll < 0.4:
                return Failure(500, "Internal Server Error", None, 1)
        return None

    async with FakeTelegramServer() as server:
        server.add_chat(GROUP)
        bot, rows = telegram_bot(server, tiny_models, tmp_path)
        try:
            await bot.start()
            await server.wait_for("getUpdates", answered=False, within=START_WITHIN)
            server.chaos = storm
            sent = await post_load(server, load, 200)
            await settled(rows, server, within=300)
        finally:
            await bot.stop_quietly()
    check_exactly_once(rows, sent, bot.log())
    assert failed_actions(rows) == 0, "transient failures are retried until the action lands"
    storms = sum(1 for call in server.calls if call.status in (429, 500))
    record_figure("telegram_storm", messages=200, failures_answered=storms, lost=0)
