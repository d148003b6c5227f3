"""Telegram webhook workers behind one URL: a round-robin load balancer on 127.0.0.1 in front of bot processes."""

from __future__ import annotations

import itertools
import socket
from collections import deque
from typing import Any, Self

from aiohttp import ClientSession, web


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoadBalancer:
    """Forwards each POST to the next worker (round robin) or to the one ``send_next_to`` chose; records who got it."""

    def __init__(self, worker_ports: list[int], path: str = "/telegram/hook") -> None:
        self.path = path
        self.worker_ports = worker_ports
        self.routed: list[tuple[int, int]] = []  # (update_id, worker index)
        self._turns = itertools.cycle(range(len(worker_ports)))
        self._pinned: deque[int] = deque()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def send_next_to(self, *workers: int) -> None:
        """The next updates go to these workers, in order (then round robin again)."""
        self._pinned.extend(workers)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(self.path, self._forward)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        update: dict[str, Any] = await request.json()
        worker = self._pinned.popleft() if self._pinned else next(self._turns)
        self.routed.append((int(update.get("update_id", 0)), worker))
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-telegram", "content-type"))}
        assert self._session is not None
        target = f"http://127.0.0.1:{self.worker_ports[worker]}{self.path}"
        async with self._session.post(target, data=body, headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read())
