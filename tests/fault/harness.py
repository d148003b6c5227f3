"""The real ``python -m bot`` process under faults: start it, kill it, stop it, and count what the database holds.

Every figure the fault tests assert comes from rows in the bot's SQLite database (read-only, through the standard
library), never from log lines.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bot.config import REPO_ROOT

START_WITHIN = 240.0  # importing TensorFlow and loading the model on a busy 2-core machine


class BotProcess:
    """One ``python -m bot`` child: its environment, its log file, and the ways it can end."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self._env = dict(env)
        self._log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> BotProcess:
        with self._log_path.open("ab") as log:
            log.write(b"\n===== start =====\n")
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", cwd=REPO_ROOT, env=self._env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        return self

    def log(self, tail: int = 6000) -> str:
        return self._log_path.read_text(encoding="utf-8", errors="replace")[-tail:]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed but what the database already committed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def terminate(self, within: float) -> tuple[int, float]:
        """SIGTERM and wait: (exit code, seconds from the signal to the exit); killed if it outlives ``within``."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout=within)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"the bot did not exit within {within:g} s of SIGTERM:\n{self.log()}") from None
        return code, time.monotonic() - started

    async def stop_quietly(self) -> None:
        if self.running:
            await self.kill()


def bot_env(database: Path, models_yaml: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot child: only what the test sets, no token or bot setting from the outside."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "TELEGRAM_", "BOT_", "PYTEST"))}
    env.update(
        BOT_MODELS_FILE=str(models_yaml),
        BOT_DATABASE=str(database),
        TF_USE_LEGACY_KERAS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


class Rows:
    """Read-only queries on the bot's database while the bot may be writing it (WAL lets both go on)."""

    def __init__(self, database: Path) -> None:
        self.database = database

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not self.database.exists():
            return []
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10)
        try:
            return [tuple(row) for row in conn.execute(sql, params)]
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            raise
        finally:
            conn.close()

    def scalar(self, sql: str, params: tuple = ()) -> int:
        rows = self.query(sql, params)
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def events(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM events")

    def events_per_message(self) -> dict[tuple[str, str], int]:
        rows = self.query("SELECT chat_id, message_id, COUNT(*) FROM events GROUP BY chat_id, message_id")
        return {(chat, message): count for chat, message, count in rows}

    def strikes_per_author(self) -> dict[str, int]:
        rows = self.query("SELECT author_id, COUNT(*) FROM strikes WHERE cleared_at IS NULL GROUP BY author_id")
        return {author: count for author, count in rows}

    def inbox_pending(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM inbox WHERE done_at IS NULL")

    def inbox_done(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM inbox WHERE done_at IS NOT NULL")

    def actions_unsettled(self) -> int:
        """Events whose action was decided but has no final result yet."""
        return self.scalar("SELECT COUNT(*) FROM events WHERE action_state IN ('pending', 'retry')")


async def wait_until(predicate: Callable[[], bool], *, within: float, every: float = 0.25, what: str = "") -> None:
    """Poll ``predicate`` until it holds; AssertionError naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what or predicate}")
        await asyncio.sleep(every)


async def wait_stable(read: Callable[[], object], *, quiet: float, within: float) -> object:
    """Wait until ``read()`` has not changed for ``quiet`` seconds (bounded by ``within``); return its value."""
    deadline = time.monotonic() + within
    last, since = read(), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise AssertionError(f"still changing after {within:g} s: {last!r}")
        await asyncio.sleep(0.25)
        value = read()
        if value != last:
            last, since = value, time.monotonic()
    return last


FIGURES = REPO_ROOT / "bench" / "results" / "fault.jsonl"


def record_figure(name: str, **values: object) -> None:
    """Append a measured figure to bench/results/fault.jsonl (git-ignored): the suite is also the measurement."""
    import json

    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    with FIGURES.open("a", encoding="utf-8") as out:
        out.write(json.dumps({"figure": name, "at": time.time(), **values}) + "\n")
