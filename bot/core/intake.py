"""Durable intake: a message is recorded in the inbox before the platform is told it arrived, then handled from there.

An adapter calls ``Intake.receive`` (durable once it returns) and only then acknowledges the delivery (Telegram:
the next ``getUpdates`` offset). ``Intake.run`` hands pending rows to the adapter's ``process``, oldest first and
unfinished rows of an earlier run before anything new, at most ``concurrency`` at a time. A row that makes an event
is marked done in the event's own transaction; any other row once ``process`` returns. A failed attempt is retried
with a growing wait (an outage is waited out); after ``max_attempts`` the row is given up (marked done with the
error) so that one poison message cannot block the rest. On stop, intake ends, work in flight gets ``grace``
seconds, and whatever is left waits for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

LEASE_SECONDS = 120.0  # a claimed row comes back to the pool if its worker dies without finishing it
MAX_ATTEMPTS = 8  # with the backoff below: given up after about 4 minutes of failures (an outage is waited out)
RETRY_BACKOFF = 2.0  # seconds before the second attempt; doubles per attempt, at most MAX_RETRY_WAIT
MAX_RETRY_WAIT = 60.0
PRUNE_AFTER_SECONDS = 3 * 86400  # done rows recognise redeliveries (Telegram keeps unconfirmed updates 24 h)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One delivery to record: ``key`` is unique per platform (a redelivery has the same key)."""

    key: str
    chat_id: str
    payload: str  # what the adapter needs to handle it later (JSON)
    seq: int = 0  # ordering within the chat where the platform has one (Discord: the message id)


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A recorded delivery, claimed for handling; ``attempts`` counts this one."""

    id: int
    platform: str
    key: str
    chat_id: str
    seq: int
    payload: str
    attempts: int


class InboxStore(Protocol):
    """The inbox part of the store (``bot.storage.Storage`` implements it)."""

    async def inbox_add(self, platform: str, entries: Sequence[InboxEntry], *, now: float) -> int: ...
    async def inbox_claim(
        self, platform: str, *, limit: int, now: float, lease: float, skip: Sequence[int] = ()
    ) -> list[InboxItem]: ...
    async def inbox_done(self, item_id: int, *, now: float, error: str | None = None) -> None: ...
    async def inbox_retry(self, item_id: int, *, at: float) -> None: ...
    async def inbox_release(self, platform: str) -> int: ...
    async def inbox_counts(self, platform: str) -> tuple[int, int]: ...
    async def inbox_last_seq(self, platform: str, chat_id: str) -> int | None: ...
    async def inbox_prune(self, *, before: float) -> int: ...


Process = Callable[[InboxItem], Awaitable[None]]


class Intake:
    """Records deliveries and works through them; one per platform and process."""

    def __init__(
        self,
        store: InboxStore,
        platform: str,
        *,
        concurrency: int = 64,
        max_attempts: int = MAX_ATTEMPTS,
        lease: float = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.platform = platform
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._lease = lease
        self._clock = clock
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    async def receive(self, entries: Sequence[InboxEntry]) -> int:
        """Record deliveries durably (one transaction); returns how many were new. Acknowledge only after this."""
        new = await self._store.inbox_add(self.platform, entries, now=self._clock()) if entries else 0
        if new:
            self._wake.set()
        return new

    async def last_seq(self, chat_id: str) -> int | None:
        """The highest ``seq`` recorded in the chat (Discord: the newest message handled in that channel)."""
        return await self._store.inbox_last_seq(self.platform, chat_id)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, process: Process, stop: asyncio.Event, *, grace: float) -> None:
        """Hand pending rows to ``process`` until ``stop`` is set; then finish in-flight work within ``grace``."""
        released = await self._store.inbox_release(self.platform)  # one process per SQLite file: leftovers are ours
        await self._store.inbox_prune(before=self._clock() - PRUNE_AFTER_SECONDS)
        pending, _ = await self._store.inbox_counts(self.platform)
        if pending:
            log.info("%s inbox: %d messages left from before (%d were in flight)", self.platform, pending, released)
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                await self._fill(process)
                self._wake.clear()
                waiters = {stopping, asyncio.create_task(self._wake.wait())}
                if len(self._in_flight) < self._concurrency:
                    waiters.add(asyncio.create_task(asyncio.sleep(1.0)))  # rows whose lease ran out
                waiters |= set(self._in_flight.values())
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters - {stopping, *self._in_flight.values()}:
                    waiter.cancel()
        finally:
            stopping.cancel()
            await self._finish(grace)

    async def _fill(self, process: Process) -> None:
        room = self._concurrency - len(self._in_flight)
        if room <= 0:
            return
        items = await self._store.inbox_claim(
            self.platform, limit=room, now=self._clock(), lease=self._lease, skip=tuple(self._in_flight)
        )
        for item in items:
            task = asyncio.create_task(self._handle(process, item), name=f"inbox-{item.id}")
            self._in_flight[item.id] = task
            task.add_done_callback(lambda _, item_id=item.id: self._done(item_id))

    def _done(self, item_id: int) -> None:
        self._in_flight.pop(item_id, None)
        self._wake.set()

    async def _handle(self, process: Process, item: InboxItem) -> None:
        try:
            await process(item)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # one bad message must not stop the others
            if item.attempts >= self._max_attempts:
                log.exception("%s inbox: giving up on %s after %d attempts", self.platform, item.key, item.attempts)
                await self._store.inbox_done(item.id, now=self._clock(), error=f"{type(error).__name__}: {error}")
            else:
                wait = min(RETRY_BACKOFF * 2 ** (item.attempts - 1), MAX_RETRY_WAIT)
                log.warning("%s inbox: %s failed (%s); retrying in %.0f s", self.platform, item.key, error, wait)
                await self._store.inbox_retry(item.id, at=self._clock() + wait)
            return
        await self._store.inbox_done(item.id, now=self._clock())

    async def _finish(self, grace: float) -> None:
        """Let work in flight finish for ``grace`` seconds; cancel the rest (their rows stay pending)."""
        tasks = list(self._in_flight.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=max(grace, 0.0))
        for task in late:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*late, return_exceptions=True)
        if late:
            log.warning("%s inbox: %d messages did not finish in %g s; they stay for the next start", self.platform,
                        len(late), grace)  # fmt: skip
