"""Serving the dashboard inside the bot process: the signing key, the links ``/dashboard`` hands out, and a uvicorn
server on the bot's own event loop (no second process, no thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.config import Settings
from bot.core.errors import DashboardError
from bot.core.types import ChatRef
from bot.dashboard.auth import SECRET_NAME, Signer
from bot.dashboard.ports import DashboardService, DashboardStore, PlatformDirectory
from bot.dashboard.web import create_app

log = logging.getLogger(__name__)


async def signing_key(
    secret: SecretStr | None, store: DashboardStore, *, clock: Callable[[], float] = time.time
) -> str:
    """``DASHBOARD_SECRET`` when set, else the key generated on first start and kept in the database."""
    if secret is not None and secret.get_secret_value().strip():
        return secret.get_secret_value().strip()
    return await store.secret(SECRET_NAME, secrets.token_urlsafe(32), now=clock())


@dataclass(frozen=True)
class DashboardLinks:
    """Makes the private links ``/dashboard`` answers with."""

    signer: Signer
    public_url: str  # where people reach the dashboard, e.g. http://127.0.0.1:8080 or https://mod.example.org

    def link(self, chat: ChatRef, admin_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/login?t={self.signer.link_token(chat, admin_id)}"

    @property
    def minutes(self) -> int:
        return self.signer.link_seconds // 60


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free port), or a DashboardError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise DashboardError(f"the dashboard cannot listen on {host}:{port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The bot's run loop owns SIGTERM and SIGINT and stops the dashboard itself."""
        yield


async def serve(app: Starlette, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve ``app`` on ``sock`` until ``stop`` is set. uvicorn's access log stays off: login URLs carry tokens."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", server_header=False)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http")
    host, port = sock.getsockname()[:2]
    log.info("dashboard listening on %s:%s", host, port)
    waiting = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        server.should_exit = True
        await task
        sock.close()


@dataclass
class DashboardServer:
    """The dashboard ready to serve: its app, its listening socket and the links ``/dashboard`` hands out."""

    app: Starlette
    sock: socket.socket
    links: DashboardLinks

    async def serve(self, stop: asyncio.Event) -> None:
        await serve(self.app, self.sock, stop)

    def close(self) -> None:
        self.sock.close()


async def build_dashboard(
    settings: Settings, store: DashboardStore, service: DashboardService, platforms: PlatformDirectory
) -> DashboardServer:
    """The dashboard of ``settings`` (DASHBOARD_*): key, socket (bound now, so a taken port fails at start), app."""
    port = settings.dashboard_port or 0
    key = await signing_key(settings.dashboard_secret, store)
    try:
        signer = Signer(key, link_seconds=settings.dashboard_link_minutes * 60)
    except ValueError as error:
        raise DashboardError(f"DASHBOARD_SECRET: {error}") from None
    sock = bind(settings.dashboard_host, port)
    url = settings.dashboard_public_url or _listening_url(settings.dashboard_host, sock.getsockname()[1])
    app = create_app(store, service, platforms, signer, secure_cookies=url.startswith("https://"))
    return DashboardServer(app, sock, DashboardLinks(signer, url))


def _listening_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
