"""``python -m bot`` as users run it: Telegram served when TELEGRAM_TOKEN is set, stopped cleanly by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.fakes._telegram_payloads import DEFAULT_TOKEN, user
from tests.fakes.telegram_server import FakeTelegramServer
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(480, func_only=True)]

REPO = Path(__file__).resolve().parents[3]
GROUP = -100777


async def test_python_m_bot_serves_telegram_and_exits_0_on_sigterm(tiny_models: TinyModels, tmp_path: Path) -> None:
    async with FakeTelegramServer() as server:
        server.add_chat(GROUP)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("DISCORD_", "TELEGRAM_", "BOT_", "PYTEST"))
        }
        env.update(
            TELEGRAM_TOKEN=DEFAULT_TOKEN,
            TELEGRAM_API_BASE_URL=server.url,
            BOT_MODELS_FILE=str(tiny_models.models_yaml),
            BOT_DATABASE=str(tmp_path / "bot.sqlite3"),
            TF_USE_LEGACY_KERAS="1",
            HF_HUB_OFFLINE="1",
            LOG_LEVEL="DEBUG",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output = asyncio.create_task(process.stdout.read())  # type: ignore[union-attr]
        try:
            # bounds for a loaded CI machine: importing TensorFlow and loading the model dominate
            await server.wait_for("getUpdates", answered=False, within=240)
            command = await server.post_message(GROUP, user(5, "Eve"), "/classify you are so stupid")
            reply = await server.wait_for(
                "sendMessage", lambda p: p["reply_parameters"]["message_id"] == command["message_id"], within=120
            )
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it may have ended by itself: say why
                process.kill()
            await process.wait()
            pytest.fail("the bot did not answer in time:\n" + (await output).decode(errors="replace")[-5000:])
        process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            process.kill()
            raise
        log = (await output).decode(errors="replace")
        assert code == 0, log
        assert "<pre>" in reply.params["text"] and server.calls_to("setMyCommands")
        assert DEFAULT_TOKEN.split(":")[1] not in log, "the token must never be logged"
