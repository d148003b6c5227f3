"""``Storage``: the bot's state in SQLite (default) or PostgreSQL through one SQLAlchemy Core query layer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool, QueuePool

from bot.core.errors import StorageBusyError, StorageError
from bot.core.intake import InboxEntry, InboxItem
from bot.core.outbox import PendingAction
from bot.core.records import (
    ActionReport,
    AuditEntry,
    ChatSettings,
    ChatStats,
    DailyCounts,
    EventRecord,
    NewEvent,
    Recorded,
)
from bot.core.types import ChatRef
from bot.storage import chat_settings, dashboard, events, inbox
from bot.storage.engine import WRITE, create_engine, database_url, describe, is_busy, is_memory
from bot.storage.migrate import current_revision, head_revision, upgrade
from bot.storage.queries import lock
from bot.storage.settings_cache import SettingsCache

T = TypeVar("T")
Work = Callable[[AsyncConnection], Awaitable[T]]

ACTION_LEASE_SECONDS = 60.0  # an action not reported by then (the process died) is carried out by due_actions
SETTINGS_TTL = 0.5  # seconds another process's settings change may take to show here (see ``settings_cache``)


class Storage:
    """Chat settings, the moderation log, strikes, feedback and the admin audit log, shared by every bot process.

    Writes that belong together (an event and its strike, a settings change and its audit entries) are one
    transaction. Writes that read before they write (strike counting, settings changes) first lock their key:
    PostgreSQL takes an advisory lock per chat (settings) or per chat and author (strikes); SQLite's write
    transactions are ``BEGIN IMMEDIATE`` and one process also queues its own writes on an asyncio lock instead of
    spinning on the file lock. While another process holds the database (SQLite) or PostgreSQL aborts a transaction
    to break a deadlock, the whole transaction is retried until ``lock_timeout``; then ``StorageBusyError`` says so
    and nothing was half-written.
    """

    def __init__(self, engine: AsyncEngine, *, lock_timeout: float, settings_ttl: float = SETTINGS_TTL) -> None:
        self._engine = engine
        self._name = describe(engine.url)
        self._lock_timeout = lock_timeout
        self._settings = SettingsCache(settings_ttl)
        # one waiter per key in this process: the others queue here instead of each holding a pooled connection
        # while they wait for the database lock of the same key
        self._key_locks: weakref.WeakValueDictionary[tuple[str, ...], asyncio.Lock] = weakref.WeakValueDictionary()
        sqlite = engine.dialect.name == "sqlite"
        # at most as many transactions at once as the pool has connections: the others wait here, in order and
        # without a deadline, instead of timing out in the pool when a burst of messages outruns the database
        self._slots = asyncio.Semaphore(_capacity(engine.pool))
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if sqlite else None
        # an in-memory SQLite database is one connection: reads queue behind writes there
        self._read_lock = self._write_lock if is_memory(engine.url) else None

    @classmethod
    async def open(
        cls,
        target: str | Path,
        *,
        busy_timeout: float = 5.0,
        lock_timeout: float = 30.0,
        schema: str | None = None,
        settings_ttl: float = SETTINGS_TTL,
    ) -> Storage:
        """Open ``target`` (a SQLite path, ``sqlite:///path`` or ``postgresql://...``) and migrate it to the newest
        schema. ``schema``: the PostgreSQL schema to use instead of ``public`` (it must exist)."""
        url = database_url(target)
        engine = create_engine(url, busy_timeout=busy_timeout, schema=schema, pool_timeout=lock_timeout)
        storage = cls(engine, lock_timeout=lock_timeout, settings_ttl=settings_ttl)
        try:
            await storage._write(lambda conn: conn.run_sync(upgrade))
        except BaseException as error:
            await engine.dispose()
            cause = error.__cause__ if isinstance(error, StorageError) else error
            if isinstance(cause, DBAPIError):
                if url.get_backend_name() == "sqlite":
                    why = _first_line(cause)
                    raise StorageError(f"{storage.name} is not a usable SQLite database: {why}") from None
                raise StorageError(f"cannot open the database {storage.name}: {_first_line(cause)}") from None
            raise
        return storage

    @classmethod
    async def open_read_only(cls, target: str | Path, *, busy_timeout: float = 5.0) -> Storage:
        """Open an existing database only to read it, with no migration: for SQLite even in a folder this user
        cannot write. SQLite in WAL mode writes a shared-memory file next to the database; where it cannot, the file
        is opened as immutable, which is right there since no one can be writing it either."""
        url = database_url(target)
        if url.get_backend_name() != "sqlite" or is_memory(url):
            return await cls.open(target, busy_timeout=busy_timeout)
        path = os.path.abspath(url.database or "")  # noqa: ASYNC240 - no I/O, only the working folder
        last: BaseException | None = None
        for mode in ("mode=ro", "immutable=1"):
            engine = create_async_engine(
                f"sqlite+aiosqlite:///file:{path}?{mode}&uri=true", connect_args={"timeout": busy_timeout}
            )
            try:
                async with engine.connect() as conn:
                    revision = await conn.run_sync(current_revision)
            except DBAPIError as error:
                await engine.dispose()
                last = error
                continue
            if revision != head_revision():
                await engine.dispose()
                raise StorageError(
                    f"the database {path} is at schema revision {revision}, this bot reads {head_revision()}: "
                    "start the bot on it once (in a writable folder) to upgrade it"
                )
            return cls(engine, lock_timeout=busy_timeout)
        raise StorageError(f"cannot read the database {path}: {_first_line(last or StorageError())}")

    @property
    def name(self) -> str:
        """The database, for messages: a SQLite path or a URL without its password."""
        url = self._engine.url
        return url.database or ":memory:" if url.get_backend_name() == "sqlite" else self._name

    @property
    def path(self) -> str:
        return self._engine.url.database or ":memory:"

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # settings and audit -------------------------------------------------------------------------------------------

    async def get_settings(self, chat: ChatRef) -> ChatSettings:
        """The chat's settings as read at most ``settings_ttl`` seconds ago (see ``settings_cache``)."""
        return await self._settings.get(chat, lambda: self._read(lambda conn: chat_settings.load(conn, chat)))

    async def update_settings(
        self, chat: ChatRef, actor_id: str, change: Callable[[ChatSettings], ChatSettings], *, now: float
    ) -> ChatSettings:
        """Apply ``change`` to the current settings; store them and one audit entry per changed field atomically."""

        async def work(conn: AsyncConnection) -> ChatSettings:
            await lock(conn, "settings", chat.platform, chat.chat_id)
            old = await chat_settings.load(conn, chat)
            new = change(old)
            diff = chat_settings.changes(old, new)
            if diff:
                await chat_settings.save(conn, new, now=now)
                await chat_settings.record_audit(conn, chat, actor_id, diff, now=now)
            return new

        try:
            async with self._key_locks.setdefault(("settings", chat.platform, chat.chat_id), asyncio.Lock()):
                return await self._write(work)
        finally:
            self._settings.invalidate(chat)

    async def audit_log(self, chat: ChatRef, *, limit: int = 50) -> list[AuditEntry]:
        return await self._read(lambda conn: chat_settings.audit_log(conn, chat, limit=limit))

    # moderation log -----------------------------------------------------------------------------------------------

    async def record_event(self, event: NewEvent) -> int:
        """Log the event and, when ``event.strike``, its strike in one transaction; return the event id."""
        return await self._write(lambda conn: events.insert(conn, event))

    async def record_decision(
        self,
        chat: ChatRef,
        author_id: str,
        *,
        since: float,
        decide: Callable[[int], tuple[T, NewEvent | None]],
        excluding: str | None = None,
        lease: float = ACTION_LEASE_SECONDS,
    ) -> tuple[T, Recorded | None]:
        """Count the author's strikes since ``since`` (but for message ``excluding``), ``decide`` with that count,
        log the decision it returns once per message (``events.record``), its inbox row done in the same transaction.

        One transaction holding the (chat, author) lock: two processes moderating the same author at once count
        each other's strikes instead of both seeing the same number. Returns what ``decide`` returned first and
        what was recorded (None when it returned no event).
        """

        key = ("strikes", chat.platform, chat.chat_id, author_id)

        async def work(conn: AsyncConnection) -> tuple[T, Recorded | None]:
            await lock(conn, *key)
            prior = await events.count_strikes(conn, chat, author_id, since=since, excluding=excluding)
            result, event = decide(prior)
            return result, None if event is None else await events.record(conn, event, lease=lease)

        async with self._key_locks.setdefault(key, asyncio.Lock()):
            return await self._write(work)

    async def count_strikes(self, chat: ChatRef, author_id: str, *, since: float, excluding: str | None = None) -> int:
        return await self._read(
            lambda conn: events.count_strikes(conn, chat, author_id, since=since, excluding=excluding)
        )

    async def record_action_report(self, event_id: int, report: ActionReport, *, retry_at: float | None = None) -> None:
        """What the platform said when the action was carried out; with ``retry_at`` it is due again then."""
        await self._write(lambda conn: events.set_action_report(conn, event_id, report, retry_at=retry_at), single=True)

    async def action_attempts(self, event_id: int) -> int:
        return await self._read(lambda conn: events.action_attempts(conn, event_id))

    async def due_actions(self, platform: str, *, now: float, limit: int, lease: float) -> list[PendingAction]:
        return await self._write(lambda conn: events.due_actions(conn, platform, now=now, limit=limit, lease=lease))

    async def release_actions(self, platform: str, *, now: float) -> int:
        """At start, actions cut short by a dead process are due at once (SQLite only, as ``inbox_release``)."""
        if self.dialect != "sqlite":
            return 0
        return await self._write(lambda conn: events.release_actions(conn, platform, now=now))

    # intake inbox -------------------------------------------------------------------------------------------------

    async def inbox_add(self, platform: str, entries: Sequence[InboxEntry], *, now: float) -> int:
        return await self._write(lambda conn: inbox.add(conn, platform, entries, now=now))

    async def inbox_claim(
        self, platform: str, *, limit: int, now: float, lease: float, skip: Sequence[int] = ()
    ) -> list[InboxItem]:
        return await self._write(lambda conn: inbox.claim(conn, platform, limit=limit, now=now, lease=lease, skip=skip))

    async def inbox_done(self, item_id: int, *, now: float, error: str | None = None) -> None:
        await self._write(lambda conn: inbox.done(conn, item_id, now=now, error=error))

    async def inbox_retry(self, item_id: int, *, at: float) -> None:
        await self._write(lambda conn: inbox.retry(conn, item_id, at=at))

    async def inbox_release(self, platform: str) -> int:
        """At start, rows a dead process had claimed go back at once. SQLite only: one process per file there;
        on PostgreSQL another process may be working on them, so their leases run out instead."""
        if self.dialect != "sqlite":
            return 0
        return await self._write(lambda conn: inbox.release(conn, platform))

    async def inbox_counts(self, platform: str) -> tuple[int, int]:
        return await self._read(lambda conn: inbox.counts(conn, platform))

    async def inbox_last_seq(self, platform: str, chat_id: str) -> int | None:
        return await self._read(lambda conn: inbox.last_seq(conn, platform, chat_id))

    async def inbox_prune(self, *, before: float) -> int:
        return await self._write(lambda conn: inbox.prune(conn, before=before))

    async def get_event(self, event_id: int) -> EventRecord:
        """The event, or ``UnknownEventError``."""
        return await self._read(lambda conn: events.get(conn, event_id))

    async def recent_events(self, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]:
        return await self._read(lambda conn: events.recent(conn, chat, limit=limit))

    async def record_feedback(
        self, event_id: int, actor_id: str, correct: bool, *, now: float
    ) -> tuple[EventRecord, bool]:
        """Store an admin's verdict; return the updated event and whether a strike was cleared by it."""

        async def work(conn: AsyncConnection) -> tuple[EventRecord, bool]:
            await lock(conn, "event", str(event_id))
            cleared = await events.record_feedback(conn, event_id, actor_id, correct, now=now)
            return await events.get(conn, event_id), cleared

        return await self._write(work)

    async def stats(self, chat: ChatRef) -> ChatStats:
        async def work(conn: AsyncConnection) -> ChatStats:
            settings = await chat_settings.load(conn, chat)
            return await events.stats(conn, chat, model=settings.model)

        return await self._read(work)

    async def reviewed_events(self) -> list[EventRecord]:
        """Every event an admin confirmed or rejected, oldest first."""
        return await self._read(events.reviewed)

    # the dashboard (queries in ``bot.storage.dashboard``) ------------------------------------------------------------

    async def review_queue(
        self,
        chat: ChatRef,
        *,
        author_id: str | None = None,
        unreviewed_only: bool = False,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[EventRecord]:
        """The chat's flagged and acted events, newest first (see ``bot.storage.dashboard.queue``)."""
        return await self._read(
            lambda conn: dashboard.queue(
                conn, chat, author_id=author_id, unreviewed_only=unreviewed_only, before_id=before_id, limit=limit
            )
        )

    async def event_authors(self, chat: ChatRef, *, prefix: str = "", limit: int = 20) -> list[str]:
        return await self._read(lambda conn: dashboard.authors(conn, chat, prefix=prefix, limit=limit))

    async def daily_counts(self, chat: ChatRef, *, since: float) -> DailyCounts:
        """Events per day by action and by label, and reviews per day, since ``since``."""

        async def work(conn: AsyncConnection) -> DailyCounts:
            return DailyCounts(
                actions=await dashboard.daily_actions(conn, chat, since=since),
                labels=await dashboard.daily_labels(conn, chat, since=since),
                reviews=await dashboard.daily_reviews(conn, chat, since=since),
            )

        return await self._read(work)

    async def chat_reviewed_events(self, chat: ChatRef) -> list[EventRecord]:
        """The chat's reviewed events, oldest first."""
        return await self._read(lambda conn: dashboard.reviewed(conn, chat))

    async def secret(self, name: str, candidate: str, *, now: float) -> str:
        """The secret stored under ``name``, storing ``candidate`` when there is none yet."""
        return await self._write(lambda conn: dashboard.secret(conn, name, candidate, now=now))

    async def check_writable(self) -> None:
        """Raise ``StorageError`` unless a write transaction can start (SQLite: the file's write lock is free to take
        and the file writable; PostgreSQL: not a read-only server). Writes nothing."""

        async def work(conn: AsyncConnection) -> None:
            if conn.dialect.name == "postgresql":
                if (await conn.exec_driver_sql("SHOW transaction_read_only")).scalar() == "on":
                    raise StorageError("the server is read-only (a replica?)")
            else:
                await conn.exec_driver_sql("SELECT 1")  # after BEGIN IMMEDIATE, which a read-only file refuses

        await self._write(work)

    # transactions -------------------------------------------------------------------------------------------------

    async def _read(self, work: Work[T]) -> T:
        return await self._run(work)

    async def _write(self, work: Work[T], *, single: bool = False) -> T:
        """``single``: ``work`` runs one statement, atomic by itself (PostgreSQL: no BEGIN / COMMIT round trips)."""
        return await self._run(work, write=True, single=single)

    async def _run(self, work: Work[T], *, write: bool = False, single: bool = False) -> T:
        """Run ``work`` in one transaction (committed when ``write``), retrying while the database is busy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_timeout
        delay = 0.02
        queue = self._write_lock if write else self._read_lock
        async with queue or contextlib.nullcontext(), self._slots:
            while True:
                try:
                    async with self._transaction(write, single) as conn:
                        return await work(conn)
                except (DBAPIError, PoolTimeout) as error:
                    if isinstance(error, DBAPIError) and not is_busy(error):
                        if isinstance(error, IntegrityError):
                            raise StorageError(f"the database refused the write: {_first_line(error)}") from error
                        raise StorageError(f"database error in {self.name}: {_first_line(error)}") from error
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise StorageBusyError(
                            f"the database {self.name} stayed locked by another connection for "
                            f"{self._lock_timeout:g} s; nothing was written, try again"
                        ) from error
                    await asyncio.sleep(min(delay, remaining))
                    delay = min(delay * 2, 0.5)

    @contextlib.asynccontextmanager
    async def _transaction(self, write: bool, single: bool = False) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            if write and single and conn.dialect.name == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            elif write:
                await conn.execution_options(**{WRITE: True})
                async with conn.begin():
                    yield conn
            else:
                if conn.dialect.name == "postgresql":  # one statement at a time: no BEGIN / ROLLBACK round trips
                    await conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn  # SQLite: in a deferred transaction, ended when the connection goes back to the pool


def _capacity(pool: Pool) -> int:
    """How many connections the pool hands out at once (a single shared connection: 1)."""
    if isinstance(pool, QueuePool):
        return pool.size() + max(pool._max_overflow, 0)  # the overflow limit has no public accessor
    return 1


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
