"""The wiring, in one place: settings -> registry, classifier, storage, service -> the adapters; their lifecycle.

One process builds one app shared by every adapter; SIGTERM and SIGINT stop the adapters gracefully. The platform
libraries are imported only when their adapter is served, so a one-shot command never pays for them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot.config import DEFAULT_STOP_GRACE, Settings
from bot.core.classifier import Classifier
from bot.core.dashboard_access import LinkMaker
from bot.core.language import LanguageIdentifier
from bot.core.moderation import ModerationService
from bot.core.platforms import Platforms
from bot.core.registry import Registry, load_registry
from bot.storage import Storage

if TYPE_CHECKING:
    from bot.dashboard import DashboardServer


class Serve(Protocol):
    """An adapter's entry point: serve until ``stop`` is set. A platform adapter registers itself in ``platforms``
    while it is connected (the dashboard finds it there) and hands out ``dashboard`` links on ``/dashboard``."""

    def __call__(
        self,
        service: ModerationService,
        settings: Settings,
        stop: asyncio.Event,
        *,
        platforms: Platforms,
        dashboard: LinkMaker | None,
    ) -> Awaitable[None]: ...


STOP_GRACE_SECONDS = DEFAULT_STOP_GRACE  # adapters get settings.stop_grace (BOT_STOP_GRACE) to stop, then are cancelled
EXIT_OK = 0
EXIT_ADAPTER_FAILED = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class App:
    settings: Settings
    registry: Registry
    classifier: Classifier
    storage: Storage
    service: ModerationService
    platforms: Platforms = field(default_factory=Platforms)
    dashboard: DashboardServer | None = None  # the web dashboard, when DASHBOARD_PORT is set


def quiet_libraries() -> None:
    """TensorFlow and transformers kept quiet (set before either is first imported)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def build_classifier(settings: Settings, registry: Registry, *, max_batch: int | None = None) -> Classifier:
    """The classifier with the settings' batching and cache (``max_batch=1``: no waiting for batch mates)."""
    single = max_batch == 1
    return Classifier(
        registry,
        max_batch=max_batch or settings.max_batch,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_ms=0 if single else settings.max_wait_ms,
        cache_size=1 if single else settings.model_cache_size,
        cache_dir=settings.model_cache_dir,
        flood_size=settings.flood_cache_size,
        flood_ttl_s=settings.flood_cache_ttl_s,
    )


@asynccontextmanager
async def build_app(settings: Settings) -> AsyncIterator[App]:
    """``async with build_app(settings) as app``: closes the classifier and the database on the way out.

    Raises ``RegistryError`` for a bad models.yaml and ``StorageError`` for a database that cannot be opened.
    """
    registry = load_registry(settings.models_file)
    storage = await Storage.open(settings.database)
    classifier = build_classifier(settings, registry)
    try:
        service = ModerationService(classifier, storage, registry, languages=LanguageIdentifier())
        platforms = Platforms()
        dashboard = None
        if settings.dashboard_port is not None:
            from bot.dashboard import build_dashboard

            dashboard = await build_dashboard(settings, storage, service, platforms)
        try:
            yield App(settings, registry, classifier, storage, service, platforms, dashboard)
        finally:
            if dashboard is not None:
                dashboard.close()
    finally:
        try:
            await classifier.aclose()
        finally:
            await storage.close()


async def _serve_discord(
    service: ModerationService,
    settings: Settings,
    stop: asyncio.Event,
    *,
    platforms: Platforms,
    dashboard: LinkMaker | None,
) -> None:
    from bot.adapters import discord_bot

    await discord_bot.serve(service, settings, stop, platforms=platforms, dashboard=dashboard)


async def _serve_telegram(
    service: ModerationService,
    settings: Settings,
    stop: asyncio.Event,
    *,
    platforms: Platforms,
    dashboard: LinkMaker | None,
) -> None:
    from bot.adapters import telegram_bot

    await telegram_bot.serve(service, settings, stop, platforms=platforms, dashboard=dashboard)


async def _serve_console(
    service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object
) -> None:  # a local chat: no admins to link to a dashboard
    from bot.adapters import console

    await console.serve(service, settings, stop)


# platform -> (the Settings field of its token, its serve)
PLATFORMS: dict[str, tuple[str, Serve]] = {
    "discord": ("discord_token", _serve_discord),
    "telegram": ("telegram_token", _serve_telegram),
}
CONSOLE: tuple[str, Serve] = ("console", _serve_console)


def adapters_for(settings: Settings) -> list[tuple[str, Serve]]:
    """(name, serve) of the platforms whose token is set, or the console when there is none."""
    chosen = []
    for name, (token_field, serve) in PLATFORMS.items():
        token = getattr(settings, token_field)
        if token is not None and token.get_secret_value().strip():
            chosen.append((name, serve))
    return chosen or [CONSOLE]


async def serve_adapters(
    settings: Settings,
    serves: Sequence[tuple[str, Serve]],
    *,
    stop: asyncio.Event | None = None,
    build: Callable[[Settings], AbstractAsyncContextManager[App]] = build_app,
) -> int:
    """Run every ``serve`` on one app; when one ends (or a signal arrives) stop the others. 0, or 1 if one failed."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = _on_signals(loop, stop)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with build(settings) as app:
            await app.classifier.load()  # the default model: a broken one fails here, not at the first message
            links = app.dashboard.links if app.dashboard is not None else None
            tasks = [
                asyncio.create_task(
                    call(app.service, settings, stop, platforms=app.platforms, dashboard=links), name=name
                )
                for name, call in serves
            ]
            if app.dashboard is not None:
                tasks.append(asyncio.create_task(app.dashboard.serve(stop), name="dashboard"))
            log.info("serving: %s", ", ".join(task.get_name() for task in tasks))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()
            _, late = await asyncio.wait(tasks, timeout=settings.stop_grace)
            for task in late:
                log.warning("%s did not stop within %g s: cancelled", task.get_name(), settings.stop_grace)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
    log.info("stopped")
    failed = [task for task in tasks if not task.cancelled() and task.exception() is not None]
    for task in failed:
        error = task.exception()
        log.error("%s stopped with an error", task.get_name(), exc_info=(type(error), error, error.__traceback__))
    return EXIT_ADAPTER_FAILED if failed else EXIT_OK


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def on_signal() -> None:
        if not stop.is_set():
            log.info("%s: stopping (intake ends, messages in hand finish, the rest wait for the next start)", sig.name)
        stop.set()

    return on_signal


def _on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> list[int]:
    handled = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _stopper(stop, sig))
        except (NotImplementedError, RuntimeError):  # not the main thread, or a platform without signals
            continue
        handled.append(sig)
    return handled
