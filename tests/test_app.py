"""`run` wiring: which adapters start, one shared app, stopping together on a signal, on an end or on a failure."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from bot.app import CONSOLE, PLATFORMS, App, adapters_for, serve_adapters
from bot.config import Settings
from bot.core.moderation import ModerationService
from bot.core.types import Actor, ChatRef, Message
from bot.storage import Storage
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ({}, [CONSOLE]),
        ({"DISCORD_TOKEN": "d"}, ["discord"]),
        ({"TELEGRAM_TOKEN": "t"}, ["telegram"]),
        ({"DISCORD_TOKEN": "d", "TELEGRAM_TOKEN": "t"}, ["discord", "telegram"]),
        ({"DISCORD_TOKEN": "  "}, [CONSOLE]),  # a blank token is no token
    ],
)
def test_the_platforms_with_a_token_are_served_else_the_console(
    tokens: dict[str, str], expected: list, monkeypatch
) -> None:
    for name in ("DISCORD_TOKEN", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    expected = [item if isinstance(item, tuple) else (item, PLATFORMS[item][1]) for item in expected]
    assert adapters_for(Settings()) == expected


class Probe:
    """Records what the built app went through."""

    def __init__(self) -> None:
        self.closed = False
        self.services: list[ModerationService] = []
        self.started: asyncio.Queue[str] = asyncio.Queue()


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def build(tmp_path: Path, probe: Probe):
    """An app like build_app's, with the word-table backend instead of a neural network."""

    @asynccontextmanager
    async def build_scripted(settings: Settings) -> AsyncIterator[App]:
        registry = scripted_registry(tmp_path)
        classifier = scripted_classifier(registry)
        async with await Storage.open(tmp_path / "bot.sqlite3") as storage:
            yield App(settings, registry, classifier, storage, ModerationService(classifier, storage, registry))
            await classifier.aclose()
        probe.closed = True

    return build_scripted


def waiting_adapter(probe: Probe, name: str):
    async def serve(service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object) -> None:
        probe.services.append(service)
        outcome = await service.handle(Message(ChatRef(name, "1"), "m", Actor("u"), "stupid"))
        assert outcome.event_id is not None
        probe.started.put_nowait(name)
        await stop.wait()
        probe.services.append(name)  # type: ignore[arg-type]  # marks a graceful return

    return serve


async def test_sigterm_stops_every_adapter_gracefully_and_exits_0(build, probe: Probe) -> None:
    serves = [("one", waiting_adapter(probe, "one")), ("two", waiting_adapter(probe, "two"))]
    task = asyncio.create_task(serve_adapters(Settings(), serves, build=build))
    assert sorted([await probe.started.get(), await probe.started.get()]) == ["one", "two"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 30) == 0
    first, second, *returned = probe.services
    assert first is second  # one service shared by every adapter
    assert sorted(returned) == ["one", "two"]
    assert probe.closed


async def test_an_adapter_that_ends_stops_the_others(build, probe: Probe) -> None:
    async def ends_at_once(service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object) -> None:
        return None  # like the console at end of input

    serves = [("console", ends_at_once), ("two", waiting_adapter(probe, "two"))]
    assert await asyncio.wait_for(serve_adapters(Settings(), serves, build=build), 30) == 0
    assert probe.services[-1] == "two" and probe.closed


async def test_a_failing_adapter_stops_the_others_and_exits_1(build, probe: Probe, caplog) -> None:
    async def fails(service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object) -> None:
        raise ConnectionError("gateway refused the token")

    serves = [("broken", fails), ("two", waiting_adapter(probe, "two"))]
    assert await asyncio.wait_for(serve_adapters(Settings(), serves, build=build), 30) == 1
    assert probe.services[-1] == "two" and probe.closed
    assert "broken stopped with an error" in caplog.text and "gateway refused the token" in caplog.text


async def test_an_adapter_that_ignores_stop_is_cancelled_after_the_grace_period(
    build, probe: Probe, monkeypatch
) -> None:
    cancelled = asyncio.Event()

    async def stubborn(service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async def ends(service: ModerationService, settings: Settings, stop: asyncio.Event, **_: object) -> None:
        return None

    assert (
        await asyncio.wait_for(
            serve_adapters(Settings(BOT_STOP_GRACE=0.2), [("stubborn", stubborn), ("x", ends)], build=build), 30
        )
        == 0
    )
    assert cancelled.is_set() and probe.closed
