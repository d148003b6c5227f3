"""Helpers of the scale-out tests and bench: bot processes on the fake Discord, the message plan, what got logged."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.config import REPO_ROOT
from bot.storage.engine import database_url
from bot.storage.tables import events, strikes
from tests.fakes.discord_server import FakeDiscord

TOKEN = "scale-test-token-not-to-be-logged"
# clearly insulting (each acts at acting_models_file's insult threshold) and clearly clean (every label far below it)
TOXIC = (
    "you are a stupid idiot",
    "shut up you worthless moron",
    "you are pathetic and dumb, loser",
    "what an idiot you are, stupid clown",
    "you ugly stupid fool",
    "go away you brainless idiot",
)
CLEAN = (
    "had a wonderful weekend at the park",
    "see you at the meeting tomorrow",
    "thanks for the help with the patch",
    "the weather is lovely today",
    "I think the new release looks good",
    "who wants to play tonight?",
)
AUTHORS = ("user-1", "user-2", "user-3", "user-4", "user-5")


@dataclass(frozen=True)
class Planned:
    guild: int  # index into FakeDiscord.guilds
    author: str  # a member name of the fake guild
    text: str

    @property
    def toxic(self) -> bool:
        return self.text in TOXIC


def plan(messages: int, guilds: int, *, seed: int = 16) -> list[Planned]:
    """``messages`` over ``guilds``; user-1 and user-2 are repeat offenders, the others mostly polite."""
    rng = random.Random(seed)
    toxic_share = {"user-1": 0.9, "user-2": 0.7, "user-3": 0.3, "user-4": 0.15, "user-5": 0.05}
    out = []
    for n in range(messages):
        author = rng.choice(AUTHORS)
        text = rng.choice(TOXIC if rng.random() < toxic_share[author] else CLEAN)
        out.append(Planned(n % guilds, author, text))
    return out


def acting_models_file() -> Path:
    """The bundled model with insult acting from 0.5: these tests are about processes and storage, not about where
    the shipped model draws its (deliberately strict) act line, so every TOXIC message must act."""
    path = Path(tempfile.gettempdir()) / f"scale-models-{os.getpid()}.yaml"
    if not path.exists():
        path.write_text(
            "default: toxic-minilm\nmodels:\n  toxic-minilm:\n    display_name: Toxicity - MiniLM (bundled)\n"
            f"    task: multi_label\n    source: {{path: {REPO_ROOT / 'models' / 'toxic-minilm'}}}\n"
            "    runtime: onnx\n    max_length: 128\n    thresholds: {insult: 0.5}\n",
            encoding="utf-8",
        )
    return path


def bot_env(fake: FakeDiscord, database: Mapping[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TELEGRAM_", "BOT_", "PYTEST"))}
    env |= {
        "BOT_MODELS_FILE": str(acting_models_file()),
        "DISCORD_TOKEN": TOKEN,
        "DISCORD_API_BASE_URL": f"http://127.0.0.1:{fake.port}",
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "WARNING",
        **database,
        **extra,
    }
    return env


@asynccontextmanager
async def bot_processes(envs: list[dict[str, str]], logs: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """``python -m bot`` once per environment; SIGTERM on the way out (each must exit 0)."""
    processes = []
    files = []
    try:
        for index, env in enumerate(envs):
            log = (logs / f"bot-{index}.log").open("wb")
            files.append(log)
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", cwd=REPO_ROOT, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
                )
            )
        yield processes
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(process.wait(), 60) for process in processes]
        assert codes == [0] * len(processes), read_logs(logs)
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for log in files:
            log.close()


def read_logs(logs: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}" for path in sorted(logs.glob("*.log"))
    )


async def send(fake: FakeDiscord, planned: list[Planned], *, concurrency: int = 8) -> dict[str, int]:
    """Post the plan through the fake gateway; returns message id -> index in the plan."""
    ids: dict[str, int] = {}
    queue = list(enumerate(planned))

    async def sender(part: list[tuple[int, Planned]]) -> None:
        for index, item in part:
            message = await fake.send_message(item.text, author=item.author, guild=fake.guilds[item.guild])
            ids[message["id"]] = index

    await asyncio.gather(*(sender(queue[k::concurrency]) for k in range(concurrency)))
    return ids


@dataclass(frozen=True)
class Logged:
    """What the bots logged: events per plan index, actions, strikes per (guild, author)."""

    events_per_message: Counter[int]
    actions: Counter[tuple[str, str, str]]  # (chat, author, action) -> events
    strikes: Counter[tuple[str, str]]  # (chat, author) -> strikes


async def logged(target: str, ids: Mapping[str, int], fake: FakeDiscord) -> Logged:
    engine = create_async_engine(database_url(target))
    users = {member["id"]: name for name, member in fake.guild.users.items()}
    guilds = {guild.id: index for index, guild in enumerate(fake.guilds)}
    try:
        async with engine.connect() as conn:
            e = events.c
            query = select(e.message_id, e.chat_id, e.author_id, e.action).where(e.platform == "discord")
            rows = (await conn.execute(query)).all()
            per_author = (
                select(strikes.c.chat_id, strikes.c.author_id, func.count())
                .where(strikes.c.platform == "discord")
                .group_by(strikes.c.chat_id, strikes.c.author_id)
            )
            counted = (await conn.execute(per_author)).all()
    finally:
        await engine.dispose()
    return Logged(
        Counter(ids.get(row[0], -1) for row in rows),
        Counter((f"guild-{guilds[row[1]]}", users[row[2]], row[3]) for row in rows),
        Counter({(f"guild-{guilds[row[0]]}", users[row[1]]): row[2] for row in counted}),
    )


async def wait_for_events(target: str, count: int, *, within: float) -> None:
    """Until ``count`` events are logged (then a moment more, so that duplicates would show too)."""
    engine = create_async_engine(database_url(target))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        while True:
            async with engine.connect() as conn:
                seen = (await conn.execute(select(func.count()).select_from(events))).scalar_one()
            if seen >= count:
                break
            if loop.time() > deadline:
                raise TimeoutError(f"{seen} of {count} events logged after {within:g} s")
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.5)
    finally:
        await engine.dispose()
