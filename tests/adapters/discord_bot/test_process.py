"""End to end: ``python -m bot`` as a real process, configured only by the environment, against a fake Discord.

It logs in, syncs its commands, answers /classify, takes an admin's /moderation settings, deletes a message over the
threshold and stops with exit code 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.config import REPO_ROOT
from tests.adapters.discord_bot.harness import TOXIC_TEXT, embed_text, option, subcommand
from tests.fakes.discord_server import FakeDiscord
from tests.tiny_models import TinyModels

# loading TensorFlow and the model in a fresh process takes seconds (minutes on a saturated machine)
pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300, func_only=True)]

TOKEN = "process-test-token-not-to-be-logged"
START_TIMEOUT = 240.0
MESSAGE = r"/channels/\d+/messages/{id}"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


async def test_python_m_bot_serves_discord_from_the_environment_and_stops_on_sigterm(
    fake: FakeDiscord, tiny_models: TinyModels, tmp_path: Path
):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TELEGRAM_"))}
    env |= {
        "DISCORD_TOKEN": TOKEN,
        "DISCORD_API_BASE_URL": f"http://127.0.0.1:{fake.port}",  # the API version is appended
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "BOT_MODELS_FILE": str(tiny_models.models_yaml),
        "BOT_DATABASE": str(tmp_path / "bot.sqlite3"),
        "LOG_LEVEL": "INFO",
    }
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=REPO_ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        await fake.wait_identified(within=START_TIMEOUT)
        assert fake.commands.get("global"), "commands were not synced"
        asked = await fake.slash("classify", [option("text", TOXIC_TEXT)], user="member")
        table = embed_text(await fake.wait_reply(asked, within=START_TIMEOUT))  # the first inference warms up
        insult = float(re.search(r"insult\s+(\d\.\d{3})", table).group(1))
        for options, said in (
            ([subcommand("threshold", option("label", "insult"), option("value", insult / 2, 10))], "set to"),
            ([subcommand("action", option("action", "delete"))], "now get: delete"),
        ):
            change = await fake.slash("moderation", options, user="admin")
            assert said in embed_text(await fake.wait_reply(change))
        message = await fake.send_message(TOXIC_TEXT, author="member")
        deleted = await fake.wait_for_call("DELETE", MESSAGE.format(id=message["id"]))
        assert deleted.status == 204
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        output = log_path.read_text(errors="replace")
        print(output[-5000:], *(f"{c.method} {c.path} {c.status}" for c in fake.calls), sep="\n")  # on failure
    assert code == 0, output[-3000:]
    assert TOKEN not in output
    assert fake.find_calls("GET", r"/users/@me")
