"""Actions carried out later: decisions whose action a crash cut short, or that failed for a transient reason.

Every acting decision is stored with its action ``pending`` and due a lease later; the adapter normally carries it out
at once and reports. A report that came too late (the process died) or that says "transient" (a network error, a 5xx,
flood control) leaves the action due again, with a growing wait; ``ActionRetrier`` carries out what is due. After
``MAX_ACTION_ATTEMPTS`` the last failure is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bot.core.types import ChatRef

log = logging.getLogger(__name__)

MAX_ACTION_ATTEMPTS = 8
ACTION_BACKOFF = 5.0  # seconds after the first failure; doubles per attempt up to ACTION_MAX_WAIT
ACTION_MAX_WAIT = 900.0
POLL_SECONDS = 2.0
LEASE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PendingAction:
    """A stored decision whose action is due: what an adapter needs to carry it out without the original event."""

    event_id: int
    chat: ChatRef
    message_id: str
    author_id: str
    author_name: str
    action: str
    reason: str
    triggered: tuple[str, ...]
    timeout_seconds: int
    attempts: int  # attempts so far
    place: str | None = None  # where the message is when the chat is wider (a Discord channel of the guild)


class ActionStore(Protocol):
    async def due_actions(self, platform: str, *, now: float, limit: int, lease: float) -> list[PendingAction]: ...
    async def release_actions(self, platform: str, *, now: float) -> int: ...


class ActionRetrier:
    """Carries out due actions of one platform until stopped; each result goes to ``report``."""

    def __init__(
        self,
        store: ActionStore,
        platform: str,
        carry_out: Callable[[PendingAction], Awaitable[object]],
        report: Callable[[int, object], Awaitable[None]],
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 32,
    ) -> None:
        self._store = store
        self._platform = platform
        self._carry_out = carry_out
        self._report = report
        self._clock = clock
        self._batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        """At start, actions a dead process left are due at once; then every few seconds, what is due."""
        released = await self._store.release_actions(self._platform, now=self._clock())
        if released:
            log.info("%s: %d actions cut short by the last stop are carried out now", self._platform, released)
        while not stop.is_set():
            due = await self._store.due_actions(
                self._platform, now=self._clock(), limit=self._batch, lease=LEASE_SECONDS
            )
            for action in due:
                if stop.is_set():
                    return  # still leased: due again after the lease, or at the next start
                try:
                    result = await self._carry_out(action)
                    await self._report(action.event_id, result)
                except Exception:  # one broken action must not stop the others; it comes back after its lease
                    log.exception("%s: carrying out event %d failed", self._platform, action.event_id)
            if len(due) < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=POLL_SECONDS)


def retry_delay(attempts: int) -> float:
    """The wait before attempt ``attempts + 1`` of an action."""
    return min(ACTION_BACKOFF * 2 ** max(attempts - 1, 0), ACTION_MAX_WAIT)
