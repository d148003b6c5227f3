"""What the pages do: review like the platform buttons, settings through the service, search, charts and export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from bot.cli.export_feedback import COLUMNS, jigsaw_row
from bot.core.types import Actor
from tests.dashboard.helpers import ADMIN, CHAT, OTHER_CHAT, Setup, dashboard_setup

pytestmark = pytest.mark.asyncio
BASE = "/c/telegram/-1001/"
SERVICE_ADMIN = Actor(ADMIN, is_admin=True)


@pytest_asyncio.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with dashboard_setup(tmp_path) as ready:
        yield ready


@pytest_asyncio.fixture
async def http(setup: Setup) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    transport = httpx.ASGITransport(app=setup.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await client.get("/login", params={"t": setup.signer.link_token(CHAT, ADMIN)})
        page = await client.get(BASE + "queue")
        yield client, page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


async def test_not_toxic_on_a_timeout_clears_the_strike_records_feedback_and_lifts_it(setup: Setup, http) -> None:
    client, csrf = http
    await setup.service.set_action(CHAT, SERVICE_ADMIN, "timeout")
    event_id = await setup.post("you are so stupid")
    response = await client.post(
        f"{BASE}events/{event_id}/review", data={"csrf": csrf, "verdict": "no"}, headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["review"] == "not toxic (strike cleared; timeout lifted)"
    event = await setup.storage.get_event(event_id)
    assert (event.feedback_correct, event.strike_cleared) == (False, True)
    assert setup.platform.lifted == [(CHAT.chat_id, "7")]


async def test_a_form_post_without_javascript_returns_to_the_queue(setup: Setup, http) -> None:
    client, csrf = http
    event_id = await setup.post("you are so stupid")
    response = await client.post(f"{BASE}events/{event_id}/review", data={"csrf": csrf, "verdict": "ok"})
    assert response.status_code == 303 and response.headers["location"].endswith("/queue")
    assert (await setup.storage.get_event(event_id)).feedback_correct is True
    assert setup.platform.lifted == []


async def test_the_queue_is_newest_first_and_searches_by_member(setup: Setup, http) -> None:
    client, _ = http
    first = await setup.post("you are so stupid", author="7", message_id="1")
    second = await setup.post("damn stupid", author="8", message_id="2")
    page = (await client.get(f"{BASE}queue")).text
    assert page.index(f'id="event-{second}"') < page.index(f'id="event-{first}"')
    only_7 = (await client.get(f"{BASE}queue", params={"member": "7"})).text
    assert f'id="event-{first}"' in only_7 and f'id="event-{second}"' not in only_7
    member = (await client.get(f"{BASE}members/8")).text
    assert f'id="event-{second}"' in member and 'id="strikes-active">1<' in member


async def test_settings_change_through_the_service_with_its_audit_rows(setup: Setup, http) -> None:
    client, csrf = http
    form = await _settings_form(client)
    form |= {"csrf": csrf, "threshold_act_insult": "0.7", "action": "delete"}
    response = await client.post(f"{BASE}settings", data=form, follow_redirects=True)
    assert response.status_code == 200 and 'id="saved"' in response.text
    settings = await setup.service.settings(CHAT)
    assert (settings.thresholds["insult"], settings.action) == ({"act": 0.7}, "delete")
    audit = {entry.setting: (entry.old, entry.new, entry.actor_id) for entry in await setup.storage.audit_log(CHAT)}
    assert audit == {"thresholds": ({}, {"insult": {"act": 0.7}}, ADMIN), "action": ("warn", "delete", ADMIN)}


async def test_a_bad_setting_is_refused_by_the_service_and_nothing_else_is_lost(setup: Setup, http) -> None:
    client, csrf = http
    form = await _settings_form(client) | {"csrf": csrf, "threshold_flag_insult": "1.5", "timeout_minutes": "ten"}
    response = await client.post(f"{BASE}settings", data=form)
    assert response.status_code == 400
    assert "a threshold must be above 0" in response.text and "and at most 1" in response.text
    assert "is not a number" in response.text
    assert (await setup.service.settings(CHAT)).thresholds == {}
    assert await setup.storage.audit_log(CHAT) == []


async def test_export_is_the_training_csv_of_this_chat_only(setup: Setup, http) -> None:
    client, _ = http
    await setup.service.set_store_text(CHAT, SERVICE_ADMIN, True)
    await setup.service.set_store_text(OTHER_CHAT, SERVICE_ADMIN, True)
    mine = await setup.post("you are so stupid")
    theirs = await setup.post("so stupid", chat=OTHER_CHAT, message_id="5")
    unreviewed = await setup.post("stupid again", message_id="6")
    for event_id, chat in ((mine, CHAT), (theirs, OTHER_CHAT)):
        await setup.service.feedback(event_id, SERVICE_ADMIN, False, chat=chat)
    response = await client.get(f"{BASE}export.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = jigsaw_row(await setup.storage.get_event(mine))
    assert [tuple(row) for row in rows] == [COLUMNS]
    assert rows == [{key: str(value) for key, value in expected.items()}]
    assert f"bot-{unreviewed}" not in response.text


async def test_charts_are_svg_drawn_from_the_log(setup: Setup, http) -> None:
    client, _ = http
    event_id = await setup.post("you are so stupid")
    await setup.service.feedback(event_id, SERVICE_ADMIN, False, chat=CHAT)
    page = await client.get(f"{BASE}charts")
    assert 'id="false-alarm-share">100%<' in page.text
    for name in ("actions", "labels", "false_alarms"):
        svg = await client.get(f"{BASE}charts/{name}.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml") and "<svg" in svg.text
    assert "warn" in (await client.get(f"{BASE}charts/actions.svg")).text  # the legend names the action
    assert (await client.get(f"{BASE}charts/nope.svg")).status_code == 404


async def _settings_form(client: httpx.AsyncClient) -> dict[str, str | list[str]]:
    """The settings form as the page fills it in (what a browser would post unchanged)."""
    from html.parser import HTMLParser

    page = (await client.get(f"{BASE}settings")).text
    form: dict[str, str | list[str]] = {}

    class Fields(HTMLParser):
        select: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = dict(attrs)
            name = values.get("name") or ""
            if tag == "input" and name and values.get("type") not in ("checkbox",):
                form[name] = values.get("value") or ""
            elif tag == "input" and name and "checked" in values:
                if name == "acting":
                    form.setdefault("acting", [])
                    form["acting"].append(values.get("value") or "on")  # type: ignore[union-attr]
                else:
                    form[name] = "on"
            elif tag == "select":
                self.select = name
            elif tag == "option" and self.select and "selected" in values:
                form[self.select] = values.get("value") or ""

        def handle_data(self, data: str) -> None:
            pass

    Fields().feed(page)
    return form
