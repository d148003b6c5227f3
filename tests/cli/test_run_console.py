"""`python -m bot console` and `python -m bot` (no token) as a user runs them: a subprocess, a pipe, the tiny models."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from bot.core.labels import TOXICITY_LABELS

DECISION = re.compile(r"^(none|flag|delete|warn|timeout): .+")
TOKENS = ("DISCORD_TOKEN", "TELEGRAM_TOKEN")
# Building the tiny models (session fixture) and importing TensorFlow take minutes on a busy 2-core machine.
SLOW = pytest.mark.timeout(1200)


def bot_env(models_yaml: Path, database: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in TOKENS}
    return environment | {
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "BOT_MODELS_FILE": str(models_yaml),
        "BOT_DATABASE": str(database),
    }


@SLOW
def test_the_console_chat_runs_end_to_end_through_a_pipe(tiny_models, tmp_path: Path) -> None:
    database = tmp_path / "new-folder" / "bot.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "console"],
        input="hello\nyou are so stupid\n/classify I will find and kill you\n/stats\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=bot_env(tiny_models.models_yaml, database),
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = result.stdout.splitlines()
    echoed = [line for line in out if line.startswith("> ")]
    assert echoed == ["> hello", "> you are so stupid", "> /classify I will find and kill you", "> /stats"]

    # each message is answered with a decision; the local user is the admin, so nothing is acted on
    for message in ("> hello", "> you are so stupid"):
        answer = out[out.index(message) + 1]
        assert DECISION.match(answer), answer
        assert answer.startswith("none: ")

    # /classify prints the six-label table of the default model
    table = out[out.index("> /classify I will find and kill you") + 1 : out.index("> /stats")]
    assert table[0] == "model: tiny-toxic"
    assert [row.split()[0] for row in table[2:8]] == list(TOXICITY_LABELS)
    assert all(0.0 <= float(row.split()[1]) <= 1.0 for row in table[2:8])

    # /stats counts the events the answers named, and the database holds exactly those
    logged = [int(n) for n in re.findall(r"\[event #(\d+)\]", result.stdout)]
    stats = out[out.index("> /stats") + 1 :]
    assert stats[0] == "Moderation statistics" and re.fullmatch(r"model: +tiny-toxic", stats[1])
    assert re.fullmatch(rf"events logged: +{len(logged)}", stats[2])
    with sqlite3.connect(database) as conn:
        assert [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")] == logged
        assert conn.execute("SELECT COUNT(*) FROM strikes").fetchone()[0] == 0  # admins get no strikes


@SLOW
def test_python_m_bot_without_tokens_is_the_console_and_stops_on_sigterm(tiny_models, tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=bot_env(tiny_models.models_yaml, database),
    )
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True)  # never let stderr fill up
    drain.start()
    try:
        process.stdin.write("/as member\nyou are so stupid\n")
        process.stdin.flush()  # stdin stays open: the bot waits for more
        lines = [process.stdout.readline().rstrip("\n") for _ in range(4)]
        assert lines[:3] == ["> /as member", "you are now the local member (local-member)", "> you are so stupid"]
        assert DECISION.match(lines[3]), lines
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0
    finally:
        process.kill()
        process.wait()
        drain.join(timeout=10)
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    assert "Traceback" not in "".join(stderr)
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def run_bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input="hello\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=600,
        check=False,
    )


def test_a_missing_models_file_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    result = run_bot(bot_env(tmp_path / "nowhere.yaml", tmp_path / "bot.sqlite3"), "console")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere.yaml'}: cannot read the file (No such file or directory)"
    ]
    assert result.stdout == ""


@SLOW
def test_a_database_that_cannot_be_created_is_one_error_line_and_exit_2(tiny_models, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_bot(bot_env(tiny_models.models_yaml, blocker / "bot.sqlite3"), "run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: cannot create the folder of the database")
    assert "Traceback" not in result.stderr


def test_an_unavailable_default_model_is_exit_3(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(
        "default: gone\nmodels:\n  gone: {task: multi_label, source: {path: missing-folder}, runtime: tensorflow}\n"
    )
    result = run_bot(bot_env(models, tmp_path / "bot.sqlite3"), "console")
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: model 'gone' is unavailable: ")
    assert "Traceback" not in result.stderr
