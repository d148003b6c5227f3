"""`python -m bot export-feedback OUT.csv`: reviewed events as Jigsaw rows, only where the text was stored."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.storage import Storage
from tests.storage.helpers import new_event

JIGSAW_COLUMNS = ["id", "comment_text", "toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]


async def fill(path: Path) -> dict[str, int]:
    async with await Storage.open(path) as storage:
        ids = {
            "confirmed": await storage.record_event(
                new_event(text="you are a stupid idiot, really", store_text=True, flagged=("insult", "severe_toxic"))
            ),
            "not toxic": await storage.record_event(new_event(text="damn, that was close", store_text=True)),
            "excerpt only": await storage.record_event(new_event(text="x" * 100, store_text=False)),
            "unreviewed": await storage.record_event(new_event(text="never reviewed", store_text=True)),
            "quoted": await storage.record_event(
                new_event(text='line one\nline "two", with comma', store_text=True, flagged=("toxic", "obscene"))
            ),
        }
        await storage.record_feedback(ids["confirmed"], "admin", True, now=1.0)
        await storage.record_feedback(ids["not toxic"], "admin", False, now=1.0)
        await storage.record_feedback(ids["excerpt only"], "admin", True, now=1.0)
        await storage.record_feedback(ids["quoted"], "admin", True, now=1.0)
    return ids


def test_export_writes_reviewed_events_in_jigsaw_columns(tmp_path: Path, monkeypatch, capsys) -> None:
    database = tmp_path / "bot.sqlite3"
    ids = asyncio.run(fill(database))
    monkeypatch.setenv("BOT_DATABASE", str(database))
    out = tmp_path / "feedback.csv"

    assert main(["export-feedback", str(out)]) == 0

    with out.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == JIGSAW_COLUMNS
        rows = list(reader)
    as_labels = {row["id"]: [int(row[label]) for label in JIGSAW_COLUMNS[2:]] for row in rows}
    assert as_labels == {
        f"bot-{ids['confirmed']}": [1, 1, 0, 0, 1, 0],  # confirmed: toxic + the flagged labels
        f"bot-{ids['not toxic']}": [0, 0, 0, 0, 0, 0],
        f"bot-{ids['quoted']}": [1, 0, 1, 0, 0, 0],
    }
    assert rows[2]["comment_text"] == 'line one\nline "two", with comma'
    assert capsys.readouterr().err.strip() == (
        f"wrote 3 reviewed events to {out}; skipped 1 whose text was not stored (turn on /storetext in those chats)"
    )


def test_export_without_a_database_is_a_clear_error(tmp_path: Path, capsys) -> None:
    out = tmp_path / "feedback.csv"
    code = main(["export-feedback", str(out), "--database", str(tmp_path / "missing.sqlite3")])
    assert code == 2
    assert capsys.readouterr().err.strip().startswith("error: no database at")
    assert not out.exists()


def test_export_into_a_missing_folder_keeps_nothing_half_written(tmp_path: Path, capsys) -> None:
    database = tmp_path / "bot.sqlite3"
    asyncio.run(fill(database))
    code = main(["export-feedback", str(tmp_path / "no" / "such" / "out.csv"), "--database", str(database)])
    assert code == 2
    assert "the folder" in capsys.readouterr().err
    assert {p.name for p in tmp_path.iterdir()} <= {"bot.sqlite3", "bot.sqlite3-shm", "bot.sqlite3-wal"}


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """No new file can be made in ``folder``, even by root (the immutable attribute), or by mode bits otherwise."""
    immutable = os.geteuid() == 0 and shutil.which("chattr") is not None
    if immutable:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
    else:
        folder.chmod(0o555)
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o755)


def test_export_reads_a_database_in_a_folder_it_cannot_write(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "readonly"
    folder.mkdir()
    database = folder / "bot.sqlite3"
    asyncio.run(fill(database))
    out = tmp_path / "feedback.csv"
    with read_only_folder(folder):
        try:
            (folder / "probe").touch()
            pytest.skip("this file system lets the test write a read-only folder")
        except OSError:
            pass
        assert main(["export-feedback", str(out), "--database", str(database)]) == 0, capsys.readouterr().err
    assert "wrote 3 reviewed events" in capsys.readouterr().err
    assert len(out.read_text(encoding="utf-8").splitlines()) > 3
