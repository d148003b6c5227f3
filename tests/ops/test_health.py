"""`python -m bot health`: exit 0 and one line when the database is writable and the default model loads, else one
line naming what is wrong and a non-zero exit (1 database, 3 model)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.cli import main
from tests.ops.helpers import bot_env, run_bot
from tests.tiny_models import TinyModels


@pytest.fixture
def missing_model_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text("default: gone\nmodels:\n  gone: {task: multi_label, source: {path: nowhere}, runtime: onnx}\n")
    return path


def health(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, models_yaml: Path, database: Path, *args: str
) -> tuple[int, list[str], list[str]]:
    """``main(["health", *args])`` in this process: (exit code, stdout lines, stderr lines)."""
    for key, value in bot_env(models_yaml, database).items():
        monkeypatch.setenv(key, value)
    code = main(["health", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_python_m_bot_health_prints_one_line_and_exits_0_when_healthy(tiny_models: TinyModels, tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    result = run_bot(bot_env(tiny_models.models_yaml, database), "health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"healthy: database {database} writable; model tiny-toxic loaded (tensorflow, 6 labels)"
    ]
    assert result.stderr == ""
    with sqlite3.connect(database) as conn:  # created and migrated like the bot would
        assert conn.execute("PRAGMA user_version").fetchone()[0] > 0


def test_a_database_whose_folder_cannot_be_made_is_exit_1_with_one_line(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, err = health(monkeypatch, capsys, missing_model_yaml, blocker / "bot.sqlite3", "--no-model")
    assert code == 1
    assert out == []
    assert len(err) == 1, err
    assert err[0].startswith("error: unhealthy: database: cannot create the folder of the database")


def test_a_file_that_is_not_a_database_is_exit_1_and_left_untouched(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    database = tmp_path / "bot.sqlite3"
    database.write_bytes(b"precious notes, not SQLite " * 100)
    code, _, err = health(monkeypatch, capsys, missing_model_yaml, database, "--no-model")
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith("error: unhealthy: database: ") and "not a usable SQLite database" in err[0]
    assert database.read_bytes() == b"precious notes, not SQLite " * 100


def test_a_default_model_that_cannot_load_is_exit_3_naming_it(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    code, out, err = health(monkeypatch, capsys, missing_model_yaml, tmp_path / "bot.sqlite3")
    assert code == 3
    assert out == []
    assert len(err) == 1, err
    assert err[0].startswith("error: unhealthy: model 'gone' is unavailable: ")
    assert "database" not in err[0]  # the database was fine


def test_both_failures_are_named_on_the_one_line(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "a-file").write_text("")
    code, _, err = health(monkeypatch, capsys, missing_model_yaml, tmp_path / "a-file" / "bot.sqlite3")
    assert code == 1  # the first failed check decides
    assert len(err) == 1, err
    assert "database: cannot create the folder" in err[0] and "model 'gone' is unavailable" in err[0]


def test_no_model_checks_the_database_only(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    database = tmp_path / "bot.sqlite3"
    code, out, err = health(monkeypatch, capsys, missing_model_yaml, database, "--no-model")
    assert (code, out, err) == (0, [f"healthy: database {database} writable"], [])


def test_a_database_held_open_by_the_running_bot_is_healthy(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    database = tmp_path / "bot.sqlite3"
    assert health(monkeypatch, capsys, missing_model_yaml, database, "--no-model")[0] == 0
    bot = sqlite3.connect(database)  # the bot's connection, in WAL mode, reading meanwhile
    try:
        bot.execute("BEGIN")
        bot.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        code, out, _ = health(monkeypatch, capsys, missing_model_yaml, database, "--no-model")
        assert code == 0, out
    finally:
        bot.close()


def test_a_write_lock_that_is_never_released_is_unhealthy(
    missing_model_yaml: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    database = tmp_path / "bot.sqlite3"
    assert health(monkeypatch, capsys, missing_model_yaml, database, "--no-model")[0] == 0
    stuck = sqlite3.connect(database, isolation_level=None)
    try:
        stuck.execute("BEGIN EXCLUSIVE")  # a process that hangs holding the write lock
        code, _, err = health(monkeypatch, capsys, missing_model_yaml, database, "--no-model", "--lock-timeout", "0.5")
    finally:
        stuck.close()
    assert code == 1
    assert len(err) == 1, err
    assert "database" in err[0] and "locked" in err[0]
