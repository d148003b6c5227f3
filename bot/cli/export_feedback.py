"""`python -m bot export-feedback OUT.csv`: admins' reviews as Jigsaw-format rows for `training/`.

A confirmed event is toxic with the labels the decision flagged; an event marked "not toxic" is all zeros. Only
events whose whole text was stored (chats that enabled storing text) can be exported; the others are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli._common import EXIT_OK, EXIT_USAGE, CliError, load_cli_settings
from bot.core.labels import TOXICITY_LABELS

if TYPE_CHECKING:
    from bot.core.records import EventRecord

COLUMNS: tuple[str, ...] = ("id", "comment_text", *TOXICITY_LABELS)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-feedback",
        help="write the reviewed moderation events as a Jigsaw-format CSV for training",
        description="Write every event an admin reviewed as a row with the Jigsaw columns (id, comment_text and "
        "the six labels): confirmed events carry the labels the bot flagged, events marked 'not toxic' are all "
        "zeros. Only events whose chat stored the whole text are written.",
    )
    parser.add_argument("out", type=Path, metavar="OUT.csv", help="the CSV file to write (replaced if it exists)")
    parser.add_argument(
        "--database", default=None, help="SQLite file or postgresql:// URL (default: BOT_DATABASE_URL or BOT_DATABASE)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    database = str(args.database) if args.database else load_cli_settings().database
    if "://" not in database and not Path(database).is_file():
        raise CliError(f"no database at {database} (set BOT_DATABASE or pass --database)", EXIT_USAGE)
    events = asyncio.run(_reviewed(database))
    rows = [jigsaw_row(event) for event in events if event.text_stored]
    skipped = len(events) - len(rows)
    write_csv(args.out, rows)
    note = f"; skipped {skipped} whose text was not stored (turn on /storetext in those chats)" if skipped else ""
    print(f"wrote {len(rows)} reviewed events to {args.out}{note}", file=sys.stderr)
    return EXIT_OK


def jigsaw_row(event: EventRecord) -> dict[str, str | int]:
    """The event as a Jigsaw row; a confirmed event is toxic (the admin said so) plus the labels it was flagged for."""
    confirmed = bool(event.feedback_correct)
    labels = {label: int(confirmed and label in event.flagged) for label in TOXICITY_LABELS}
    if confirmed:
        labels["toxic"] = 1
    return {"id": f"bot-{event.id}", "comment_text": event.text, **labels}


def write_csv(path: Path, rows: Iterable[dict[str, str | int]]) -> None:
    """Write atomically: a failure leaves any previous file as it was."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise CliError(f"cannot write {path}: the folder {folder} does not exist", EXIT_USAGE)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def _reviewed(database: str) -> list[EventRecord]:
    from bot.core.errors import StorageError
    from bot.storage import Storage

    try:
        async with await Storage.open_read_only(database) as storage:  # it only reads: any folder will do
            return await storage.reviewed_events()
    except StorageError as error:
        raise CliError(str(error), EXIT_USAGE) from None
