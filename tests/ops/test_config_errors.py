"""A configuration mistake stops `python -m bot` (and its health check) at once: exit 2, one clear line on stderr
naming the variable or the file and field, nothing on stdout, no traceback, and the database untouched."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.ops.helpers import bot_env, run_bot

GOOD_MODELS = "default: a\nmodels:\n  a: {task: multi_label, source: {path: a}, runtime: onnx}\n"
# name -> (environment changes, models.yaml text, what the one line must contain; {models} is the file's path)
CASES: dict[str, tuple[dict[str, str], str, tuple[str, ...]]] = {
    "batch below 1": (
        {"BOT_MAX_BATCH": "0"}, GOOD_MODELS, ("invalid setting BOT_MAX_BATCH", "greater than or equal to 1"),
    ),
    "batch not a number": (
        {"BOT_MAX_BATCH": "lots"}, GOOD_MODELS, ("invalid setting BOT_MAX_BATCH", "valid integer"),
    ),
    "unknown log level": ({"LOG_LEVEL": "loud"}, GOOD_MODELS, ("invalid setting LOG_LEVEL", "DEBUG, INFO")),
    "webhook port out of range": (
        {"TELEGRAM_WEBHOOK_PORT": "70000"}, GOOD_MODELS, ("invalid setting TELEGRAM_WEBHOOK_PORT", "65535"),
    ),
    "shard ids without a count": (
        {"DISCORD_SHARD_IDS": "0"}, GOOD_MODELS, ("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT",),
    ),
    "shard id beyond the count": (
        {"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0,2"}, GOOD_MODELS,
        ("DISCORD_SHARD_IDS 0,2: each must be below DISCORD_SHARD_COUNT 2",),
    ),
    "unsupported database": (
        {"BOT_DATABASE_URL": "mysql://bot:pw-not-shown@db/bot"}, GOOD_MODELS,
        ("invalid setting BOT_DATABASE_URL", "postgresql://user:password@host", "not mysql://..."),
    ),
    "malformed models.yaml": ({}, "default: a\nmodels: [a\n", ("{models}: invalid YAML", "line 2")),
    "unknown default model": (
        {}, GOOD_MODELS.replace("default: a", "default: nope"),
        ("{models}: field 'default'", "'nope'", "not under 'models'"),
    ),
    "unknown field of a model": (
        {}, GOOD_MODELS.replace("runtime: onnx", "runtime: onnx, threshold: 0.5"),
        ("{models}: model 'a': field 'threshold'",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("command", [(), ("health",)], ids=["run", "health"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_configuration_error_is_one_clear_line_and_exit_2(case: str, command: tuple[str, ...], tmp_path: Path):
    changes, models_text, expected = CASES[case]
    models = tmp_path / "models.yaml"
    models.write_text(models_text, encoding="utf-8")
    database = tmp_path / "bot.sqlite3"
    with sqlite3.connect(database) as conn:  # a database from an earlier run, with data in it
        conn.execute("CREATE TABLE kept (note TEXT)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    conn.close()
    before = database.read_bytes()

    result = run_bot(bot_env(models, database, **changes), *command, stdin="you are so stupid\n", timeout=120)

    assert result.returncode == 2, result.stderr
    assert "pw-not-shown" not in result.stderr  # a database URL's password is never shown
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for part in expected:
        assert part.format(models=models) in lines[0], lines[0]
    assert result.stdout == ""
    assert database.read_bytes() == before
