"""The settings page: every chat setting of the commands, changed through the same service calls.

The form is compared with the current settings and each changed setting goes through its own service method, so
validation and audit rows are exactly those of the chat commands; nothing is validated here beyond reading numbers.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.core.errors import BotError
from bot.core.labels import TOXICITY_LABELS
from bot.core.model_folder import DEFAULT_THRESHOLD, POINTS, LabelThresholds
from bot.core.records import CHAT_ACTIONS, ChatSettings
from bot.core.types import Actor, ChatRef
from bot.dashboard.auth import Grant, chat_path
from bot.dashboard.ports import DashboardService
from bot.dashboard.web import dashboard_of, guard

CHAT = "/c/{platform}/{chat_id}"


def routes() -> list[Route]:
    return [Route(CHAT + "/settings", settings_page, methods=["GET", "POST"])]


@dataclass(frozen=True)
class Change:
    """One setting to change: its name (for messages) and the service call that changes it."""

    name: str
    apply: Callable[[], Awaitable[ChatSettings]]


async def settings_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    if request.method == "POST":
        grant = await guard(request, write=True)
        current = await dashboard.service.settings(grant.chat)
        errors: list[str] = []
        changes = plan(dashboard.service, grant, current, await request.form(), errors)
        for change in changes:
            try:
                await change.apply()
            except BotError as error:
                errors.append(f"{change.name}: {error}")
        if not errors:
            return RedirectResponse(chat_path(grant.chat) + "settings?saved=1", status_code=303)
        return await _render(request, grant, errors=errors, status=400)
    grant = await guard(request)
    return await _render(request, grant, saved=request.query_params.get("saved") == "1")


async def _render(
    request: Request, grant: Grant, *, errors: list[str] | None = None, saved: bool = False, status: int = 200
) -> Response:
    dashboard = dashboard_of(request)
    settings = await dashboard.service.settings(grant.chat)
    model = dashboard.service.effective_model(settings)
    specs = dashboard.service.models()
    spec = next((spec for spec in specs if spec.name == model), None)
    labels = (spec.labels if spec and spec.labels else None) or TOXICITY_LABELS
    defaults = (
        {label: spec.thresholds.get(label, LabelThresholds(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD)) for label in labels}
        if spec
        else {}
    )
    audit = await dashboard.store.audit_log(grant.chat, limit=20)
    return dashboard.render(
        request,
        "settings.html",
        status=status,
        grant=grant,
        chat=grant.chat,
        base=chat_path(grant.chat),
        page="settings",
        settings=settings,
        model=model,
        models=specs,
        labels=labels,
        defaults=defaults,
        actions=CHAT_ACTIONS,
        audit=audit,
        errors=errors or [],
        saved=saved,
    )


def plan(
    service: DashboardService, grant: Grant, current: ChatSettings, form: FormData, errors: list[str]
) -> list[Change]:
    """The service calls that turn ``current`` into what the form says; unreadable numbers go to ``errors``."""
    chat, actor = grant.chat, Actor(grant.user_id, is_admin=True)
    changes: list[Change] = []

    def add(name: str, call: Callable[[], Awaitable[ChatSettings]]) -> None:
        changes.append(Change(name, call))

    enabled = form.get("enabled") == "on"
    if enabled != current.enabled:
        add("moderation", lambda: service.set_enabled(chat, actor, enabled))
    model = _text(form, "model")
    if model and model != (current.model or service.effective_model(current)):
        add("model", lambda: service.set_model(chat, actor, model))
    action = _text(form, "action")
    if action and action != current.action:
        add("action", lambda: service.set_action(chat, actor, action))
    acting = [str(label) for label in form.getlist("acting")]
    if "acting_shown" in form and set(acting) != set(current.acting_labels):
        add("acting labels", lambda: service.set_acting_labels(chat, actor, acting))
    for key in form:
        point, _, label = key.removeprefix("threshold_").partition("_")
        if key.startswith("threshold_") and point in POINTS:
            value = _number(form, key, errors, f"{point} threshold of {label}")
            if not _unreadable(value) and value != current.thresholds.get(label, {}).get(point):
                add(f"{point} threshold of {label}", _threshold(service, chat, actor, label, value, point))
    limit = _number(form, "strike_limit", errors, "strike limit")
    hours = _number(form, "window_hours", errors, "strike window")
    minutes = _number(form, "timeout_minutes", errors, "timeout")
    if all(value is not None and not _unreadable(value) for value in (limit, hours, minutes)):
        wanted = (int(limit), round(hours * 3600), round(minutes * 60))  # type: ignore[operator]
        if wanted != (current.strike_limit, current.strike_window_seconds, current.timeout_seconds):
            add(
                "escalation",
                lambda: service.set_escalation(
                    chat, actor, strike_limit=wanted[0], window_seconds=wanted[1], timeout_seconds=wanted[2]
                ),
            )
    for kind, field in (("user", "exempt_users"), ("role", "exempt_roles")):
        wanted_ids = set(_text(form, field).replace(",", " ").split())
        have = set(getattr(current, field))
        for ident in sorted(wanted_ids - have):
            add(f"exempt {kind} {ident}", _exempt(service, chat, actor, kind, ident, True))
        for ident in sorted(have - wanted_ids):
            add(f"exempt {kind} {ident}", _exempt(service, chat, actor, kind, ident, False))
    log_channel = _text(form, "log_channel") or None
    if log_channel != current.log_channel:
        add("mod-log channel", lambda: service.set_log_channel(chat, actor, log_channel))
    store_text = form.get("store_text") == "on"
    if store_text != current.store_text:
        add("store text", lambda: service.set_store_text(chat, actor, store_text))
    language_gate = form.get("language_gate") == "on"
    if "language_gate_shown" in form and language_gate != current.language_gate:
        add("language gate", lambda: service.set_language_gate(chat, actor, language_gate))
    return changes


def _threshold(
    service: DashboardService, chat: ChatRef, actor: Actor, label: str, value: float | None, point: str
) -> Callable[[], Awaitable[ChatSettings]]:
    return lambda: service.set_threshold(chat, actor, label, value, point)


def _exempt(
    service: DashboardService, chat: ChatRef, actor: Actor, kind: str, ident: str, exempt: bool
) -> Callable[[], Awaitable[ChatSettings]]:
    return lambda: service.set_exempt(chat, actor, kind, ident, exempt)


def _unreadable(value: float | None) -> bool:
    return value is not None and math.isnan(value)


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _number(form: FormData, key: str, errors: list[str], what: str) -> float | None:
    """The field as a number; None when blank (back to the default); NaN (and an error) when unreadable."""
    raw = _text(form, key)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        errors.append(f"{what}: '{raw}' is not a number")
        return math.nan
