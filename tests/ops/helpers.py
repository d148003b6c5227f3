"""Shared by the operations tests: the environment `python -m bot` gets; what a cleanly closed database looks like."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Variables of the outer environment that would change what the bot does: never inherited by a test's subprocess.
OWN_PREFIXES = ("DISCORD_", "TELEGRAM_", "BOT_", "LOG_", "PYTEST")


def bot_env(models_yaml: Path, database: Path, **extra: str) -> dict[str, str]:
    """The outer environment minus the bot's own variables, plus the tiny models, a database and ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(OWN_PREFIXES)}
    env.update(
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TF_USE_LEGACY_KERAS="1",
        BOT_MODELS_FILE=str(models_yaml),
        BOT_DATABASE=str(database),
    )
    env.update(extra)
    return env


def run_bot(env: dict[str, str], *args: str, stdin: str = "", timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m bot ARGS`` to completion, text in and out."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_closed_cleanly(database: Path) -> None:
    """The last connection closed properly: SQLite checkpointed and removed the WAL, and the file is consistent."""
    assert not Path(f"{database}-wal").exists(), "the write-ahead log is left over: the database was not closed"
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
