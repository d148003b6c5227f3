"""Command line: one module per sub-command, each exposing ``add_parser(subparsers)``; shared helpers in ``_common``.

Command modules import nothing heavy at module level, so ``python -m bot models`` stays fast and a bot that serves
only ONNX models never imports TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot.cli import classify, console, export_feedback, health, models, run
from bot.cli._common import EXIT_OK, CliError, load_cli_settings

# Order is the order of `python -m bot --help`. "run" is the default when no sub-command is given.
COMMANDS = (run, console, classify, models, health, export_feedback)
SERVING_COMMANDS = frozenset({"run", "console"})  # log at LOG_LEVEL (default INFO); the others at WARNING unless set


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Chat moderation bot for Discord and Telegram.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args_list or (args_list[0].startswith("-") and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "run")
    args = parser.parse_args(args_list)
    try:
        _setup_logging(args.command)
        return int(args.func(args) or EXIT_OK)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _setup_logging(command: str) -> None:
    """Logging once per process: LOG_LEVEL for the serving commands; one-shot commands only warn unless it is set."""
    from bot.logging_setup import setup_logging

    setup_logging(load_cli_settings(), default_level=None if command in SERVING_COMMANDS else "WARNING")
