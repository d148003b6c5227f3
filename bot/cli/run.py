"""`python -m bot` / `python -m bot run`: serve every platform whose token is set, else the local console chat.

One process builds one app (registry, classifier, storage, service) shared by every adapter; SIGTERM and SIGINT
stop the adapters gracefully and the process exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from bot.cli import EXIT_MODEL_UNAVAILABLE, EXIT_OK, EXIT_USAGE, CliError
from bot.cli.models import load_cli_settings

if TYPE_CHECKING:
    from bot.app import App
    from bot.config import Settings
    from bot.core.moderation import ModerationService

Serve = Callable[["ModerationService", "Settings", asyncio.Event], Awaitable[None]]

# platform -> (the Settings field of its token, the adapter module exposing `serve`); imported only when used
PLATFORMS: dict[str, tuple[str, str]] = {
    "discord": ("discord_token", "bot.adapters.discord_bot"),
    "telegram": ("telegram_token", "bot.adapters.telegram_bot"),
}
CONSOLE = ("console", "bot.adapters.console")
EXIT_ADAPTER_FAILED = 1

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the bot (the default): Discord and/or Telegram when their tokens are set, else the console chat",
        description="Serve Discord (DISCORD_TOKEN) and Telegram (TELEGRAM_TOKEN) in one process, both at once when "
        "both tokens are set. With no token, start the local console chat. SIGTERM or Ctrl-C stops gracefully.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_cli_settings()
    return serve(settings, adapters_for(settings))


def adapters_for(settings: Settings) -> list[tuple[str, str]]:
    """(name, module) of the platforms whose token is set, or the console when there is none."""
    chosen = []
    for name, (field, module) in PLATFORMS.items():
        token = getattr(settings, field)
        if token is not None and token.get_secret_value().strip():
            chosen.append((name, module))
    return chosen or [CONSOLE]


def serve(settings: Settings, adapters: Sequence[tuple[str, str]]) -> int:
    """Build the app and run the adapters until they end or a signal stops them; return the exit code."""
    _prepare_environment(settings)
    from bot.core.errors import ModelLoadError, RegistryError
    from bot.storage import StorageError

    serves = [(name, _load_serve(module)) for name, module in adapters]
    try:
        return asyncio.run(serve_adapters(settings, serves))
    except (RegistryError, StorageError) as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except ModelLoadError as error:
        raise CliError(str(error), EXIT_MODEL_UNAVAILABLE) from None


async def serve_adapters(
    settings: Settings,
    serves: Sequence[tuple[str, Serve]],
    *,
    stop: asyncio.Event | None = None,
    build: Callable[[Settings], AbstractAsyncContextManager[App]] | None = None,
) -> int:
    """Run every ``serve`` on one app; when one ends (or a signal arrives) stop the others. 0, or 1 if one failed.

    ``build`` makes the app (default ``bot.app.build_app``).
    """
    if build is None:
        from bot.app import build_app as build

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = _on_signals(loop, stop)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with build(settings) as app:
            await app.classifier.load()  # the default model: a broken one fails here, not at the first message
            tasks = [asyncio.create_task(call(app.service, settings, stop), name=name) for name, call in serves]
            log.info("serving: %s", ", ".join(name for name, _ in serves))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            _, late = await asyncio.wait(tasks, timeout=settings.stop_grace)  # BOT_STOP_GRACE
            for task in late:
                log.warning("%s did not stop within %g s: cancelled", task.get_name(), settings.stop_grace)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    failed = [task for task in tasks if not task.cancelled() and task.exception() is not None]
    for task in failed:
        error = task.exception()
        log.error("%s stopped with an error", task.get_name(), exc_info=(type(error), error, error.__traceback__))
    return EXIT_ADAPTER_FAILED if failed else EXIT_OK


def _on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or a platform without signals
            continue
        handled.append(sig)
    return handled


def _load_serve(module: str) -> Serve:
    return importlib.import_module(module).serve


def _prepare_environment(settings: Settings) -> None:
    """TensorFlow and transformers kept quiet (before either is imported); logging is set up by ``bot.cli``."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
