"""Scale-out end to end: ``python -m bot`` processes, each running some Discord shards, on one PostgreSQL database.

2,000 messages over 40 guilds from repeat offenders go through the fake gateway, which routes each guild to its shard
(``(guild_id >> 22) % 2``). Two processes running shard 0 and shard 1 on PostgreSQL must log exactly what one process
running both shards on SQLite logs: one event per insulting message, none for clean ones, the same strikes and the
same escalations per author. The model is the bundled int8 ONNX one, through the real classifier.

The same two processes are also Telegram webhook workers behind one load balancer: an admin's /action change sent to
one worker applies to the next message the other worker handles, and a repeat offender's messages spread over both
workers are counted exactly (the first strikes delete, the later ones escalate to a timeout).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.engine import database_url
from bot.storage.tables import events, strikes
from tests.databases import postgres_database, require_postgres
from tests.fakes._telegram_payloads import BOT_ID, DEFAULT_TOKEN, user
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.telegram_server import FakeTelegramServer
from tests.scale.bots import TOXIC, bot_env, bot_processes, logged, plan, read_logs, send, wait_for_events
from tests.scale.webhooks import LoadBalancer, free_port

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300, func_only=True)]

GUILDS = 40
MESSAGES = 2000
START = 120.0  # a busy CI machine: imports and the model load
WORK = 150.0
GROUP = -100500
ADMIN, EARLY, OFFENDER = user(1, "Alice"), user(8, "Eve"), user(7, "Mallory")
OFFENSES = 12


async def run(
    tmp_path: Path,
    name: str,
    database: dict[str, str],
    target: str,
    process_envs: list[dict[str, str]],
    meanwhile: Callable[[], Awaitable[None]] | None = None,
):
    logs = tmp_path / name
    logs.mkdir()
    planned = plan(MESSAGES, GUILDS)
    async with FakeDiscord(guilds=GUILDS, shards=2, extra_members=5) as fake:
        envs = [bot_env(fake, database, **extra) for extra in process_envs]
        async with bot_processes(envs, logs):
            try:
                await fake.wait_shards(2, within=START)
                ids = await send(fake, planned)
                await wait_for_events(target, sum(item.toxic for item in planned), within=WORK)
                if meanwhile is not None:
                    await meanwhile()
            except (TimeoutError, AssertionError) as error:
                raise AssertionError(f"{error}\n{read_logs(logs)}") from error
        shards = Counter(fake.shards_identified())
        return planned, await logged(target, ids, fake), shards


async def test_two_shard_processes_on_postgresql_log_what_one_process_on_sqlite_logs(tmp_path: Path) -> None:
    await require_postgres()
    sqlite = str(tmp_path / "single.sqlite3")
    planned, single, single_shards = await run(tmp_path, "single", {"BOT_DATABASE": sqlite}, sqlite, [{}])
    assert single_shards == {(0, 2): 1, (1, 2): 1}  # automatic: the recommended 2 shards, both in the one process
    toxic = {index for index, item in enumerate(planned) if item.toxic}
    assert single.events_per_message == Counter(dict.fromkeys(toxic, 1))

    ports = [free_port(), free_port()]
    async with postgres_database() as pg, FakeTelegramServer() as telegram, LoadBalancer(ports) as balancer:
        telegram.add_chat(GROUP)
        telegram.set_member(GROUP, ADMIN["id"], "creator")
        telegram.set_member(GROUP, BOT_ID, "administrator")
        process_envs = [
            {
                "DISCORD_SHARD_COUNT": "2",
                "DISCORD_SHARD_IDS": str(shard),
                "TELEGRAM_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_API_BASE_URL": telegram.url,
                "TELEGRAM_WEBHOOK_URL": balancer.url,
                "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
                "TELEGRAM_WEBHOOK_PORT": str(ports[shard]),
            }
            for shard in (0, 1)
        ]

        async def webhook_workers() -> None:
            await telegram_workers_share_settings_and_strikes(telegram, balancer, pg.target)

        _, scaled, shards = await run(tmp_path, "scaled", pg.env, pg.target, process_envs, webhook_workers)
    assert shards == {(0, 2): 1, (1, 2): 1}  # each process identified its own shard, once
    # exactly one event per insulting message, none for the clean ones: nothing lost, nothing twice
    assert scaled.events_per_message == Counter(dict.fromkeys(toxic, 1))
    # the same strikes per author and guild, and the same escalations (warn, warn, then timeouts)
    assert scaled.strikes == single.strikes
    assert scaled.actions == single.actions
    assert max(single.strikes.values()) >= 5, "the plan should have repeat offenders past the strike limit"
    assert any(action == "timeout" for _, _, action in scaled.actions)


async def telegram_workers_share_settings_and_strikes(
    telegram: FakeTelegramServer, balancer: LoadBalancer, target: str
) -> None:
    """Two webhook workers on one database: a settings change through one applies in the other; strikes are exact."""
    loop = asyncio.get_running_loop()
    balancer.send_next_to(1)  # worker 1 moderates the group first, so it holds the group's settings (action: warn)
    before = await telegram.post_message(GROUP, EARLY, TOXIC[0])
    await telegram.wait_for("sendMessage", lambda p: _replies_to(p, before), within=60)
    balancer.send_next_to(0)  # an admin changes the action through worker 0
    command = await telegram.post_message(GROUP, ADMIN, "/action delete")
    answer = await telegram.wait_for("sendMessage", lambda p: _replies_to(p, command), within=60)
    assert "delete" in answer.params["text"]
    changed = loop.time()
    await asyncio.sleep(1.0)  # the promise: another process applies a change within a second
    balancer.send_next_to(1)
    after = await telegram.post_message(GROUP, EARLY, TOXIC[1])
    deleted = await telegram.wait_for("deleteMessage", lambda p: int(p["message_id"]) == after["message_id"], within=60)
    assert deleted.status == 200 and loop.time() - changed < 60

    offenses = [await telegram.post_message(GROUP, OFFENDER, TOXIC[n % len(TOXIC)]) for n in range(OFFENSES)]
    sent = {str(message["message_id"]) for message in offenses}
    workers = {worker for _, worker in balancer.routed[-OFFENSES:]}
    assert workers == {0, 1}, "the offender's messages should reach both workers"
    engine = create_async_engine(database_url(target))
    try:
        async with asyncio.timeout(90):
            while True:
                async with engine.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(events.c.message_id, events.c.action).where(
                                events.c.chat_id == str(GROUP), events.c.author_id == str(OFFENDER["id"])
                            )
                        )
                    ).all()
                    strike_count = (
                        await conn.execute(select(func.count()).where(strikes.c.author_id == str(OFFENDER["id"])))
                    ).scalar_one()
                if len(rows) >= OFFENSES:
                    break
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    assert sorted(row[0] for row in rows) == sorted(sent)  # one event each
    # strike 1 and 2 delete, strike 3 and later time out: each worker counted the other's strikes
    assert Counter(row[1] for row in rows) == {"delete": 2, "timeout": OFFENSES - 2}
    assert strike_count == OFFENSES


def _replies_to(params: dict, message: dict) -> bool:
    return (params.get("reply_parameters") or {}).get("message_id") == message["message_id"]
