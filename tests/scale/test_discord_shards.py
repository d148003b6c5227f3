"""Scale-out end to end: ``python -m bot`` processes, each running some Discord shards, on one PostgreSQL database.

2,000 messages over 40 guilds from repeat offenders go through the fake gateway, which routes each guild to its shard
(``(guild_id >> 22) % 2``). Two processes running shard 0 and shard 1 on PostgreSQL must log exactly what one process
running both shards on SQLite logs: one event per insulting message, none for clean ones, the same strikes and the
same escalations per author. The model is the bundled int8 ONNX one, through the real classifier.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.databases import postgres_database, require_postgres
from tests.fakes.discord_server import FakeDiscord
from tests.scale.bots import bot_env, bot_processes, logged, plan, read_logs, send, wait_for_events

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300, func_only=True)]

GUILDS = 40
MESSAGES = 2000
START = 120.0  # a busy CI machine: imports and the model load
WORK = 150.0


async def run(tmp_path: Path, name: str, database: dict[str, str], target: str, shard_envs: list[dict[str, str]]):
    logs = tmp_path / name
    logs.mkdir()
    planned = plan(MESSAGES, GUILDS)
    async with FakeDiscord(guilds=GUILDS, shards=2, extra_members=5) as fake:
        envs = [bot_env(fake, database, **extra) for extra in shard_envs]
        async with bot_processes(envs, logs):
            try:
                await fake.wait_shards(2, within=START)
                ids = await send(fake, planned)
                await wait_for_events(target, sum(item.toxic for item in planned), within=WORK)
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

    async with postgres_database() as pg:
        shard_envs = [
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0"},
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "1"},
        ]
        _, scaled, shards = await run(tmp_path, "scaled", pg.env, pg.target, shard_envs)
    assert shards == {(0, 2): 1, (1, 2): 1}  # each process identified its own shard, once
    # exactly one event per insulting message, none for the clean ones: nothing lost, nothing twice
    assert scaled.events_per_message == Counter(dict.fromkeys(toxic, 1))
    # the same strikes per author and guild, and the same escalations (warn, warn, then timeouts)
    assert scaled.strikes == single.strikes
    assert scaled.actions == single.actions
    repeat = max(single.strikes.values())
    assert repeat >= 5, "the plan should have repeat offenders past the strike limit"
    assert any(action == "timeout" for _, _, action in scaled.actions)
