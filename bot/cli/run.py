"""`python -m bot` / `python -m bot run`: serve every platform whose token is set, else the local console chat."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from bot.cli._common import EXIT_MODEL_UNAVAILABLE, EXIT_USAGE, CliError, load_cli_settings

if TYPE_CHECKING:
    from bot.app import Serve
    from bot.config import Settings


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the bot (the default): Discord and/or Telegram when their tokens are set, else the console chat",
        description="Serve Discord (DISCORD_TOKEN) and Telegram (TELEGRAM_TOKEN) in one process, both at once when "
        "both tokens are set. With no token, start the local console chat. SIGTERM or Ctrl-C stops gracefully.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.app import adapters_for

    settings = load_cli_settings()
    return serve(settings, adapters_for(settings))


def serve(settings: Settings, adapters: Sequence[tuple[str, Serve]]) -> int:
    """Build the app and run the adapters until they end or a signal stops them; return the exit code."""
    from bot.app import quiet_libraries, serve_adapters
    from bot.core.errors import DashboardError, ModelLoadError, RegistryError, StorageError

    quiet_libraries()
    try:
        code = asyncio.run(serve_adapters(settings, adapters))
    except (RegistryError, StorageError, DashboardError) as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except ModelLoadError as error:
        raise CliError(str(error), EXIT_MODEL_UNAVAILABLE) from None
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """Leave at once: everything is closed, but TensorFlow's and other libraries' exit hooks and threads can hold
    the interpreter for seconds (or, under load, far longer), past the stop grace a supervisor allows."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
