"""SIGTERM (what `docker stop` sends) stops `python -m bot` gracefully: exit 0, every answered message stored, and
the database closed properly (SQLite checkpointed its write-ahead log and removed it)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from tests.ops.helpers import REPO, assert_closed_cleanly, bot_env
from tests.tiny_models import TinyModels


def test_sigterm_stops_the_console_with_exit_0_and_closes_the_database(tiny_models: TinyModels, tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],  # no token: the console chat, as on a fresh machine
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=bot_env(tiny_models.models_yaml, database),
    )
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    drain.start()
    try:
        process.stdin.write("/as member\nyou are so stupid\nhad a wonderful weekend at the park\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]  # and kept open: the bot waits for more input
        out: list[str] = []
        while not out or not out[-1].startswith("none: "):  # the answer to the clean message, the last one
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(stderr)
            out.append(line)
        assert any(line.startswith("warn: ") and "[event #1]" in line for line in out), out
        assert database.exists() and Path(f"{database}-wal").exists()  # open, in WAL mode
        assert process.poll() is None

        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        drain.join(timeout=10)
    log = "".join(stderr)
    assert code == 0, log
    assert "Traceback" not in log
    assert_closed_cleanly(database)
    with sqlite3.connect(database) as conn:
        logged = conn.execute("SELECT action FROM events WHERE chat_id = 'local'").fetchall()
        strikes = conn.execute("SELECT COUNT(*) FROM strikes").fetchone()[0]
    assert (logged, strikes) == ([("warn",)], 1)  # the warning and its strike were committed before the exit
