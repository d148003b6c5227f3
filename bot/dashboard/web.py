"""The dashboard's ASGI app: signed-link login, per-chat sessions, security headers, and the page routes.

Every page of a chat lives under ``/c/<platform>/<chat id>/``. ``guard`` admits a request only with a valid session
cookie for that very chat, of a person the platform still reports as an admin there; state-changing requests must
also echo the session's CSRF token. See ``bot.dashboard.auth`` for the tokens themselves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.core.types import ChatRef
from bot.dashboard import views
from bot.dashboard.auth import AdminCache, Grant, LinkError, Signer, chat_path, same_token
from bot.dashboard.ports import DashboardService, DashboardStore, PlatformDirectory

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
COOKIE = "modbot_session"
SECURITY_HEADERS = {
    # the pages load nothing from elsewhere; the link's token must not leak through a Referer
    "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass
class Dashboard:
    """Everything the pages use, kept on ``app.state.dashboard``."""

    store: DashboardStore
    service: DashboardService
    platforms: PlatformDirectory
    signer: Signer
    admins: AdminCache
    templates: Jinja2Templates
    secure_cookies: bool = False
    clock: Callable[[], float] = time.time

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status)


def dashboard_of(request: Request) -> Dashboard:
    return request.app.state.dashboard


def create_app(
    store: DashboardStore,
    service: DashboardService,
    platforms: PlatformDirectory,
    signer: Signer,
    *,
    admin_ttl: float = 60.0,
    secure_cookies: bool = False,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The dashboard app. ``secure_cookies``: mark the session cookie Secure (when served over HTTPS)."""
    from bot.dashboard import pages, settings_page

    async def platform_admin(chat: ChatRef, user_id: str) -> bool:
        ops = platforms.get(chat.platform)
        return ops is not None and await ops.is_admin(chat.chat_id, user_id)

    templates = Jinja2Templates(directory=HERE / "templates")
    views.install(templates.env)
    routes = [
        Route("/", home),
        Route("/login", login),
        *pages.routes(),
        *settings_page.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes, middleware=[Middleware(SecurityHeaders)], exception_handlers={HTTPException: error_page}
    )
    app.state.dashboard = Dashboard(
        store,
        service,
        platforms,
        signer,
        AdminCache(platform_admin, ttl=admin_ttl, clock=clock),
        templates,
        secure_cookies,
        clock,
    )
    return app


class SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(key.encode(), value.encode()) for key, value in SECURITY_HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


async def home(request: Request) -> Response:
    return dashboard_of(request).render(
        request, "error.html", status=401, title="Open the dashboard from your chat", message=views.HOW_TO_OPEN
    )


async def login(request: Request) -> Response:
    """Open a signed link: check it and the person's admin rights, start the chat's session, drop the token."""
    dashboard = dashboard_of(request)
    try:
        grant = dashboard.signer.open_link(request.query_params.get("t", ""))
    except LinkError as error:
        raise HTTPException(401, str(error)) from None
    if not await dashboard.admins.is_admin(grant.chat, grant.user_id):
        raise HTTPException(403, "you are not an admin of this chat (any more)")
    value, _ = dashboard.signer.session_cookie(grant)
    path = chat_path(grant.chat)
    # not a redirect: a redirect stays part of a navigation that began on another site (the chat app), and
    # browsers withhold SameSite=Strict cookies from it; a page of ours moving on is a same-site navigation
    response = dashboard.render(request, "signed_in.html", target=path + "queue")
    response.set_cookie(
        COOKIE,
        value,
        max_age=dashboard.signer.session_seconds,
        path=path,
        httponly=True,
        samesite="strict",
        secure=dashboard.secure_cookies,
    )
    log.info("dashboard session opened for %s:%s by %s", grant.chat.platform, grant.chat.chat_id, grant.user_id)
    return response


async def guard(request: Request, *, write: bool = False) -> Grant:
    """The session of this request's chat, or an HTTP error. ``write``: also check the form's CSRF token."""
    dashboard = dashboard_of(request)
    chat = ChatRef(request.path_params["platform"], request.path_params["chat_id"])
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise HTTPException(401, "no session for this chat: run /dashboard in the chat for a link")
    try:
        grant = dashboard.signer.open_session(cookie)
    except LinkError as error:
        raise HTTPException(401, str(error)) from None
    if grant.chat != chat:  # a cookie is limited to its chat's path; never trust that alone
        raise HTTPException(403, "this session is for another chat")
    if write:
        form = await request.form()
        sent = form.get("csrf") or request.headers.get("x-csrf-token")
        if not same_token(sent if isinstance(sent, str) else None, grant.csrf):
            raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    if not await dashboard.admins.is_admin(chat, grant.user_id):
        raise HTTPException(403, "you are not an admin of this chat (any more)")
    return grant


async def error_page(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    dashboard = dashboard_of(request)
    title = {401: "Sign in again", 403: "Not allowed", 404: "Not found"}.get(error.status_code, "Error")
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"error": error.detail}, status_code=error.status_code)
    return dashboard.render(request, "error.html", status=error.status_code, title=title, message=error.detail)
