"""Tokens never reach the log: `python -m bot` at LOG_LEVEL=DEBUG with both tokens and a webhook secret, against fake
Discord and Telegram servers (which prove the secrets were really used) and against endpoints nobody listens on."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.fakes._telegram_payloads import user
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.telegram_server import FakeTelegramServer
from tests.ops.helpers import REPO, assert_closed_cleanly, bot_env, free_port
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(420)]

DISCORD_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.Gd1sc0.discord-SECRET-7f3a9c2e41b8"
TELEGRAM_TOKEN = "4242:AAF-telegram-SECRET-5d8e2b7c19a4"
WEBHOOK_SECRET = "webhook-SECRET_91c4e7a2b6d3"
FORBIDDEN = ("discord-SECRET", "telegram-SECRET", "webhook-SECRET", TELEGRAM_TOKEN.split(":")[1])
GROUP = -100555


async def start_bot(env: dict[str, str]) -> tuple[asyncio.subprocess.Process, asyncio.Task[bytes]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=REPO, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return process, asyncio.create_task(process.stdout.read())  # type: ignore[union-attr]


async def post_update(port: int, update: dict, *, within: float = 60) -> int:
    """Deliver an update to the bot's webhook as Telegram would; PTB listens only after setWebhook, so retry a while."""
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/telegram-hook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
                ) as answer:
                    return answer.status
            except aiohttp.ClientConnectorError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def stop_bot(process: asyncio.subprocess.Process, output: asyncio.Task[bytes]) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(process.wait(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return code, (await output).decode(errors="replace")


async def test_no_secret_is_logged_while_serving_both_platforms_at_debug(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    database = tmp_path / "bot.sqlite3"
    hook_port = free_port()
    async with FakeDiscord() as discord, FakeTelegramServer(token=TELEGRAM_TOKEN) as telegram:
        telegram.add_chat(GROUP)
        env = bot_env(
            tiny_models.models_yaml, database,
            LOG_LEVEL="DEBUG",
            DISCORD_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=discord.api_base, DISCORD_GATEWAY_URL=discord.gateway_url,
            TELEGRAM_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=telegram.url,
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{hook_port}/telegram-hook", TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
            TELEGRAM_WEBHOOK_PORT=str(hook_port), TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )  # fmt: skip
        process, output = await start_bot(env)
        try:
            # Telegram: getMe with the token in the URL, setWebhook carrying the secret, one update through the hook
            webhook = await telegram.wait_for("setWebhook", within=240)
            assert webhook.params["secret_token"] == WEBHOOK_SECRET
            command = await telegram.post_message(GROUP, user(5, "Eve"), "/classify you are so stupid", push=False)
            status = await post_update(hook_port, {"update_id": 1, "message": command})
            assert status == 200
            reply = await telegram.wait_for(
                "sendMessage", lambda p: p["reply_parameters"]["message_id"] == command["message_id"], within=60
            )
            assert "<pre>" in reply.params["text"]

            # Discord: logged in and identified with the token, then one message moderated
            await discord.wait_identified(within=60)
            assert discord.identifies[0]["token"] == DISCORD_TOKEN
            calls = len(discord.calls)
            await discord.send_message("you are so stupid")
            await discord.wait_for(lambda: any(c.method != "GET" for c in discord.calls[calls:]), within=60)
        finally:
            code, log = await stop_bot(process, output)

    assert code == 0, log
    for secret in FORBIDDEN:
        assert secret not in log, f"{secret} leaked into the log"
    # the libraries did log where the secrets were: redacted, not silent
    assert "<TELEGRAM_TOKEN>" in log and "<TELEGRAM_WEBHOOK_SECRET>" in log
    assert "DEBUG discord." in log
    assert_closed_cleanly(database)


async def test_no_secret_is_logged_when_the_platforms_are_unreachable(tiny_models: TinyModels, tmp_path: Path) -> None:
    nobody = f"127.0.0.1:{free_port()}"  # a port nothing listens on: every connection is refused
    env = bot_env(
        tiny_models.models_yaml, tmp_path / "bot.sqlite3",
        LOG_LEVEL="DEBUG",
        DISCORD_TOKEN=DISCORD_TOKEN, DISCORD_API_BASE_URL=f"http://{nobody}", DISCORD_GATEWAY_URL=f"ws://{nobody}",
        TELEGRAM_TOKEN=TELEGRAM_TOKEN, TELEGRAM_API_BASE_URL=f"http://{nobody}",
    )  # fmt: skip
    process, output = await start_bot(env)
    code, log = await asyncio.wait_for(stop_bot_when_it_gives_up(process, output), timeout=300)

    assert "cannot reach the Bot API" in log  # the failures were logged ...
    for secret in FORBIDDEN:
        assert secret not in log, f"{secret} leaked into the log"  # ... without the tokens
    assert "<TELEGRAM_TOKEN>" in log
    assert code in (0, 1)  # it stopped by itself (an adapter failed: 1) or on SIGTERM (0), never by a crash


async def stop_bot_when_it_gives_up(
    process: asyncio.subprocess.Process, output: asyncio.Task[bytes]
) -> tuple[int, str]:
    """Let the bot try to connect for a while (Discord gives up, Telegram retries), then SIGTERM it if it still runs."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), timeout=90)
    return await stop_bot(process, output)
