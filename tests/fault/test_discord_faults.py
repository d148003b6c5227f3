"""The real bot against Discord faults: messages posted while it was down are caught up (bounded), and a Discord
that cannot be reached at start never takes the Telegram side of the same process down."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from tests.fakes._telegram_payloads import DEFAULT_TOKEN, user
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fault.conftest import Load
from tests.fault.harness import START_WITHIN, BotProcess, Rows, bot_env, record_figure, wait_stable, wait_until
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.fault, pytest.mark.asyncio, pytest.mark.timeout(600, func_only=True)]

TOKEN = "fault-test-discord-token"
CATCHUP_LIMIT = 25


async def test_messages_posted_while_the_bot_was_down_are_moderated_after_restart_up_to_the_bound(
    tiny_models: TinyModels, load: Load, tmp_path: Path
) -> None:
    rows = Rows(tmp_path / "bot.sqlite3")
    async with FakeDiscord() as fake:
        env = bot_env(
            rows.database,
            tiny_models.models_yaml,
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_BASE_URL=f"http://127.0.0.1:{fake.port}",
            DISCORD_GATEWAY_URL=fake.gateway_url,
            BOT_DISCORD_CATCHUP_MESSAGES=str(CATCHUP_LIMIT),
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            await bot.start()
            await fake.wait_identified(within=START_WITHIN)
            live = [await fake.send_message(text) for _, text, _ in load.messages(10, 1)]
            live_striking = [m["id"] for m, (_, _, strikes) in zip(live, load.messages(10, 1), strict=True) if strikes]
            await wait_until(lambda: rows.events() >= len(live_striking), within=180, what="the live messages")
            await bot.kill()
            last_live = max(int(m["id"]) for m in live)

            plan = load.messages(CATCHUP_LIMIT + 6, 1, start=10)
            offline = [await fake.send_message(text, dispatch=False) for _, text, _ in plan]
            striking = [m["id"] for m, (_, _, strikes) in zip(offline, plan, strict=True) if strikes]
            # the bound counts every message of the channel after the last one handled, the bot's own replies too
            channel = offline[0]["channel_id"]
            after = [m for m in fake.guild.messages.values() if m["channel_id"] == channel and int(m["id"]) > last_live]
            within_bound = {m["id"] for m in sorted(after, key=lambda m: int(m["id"]))[:CATCHUP_LIMIT]}

            recorded = rows.scalar("SELECT COUNT(*) FROM inbox")
            await bot.start()
            await wait_until(lambda: len(fake.identifies) >= 2, within=START_WITHIN, what="the second identify")
            await wait_until(lambda: rows.scalar("SELECT COUNT(*) FROM inbox") > recorded, within=120, what="catch-up")
            await wait_until(lambda: rows.inbox_pending() == 0, within=180, what="the caught-up messages")
            await wait_stable(rows.events, quiet=3, within=180)
        finally:
            await bot.stop_quietly()
    per_message = {message: count for (_, message), count in rows.events_per_message().items()}
    assert all(per_message.get(m) == 1 for m in live_striking), "live messages: one event each"
    caught = [m for m in striking if m in within_bound]
    assert all(per_message.get(m) == 1 for m in caught), f"missed while down, not caught up:\n{bot.log()}"
    assert not [m for m in striking if m not in within_bound and m in per_message], "the bound was not kept"
    assert max(per_message.values()) == 1
    record_figure("discord_catch_up", posted_while_down=len(offline), bound=CATCHUP_LIMIT, caught_up=len(caught))


async def test_discord_unreachable_at_start_leaves_telegram_serving(tiny_models: TinyModels, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: Discord cannot be reached
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    rows = Rows(tmp_path / "bot.sqlite3")
    async with FakeTelegramServer() as server:
        server.add_chat(-100777)
        env = bot_env(
            rows.database,
            tiny_models.models_yaml,
            TELEGRAM_TOKEN=DEFAULT_TOKEN,
            TELEGRAM_API_BASE_URL=server.url,
            DISCORD_TOKEN=TOKEN,
            DISCORD_API_BASE_URL=f"http://127.0.0.1:{closed_port}",
            DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{closed_port}/gateway",
        )
        bot = BotProcess(env, tmp_path / "bot.log")
        try:
            await bot.start()
            await server.wait_for("getUpdates", answered=False, within=START_WITHIN)
            await asyncio.sleep(5)  # several failed attempts to reach Discord
            command = await server.post_message(-100777, user(5, "Eve"), "/classify hello there")
            await server.wait_for(
                "sendMessage", lambda p: p["reply_parameters"]["message_id"] == command["message_id"], within=120
            )
            assert bot.running, f"the process ended:\n{bot.log()}"
            code, _ = await bot.terminate(within=60)
        finally:
            await bot.stop_quietly()
    assert code == 0, bot.log()
    assert "cannot reach Discord" in bot.log(tail=10**6)
