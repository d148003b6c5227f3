"""`python -m bot console`: the local chat on stdin/stdout, with the same service, storage and models as the bots."""

from __future__ import annotations

import argparse

from bot.cli._common import load_cli_settings
from bot.cli.run import serve


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "console",
        help="a local chat: each line of stdin is a message, answered with the bot's decision",
        description="Each line of stdin is a message from the local admin in chat console:local, answered with "
        "the bot's decision; lines starting with / are commands (/help lists them). Works piped and interactive; "
        "ends at end of input. The database is BOT_DATABASE (default data/bot.sqlite3).",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.app import CONSOLE

    return serve(load_cli_settings(), [CONSOLE])
