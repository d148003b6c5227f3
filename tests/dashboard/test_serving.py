"""The dashboard served by the bot's own run loop: started by ``serve_adapters`` when DASHBOARD_PORT is set, links
handed to the adapters, the platforms they register used for admin checks, a taken port a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bot.app import App, serve_adapters
from bot.config import Settings
from bot.core.errors import DashboardError
from bot.core.moderation import ModerationService
from bot.core.platforms import Platforms
from bot.core.types import ChatRef
from bot.dashboard import bind, build_dashboard
from bot.storage import Storage
from tests.dashboard.helpers import RecordingPlatform
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry

pytestmark = pytest.mark.asyncio
CHAT = ChatRef("telegram", "-1001")


def build_with_dashboard(tmp_path: Path):
    """``build_app`` with the word-table backend; the dashboard built as build_app builds it."""

    @asynccontextmanager
    async def build(settings: Settings) -> AsyncIterator[App]:
        registry = scripted_registry(tmp_path)
        classifier = scripted_classifier(registry)
        async with await Storage.open(tmp_path / "bot.sqlite3") as storage:
            service = ModerationService(classifier, storage, registry)
            platforms = Platforms()
            dashboard = await build_dashboard(settings, storage, service, platforms)
            yield App(settings, registry, classifier, storage, service, platforms, dashboard)
            dashboard.close()
            await classifier.aclose()

    return build


async def test_the_run_loop_serves_the_dashboard_and_gives_adapters_its_links(tmp_path: Path) -> None:
    answers: list[int] = []

    async def adapter(service, settings, stop, *, platforms: Platforms, dashboard) -> None:
        platforms.register("telegram", RecordingPlatform({CHAT.chat_id: {"42"}}))
        link = dashboard.link(CHAT, "42")
        async with httpx.AsyncClient() as http:
            answers.append((await http.get(link)).status_code)  # the sign-in page
            answers.append((await http.get(link.replace("t=", "t=x"))).status_code)
        stop.set()

    settings = Settings(DASHBOARD_PORT=0, DASHBOARD_SECRET="a-secret-of-sixteen-chars")
    code = await asyncio.wait_for(
        serve_adapters(settings, [("telegram", adapter)], build=build_with_dashboard(tmp_path)), 30
    )
    assert code == 0 and answers == [200, 401]


async def test_the_key_is_generated_once_and_survives_a_restart(tmp_path: Path) -> None:
    links = []
    for _ in range(2):
        async with build_with_dashboard(tmp_path)(Settings(DASHBOARD_PORT=0)) as app:
            assert app.dashboard is not None
            links.append(app.dashboard.links)
    token = links[0].signer.link_token(CHAT, "42")
    assert links[1].signer.open_link(token).chat == CHAT


async def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    taken = bind("127.0.0.1", 0)
    taken.listen()  # another server holds the port
    try:
        settings = Settings(DASHBOARD_PORT=taken.getsockname()[1])
        with pytest.raises(DashboardError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            async with build_with_dashboard(tmp_path)(settings):
                pass
    finally:
        taken.close()
