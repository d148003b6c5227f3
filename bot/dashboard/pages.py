"""The pages of one chat: review queue, member history, review buttons, charts, the training CSV, sign-out."""

from __future__ import annotations

import asyncio
import csv
import io
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.cli.export_feedback import COLUMNS, jigsaw_row
from bot.core.errors import BotError, PermissionDenied, UnknownEventError
from bot.core.records import EventRecord
from bot.core.types import Actor, ChatRef
from bot.dashboard import charts
from bot.dashboard.auth import Grant, chat_path
from bot.dashboard.web import COOKIE, dashboard_of, guard

log = logging.getLogger(__name__)

PAGE_SIZE = 50
CHART_DAYS = 30
CHAT = "/c/{platform}/{chat_id}"


def routes() -> list[Route]:
    return [
        Route(CHAT + "/", lambda request: RedirectResponse("queue", status_code=303)),
        Route(CHAT + "/queue", queue),
        Route(CHAT + "/members/{author_id}", member),
        Route(CHAT + "/events/{event_id:int}/review", review, methods=["POST"]),
        Route(CHAT + "/charts", charts_page),
        Route(CHAT + "/charts/{name}.svg", chart),
        Route(CHAT + "/export.csv", export),
        Route(CHAT + "/logout", logout, methods=["POST"]),
    ]


def _context(grant: Grant, page: str, **values: object) -> dict[str, object]:
    return {"grant": grant, "chat": grant.chat, "base": chat_path(grant.chat), "page": page, **values}


async def queue(request: Request) -> Response:
    """Flagged and acted events, newest first; ``member`` narrows to one member, ``unreviewed=1`` hides reviewed."""
    grant = await guard(request)
    dashboard = dashboard_of(request)
    member_id = request.query_params.get("member", "").strip() or None
    unreviewed = request.query_params.get("unreviewed") == "1"
    before = _int(request.query_params.get("before"))
    events = await dashboard.store.review_queue(
        grant.chat, author_id=member_id, unreviewed_only=unreviewed, before_id=before, limit=PAGE_SIZE
    )
    matches = [] if member_id is None else await dashboard.store.event_authors(grant.chat, prefix=member_id)
    stats = await dashboard.service.stats(grant.chat)
    context = _context(
        grant,
        "queue",
        events=events,
        member=member_id or "",
        matches=matches,
        unreviewed=unreviewed,
        stats=stats,
        next_before=events[-1].id if len(events) == PAGE_SIZE else None,
    )
    return dashboard.render(request, "queue.html", **context)


async def member(request: Request) -> Response:
    """One member's events in this chat and their strikes."""
    grant = await guard(request)
    dashboard = dashboard_of(request)
    author_id = request.path_params["author_id"]
    events = await dashboard.store.review_queue(grant.chat, author_id=author_id, limit=200)
    settings = await dashboard.service.settings(grant.chat)
    window_start = dashboard.clock() - settings.strike_window_seconds
    strikes = [event for event in events if event.has_strike]
    context = _context(
        grant,
        "queue",
        author_id=author_id,
        events=events,
        strikes_total=len(strikes),
        strikes_active=sum(1 for event in strikes if not event.strike_cleared),
        strikes_in_window=sum(1 for e in strikes if not e.strike_cleared and e.created_at >= window_start),
        settings=settings,
    )
    return dashboard.render(request, "member.html", **context)


async def review(request: Request) -> Response:
    """The "confirm" / "not toxic" buttons: the same service call as the platform's buttons, then lift the timeout."""
    grant = await guard(request, write=True)
    dashboard = dashboard_of(request)
    event_id = int(request.path_params["event_id"])
    verdict = (await request.form()).get("verdict")
    if verdict not in ("ok", "no"):
        raise HTTPException(400, "the verdict must be 'ok' (confirm) or 'no' (not toxic)")
    await _event_of_chat(request, event_id, grant.chat)
    actor = Actor(grant.user_id, is_admin=True)  # the guard asked the platform just now (cached briefly)
    try:
        result = await dashboard.service.feedback(event_id, actor, verdict == "ok", chat=grant.chat)
    except PermissionDenied as error:
        raise HTTPException(403, str(error)) from None
    except BotError as error:
        raise HTTPException(400, str(error)) from None
    notes = []
    if verdict == "no":
        if result.strike_cleared:
            notes.append("strike cleared")
        if result.lift_timeout:
            notes.append(await _lift_timeout(request, grant.chat, result.author_id))
    summary = ("confirmed" if verdict == "ok" else "not toxic") + (f" ({'; '.join(notes)})" if notes else "")
    log.info("dashboard: event %d reviewed in %s:%s: %s", event_id, grant.chat.platform, grant.chat.chat_id, summary)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"event": event_id, "review": summary})
    return RedirectResponse(chat_path(grant.chat) + "queue", status_code=303)  # no Referer: the policy drops it


async def charts_page(request: Request) -> Response:
    grant = await guard(request)
    dashboard = dashboard_of(request)
    stats = await dashboard.service.stats(grant.chat)
    reviewed = stats.confirmed + stats.rejected
    share = stats.rejected / reviewed if reviewed else None
    context = _context(grant, "charts", stats=stats, share=share, days=CHART_DAYS, names=charts.NAMES)
    return dashboard.render(request, "charts.html", **context)


async def chart(request: Request) -> Response:
    """One chart as SVG, drawn by matplotlib off the event loop."""
    grant = await guard(request)
    dashboard = dashboard_of(request)
    name = request.path_params["name"]
    if name not in charts.NAMES:
        raise HTTPException(404, f"no chart called {name!r}")
    now = dashboard.clock()
    counts = await dashboard.store.daily_counts(grant.chat, since=now - CHART_DAYS * charts.DAY_SECONDS)
    svg = await asyncio.to_thread(charts.render, name, counts, now=now, days=CHART_DAYS)
    return Response(svg, media_type="image/svg+xml")


async def export(request: Request) -> Response:
    """The chat's reviewed events as the training CSV (the rows of ``export-feedback``)."""
    grant = await guard(request)
    events = await dashboard_of(request).store.chat_reviewed_events(grant.chat)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(jigsaw_row(event) for event in events if event.text_stored)
    name = f"feedback-{grant.chat.platform}-{grant.chat.chat_id}.csv"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


async def logout(request: Request) -> Response:
    grant = await guard(request, write=True)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path=chat_path(grant.chat), httponly=True, samesite="strict")
    return response


async def _event_of_chat(request: Request, event_id: int, chat: ChatRef) -> EventRecord:
    """The event when it belongs to ``chat``; another chat's event is "not found", exactly like a missing one."""
    try:
        event = await dashboard_of(request).store.get_event(event_id)
    except UnknownEventError:
        event = None
    if event is None or event.chat != chat:
        raise HTTPException(404, f"no event #{event_id} in this chat")
    return event


async def _lift_timeout(request: Request, chat: ChatRef, user_id: str) -> str:
    ops = dashboard_of(request).platforms.get(chat.platform)
    if ops is None:
        return f"timeout NOT lifted: {chat.platform} is not connected"
    try:
        return await ops.lift_timeout(chat.chat_id, user_id)
    except Exception:  # the review is stored; say the platform call failed rather than lose the answer
        log.exception("dashboard: lifting the timeout of %s in %s:%s failed", user_id, chat.platform, chat.chat_id)
        return "timeout NOT lifted: the platform call failed"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
