"""Scale-out: moderated messages/s of bot processes on the fake Discord, SQLite vs PostgreSQL, one process vs two.

    nice -n 15 python -m bench.scale --messages 2000 --guilds 40 --repeat 2

Each variant starts real ``python -m bot`` processes (the bundled int8 ONNX model through the real classifier) against
the fake Discord of ``tests/fakes`` with ``--guilds`` guilds routed to 2 shards, waits until every shard is connected,
then posts the same messages (repeat offenders, about half of them insulting) as fast as the gateway takes them:

- ``sqlite-1``: one process running both shards on SQLite (the default set-up);
- ``postgres-1``: the same on PostgreSQL (a fresh database);
- ``postgres-2``: two processes, shard 0 and shard 1 of 2, on one fresh PostgreSQL database.

Throughput: messages / seconds from the first message sent to the last expected event logged (start-up excluded).
Correctness of every variant against ``sqlite-1``: one event per insulting message and none for the clean ones (lost,
duplicate), the same strikes and actions per (guild, author) (wrong strikes). Variants alternate ``--repeat`` times in
one run, so ratios compare runs side by side. Machine details and the load average go in the report: CPU time that
other jobs take (here the training job) lowers every figure and most of all the two-process one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy.engine import make_url  # noqa: E402 - the repo on sys.path first

from tests.fakes.discord_server import FakeDiscord  # noqa: E402
from tests.scale.bots import Logged, bot_env, bot_processes, logged, plan, send  # noqa: E402

VARIANTS = ("sqlite-1", "postgres-1", "postgres-2")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--guilds", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant, alternating (default 1)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument(
        "--postgres",
        default=os.environ.get("BOT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
        help="a server where this bench may create and drop databases (default: $BOT_TEST_POSTGRES_URL or "
        f"{DEFAULT_POSTGRES})",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    return parser.parse_args(argv)


async def run_variant(variant: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    planned = plan(args.messages, args.guilds)
    expected = sum(item.toxic for item in planned)
    if variant == "sqlite-1":
        target = str(folder / f"{uuid.uuid4().hex[:8]}.sqlite3")
        database, shard_envs = {"BOT_DATABASE": target}, [{}]
        name = None
    else:
        name = f"bench_scale_{uuid.uuid4().hex[:10]}"
        await execute(args.postgres, f'CREATE DATABASE "{name}"')
        target = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        database = {"BOT_DATABASE_URL": target}
        shard_envs = [{}] if variant == "postgres-1" else [
            {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": str(shard)} for shard in (0, 1)
        ]  # fmt: skip
    logs = folder / f"{variant}-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    try:
        async with FakeDiscord(guilds=args.guilds, shards=2, extra_members=5) as fake:
            envs = [bot_env(fake, database) | extra for extra in shard_envs]
            async with bot_processes(envs, logs):
                await fake.wait_shards(2, within=300)
                load_before = os.getloadavg()
                started = time.perf_counter()
                ids = await send(fake, planned)
                sent = time.perf_counter() - started
                await wait_until(target, expected, within=900)
                seconds = time.perf_counter() - started
                load_after = os.getloadavg()
            result = await logged(target, ids, fake)
    finally:
        if name is not None:
            await execute(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "variant": variant,
        "processes": len(shard_envs),
        "messages": len(planned),
        "expected_events": expected,
        "seconds": round(seconds, 2),
        "sending_seconds": round(sent, 2),
        "messages_per_second": round(len(planned) / seconds, 1),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "_logged": result,
    }


async def wait_until(target: str, count: int, *, within: float) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import create_async_engine

    from bot.storage.engine import database_url
    from bot.storage.tables import events

    engine = create_async_engine(database_url(target))
    deadline = time.perf_counter() + within
    try:
        while True:
            async with engine.connect() as conn:
                if (await conn.execute(select(func.count()).select_from(events))).scalar_one() >= count:
                    return
            if time.perf_counter() > deadline:
                raise TimeoutError(f"fewer than {count} events after {within:g} s")
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


def check(result: Logged, reference: Logged, toxic: set[int]) -> dict[str, int]:
    """Lost and duplicate events, and (guild, author) pairs whose strikes or actions differ from the reference."""
    seen = result.events_per_message
    return {
        "lost": sum(1 for index in toxic if seen[index] == 0),
        "duplicate": sum(count - 1 for index, count in seen.items() if count > 1),
        "unexpected": sum(count for index, count in seen.items() if index not in toxic),
        "wrong_strikes": sum(1 for key in set(result.strikes) | set(reference.strikes)
                             if result.strikes[key] != reference.strikes[key]),
        "wrong_actions": sum(1 for key in set(result.actions) | set(reference.actions)
                             if result.actions[key] != reference.actions[key]),
    }  # fmt: skip


async def execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def postgres_version(url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def machine() -> dict[str, Any]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    memory = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory.split(":", 1)[1].strip(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nice": os.nice(0),
        "load_average": os.getloadavg(),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    planned = plan(args.messages, args.guilds)
    toxic = {index for index, item in enumerate(planned) if item.toxic}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as temporary:
        for round_ in range(args.repeat):
            for variant in args.variants:
                run = await run_variant(variant, args, Path(temporary))
                run["round"] = round_
                runs.append(run)
                print(f"{variant} round {round_ + 1}: {run['messages_per_second']} msg/s", file=sys.stderr)
    reference = next((run["_logged"] for run in runs if run["variant"] == "sqlite-1"), runs[0]["_logged"])
    for run in runs:
        run["errors"] = check(run.pop("_logged"), reference, toxic)
    rates = {v: [r["messages_per_second"] for r in runs if r["variant"] == v] for v in args.variants}
    median = {v: round(statistics.median(values), 1) for v, values in rates.items() if values}
    ratios = {}
    if "postgres-1" in median and "postgres-2" in median:
        ratios["postgres-2 / postgres-1"] = round(median["postgres-2"] / median["postgres-1"], 2)
    if "postgres-1" in median and "sqlite-1" in median:
        ratios["postgres-1 / sqlite-1"] = round(median["postgres-1"] / median["sqlite-1"], 2)
    return {
        "machine": machine() | {"postgres": await postgres_version(args.postgres)},
        "messages": args.messages,
        "guilds": args.guilds,
        "toxic_messages": len(toxic),
        "runs": runs,
        "median_messages_per_second": median,
        "ratios": ratios,
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        "| variant | processes | msg/s (median) | runs | lost | duplicate | wrong strikes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for variant, rate in report["median_messages_per_second"].items():
        runs = [run for run in report["runs"] if run["variant"] == variant]
        errors = Counter()
        for run in runs:
            errors.update(run["errors"])
        lines.append(
            f"| {variant} | {runs[0]['processes']} | {rate} | {', '.join(str(r['messages_per_second']) for r in runs)} "
            f"| {errors['lost']} | {errors['duplicate'] + errors['unexpected']} | {errors['wrong_strikes']} |"
        )
    lines += [f"{name}: {value}x" for name, value in report["ratios"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    arguments = parse_args()
    result = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(table(result))
    print(f"machine: {json.dumps(result['machine'])}")
