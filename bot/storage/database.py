"""``Storage``: aiosqlite connections (one writer, one reader), serialised transactions, patient with locks."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiosqlite

from bot.core.errors import StorageBusyError, StorageError
from bot.core.intake import InboxEntry, InboxItem
from bot.core.outbox import PendingAction
from bot.core.records import ActionReport, AuditEntry, ChatSettings, ChatStats, EventRecord, NewEvent, Recorded
from bot.core.types import ChatRef
from bot.storage import chat_settings, events, inbox
from bot.storage.schema import SCHEMA_VERSION, migrate, schema_version

T = TypeVar("T")
Work = Callable[[aiosqlite.Connection], Awaitable[T]]

_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
ACTION_LEASE_SECONDS = 60.0  # an action not reported by then (the process died) is carried out by due_actions


class Storage:
    """Chat settings, the moderation log, strikes, feedback and the admin audit log in one SQLite file.

    Writes hold an asyncio lock for their whole transaction on the write connection, so concurrent tasks queue up
    instead of interleaving statements; reads use a second connection and go on meanwhile (WAL). Writes that belong
    together (an event and its strike, a settings change and its audit entries) are one ``BEGIN IMMEDIATE``
    transaction. When another process holds the database, SQLite waits ``busy_timeout`` seconds per attempt and the
    whole transaction is retried until ``lock_timeout`` runs out; then ``StorageBusyError`` says so and nothing was
    half-written.
    """

    def __init__(
        self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, path: str, *, lock_timeout: float
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._path = path
        self._lock_timeout = lock_timeout
        self._write_lock = asyncio.Lock()
        # reads use their own connection so they go on while a write waits for another process's lock (WAL)
        self._read_lock = self._write_lock if reader is writer else asyncio.Lock()

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout: float = 5.0, lock_timeout: float = 30.0) -> Storage:
        """Open (creating the file and its folder) and migrate the database to the current schema."""
        name = str(path)
        if name != ":memory:":
            try:
                Path(name).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageError(f"cannot create the folder of the database {name}: {error.strerror}") from None
        opened: list[aiosqlite.Connection] = []
        try:
            for _ in range(1 if name == ":memory:" else 2):
                opened.append(await aiosqlite.connect(name, timeout=busy_timeout, isolation_level=None))
            storage = cls(opened[0], opened[-1], name, lock_timeout=lock_timeout)
            await storage._setup(busy_timeout)
        except BaseException as error:
            for conn in opened:
                await conn.close()
            if isinstance(error, sqlite3.Error):
                raise StorageError(f"cannot open the database {name}: {error}") from None
            raise
        return storage

    @classmethod
    async def open_read_only(cls, path: str | Path, *, busy_timeout: float = 5.0) -> Storage:
        """Open an existing database for reading only, even in a folder this user cannot write (no migration).

        SQLite in WAL mode needs to write its shared-memory file next to the database; where it cannot, the file is
        opened as immutable, which is right there because no one can be writing it either.
        """
        uri = Path(os.path.abspath(path)).as_uri()  # noqa: ASYNC240 - no I/O, only the working folder
        conn: aiosqlite.Connection | None = None
        for mode in ("mode=ro", "immutable=1"):
            try:
                conn = await aiosqlite.connect(f"{uri}?{mode}", uri=True, timeout=busy_timeout, isolation_level=None)
                version = await schema_version(conn)
                break
            except sqlite3.Error as error:
                if conn is not None:
                    await conn.close()
                    conn = None
                last = error
        if conn is None:
            raise StorageError(f"cannot read the database {path}: {last}") from None
        if version != SCHEMA_VERSION:
            await conn.close()
            raise StorageError(
                f"the database {path} has schema version {version}, this bot reads {SCHEMA_VERSION}: "
                "start the bot on it once (in a writable folder) to upgrade it"
            )
        return cls(conn, conn, str(path), lock_timeout=busy_timeout)

    async def _setup(self, busy_timeout: float) -> None:
        async def pragmas(conn: aiosqlite.Connection) -> None:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            await conn.execute("PRAGMA foreign_keys = ON")

        async def schema(conn: aiosqlite.Connection) -> None:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: a crash of the process loses nothing
            await migrate(conn)

        try:
            await self._run(pragmas)
            await self._run(schema)
            if self._reader is not self._writer:
                await self._run(pragmas, write_connection=False)
        except sqlite3.DatabaseError as error:
            raise StorageError(f"{self._path} is not a usable SQLite database: {error}") from None

    @property
    def path(self) -> str:
        return self._path

    async def close(self) -> None:
        async with self._write_lock:
            await self._writer.close()
        if self._reader is not self._writer:
            async with self._read_lock:
                await self._reader.close()

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # settings and audit -------------------------------------------------------------------------------------------

    async def get_settings(self, chat: ChatRef) -> ChatSettings:
        return await self._read(lambda conn: chat_settings.load(conn, chat))

    async def update_settings(
        self, chat: ChatRef, actor_id: str, change: Callable[[ChatSettings], ChatSettings], *, now: float
    ) -> ChatSettings:
        """Apply ``change`` to the current settings; store them and one audit entry per changed field atomically."""

        async def work(conn: aiosqlite.Connection) -> ChatSettings:
            old = await chat_settings.load(conn, chat)
            new = change(old)
            diff = chat_settings.changes(old, new)
            if diff:
                await chat_settings.save(conn, new, now=now)
                await chat_settings.record_audit(conn, chat, actor_id, diff, now=now)
            return new

        return await self._run(work, write=True)

    async def audit_log(self, chat: ChatRef, *, limit: int = 50) -> list[AuditEntry]:
        return await self._read(lambda conn: chat_settings.audit_log(conn, chat, limit=limit))

    # moderation log -----------------------------------------------------------------------------------------------

    async def record_event(self, event: NewEvent) -> int:
        """Log the event and, when ``event.strike``, its strike in one transaction; return the event id."""
        return (await self.record_decision(event)).event_id

    async def record_decision(self, event: NewEvent, *, lease: float = ACTION_LEASE_SECONDS) -> Recorded:
        """The decision on a message, once per message (see ``events.record``), with its inbox row done.

        An action to carry out is due ``lease`` seconds later unless reported before: a crash in between leaves
        it for ``due_actions``.
        """
        return await self._run(lambda conn: events.record(conn, event, lease=lease), write=True)

    async def count_strikes(self, chat: ChatRef, author_id: str, *, since: float, excluding: str | None = None) -> int:
        """Uncleared strikes of the author in the chat since ``since``, but for the one of message ``excluding``."""
        return await self._read(
            lambda conn: events.count_strikes(conn, chat, author_id, since=since, excluding=excluding)
        )

    # intake inbox -------------------------------------------------------------------------------------------------

    async def inbox_add(self, platform: str, entries: Sequence[InboxEntry], *, now: float) -> int:
        return await self._run(lambda conn: inbox.add(conn, platform, entries, now=now), write=True)

    async def inbox_claim(
        self, platform: str, *, limit: int, now: float, lease: float, skip: Sequence[int] = ()
    ) -> list[InboxItem]:
        return await self._run(
            lambda conn: inbox.claim(conn, platform, limit=limit, now=now, lease=lease, skip=skip), write=True
        )

    async def inbox_done(self, item_id: int, *, now: float, error: str | None = None) -> None:
        await self._run(lambda conn: inbox.done(conn, item_id, now=now, error=error), write=True)

    async def inbox_retry(self, item_id: int, *, at: float) -> None:
        await self._run(lambda conn: inbox.retry(conn, item_id, at=at), write=True)

    async def inbox_release(self, platform: str) -> int:
        return await self._run(lambda conn: inbox.release(conn, platform), write=True)

    async def inbox_counts(self, platform: str) -> tuple[int, int]:
        return await self._read(lambda conn: inbox.counts(conn, platform))

    async def inbox_last_seq(self, platform: str, chat_id: str) -> int | None:
        return await self._read(lambda conn: inbox.last_seq(conn, platform, chat_id))

    async def inbox_prune(self, *, before: float) -> int:
        return await self._run(lambda conn: inbox.prune(conn, before=before), write=True)

    async def record_action_report(self, event_id: int, report: ActionReport, *, retry_at: float | None = None) -> None:
        """What the platform said when the action was carried out.

        With ``retry_at`` (a transient failure) the action is due again then; otherwise it is settled.
        """
        await self._run(lambda conn: events.set_action_report(conn, event_id, report, retry_at=retry_at), write=True)

    async def action_attempts(self, event_id: int) -> int:
        return await self._read(lambda conn: events.action_attempts(conn, event_id))

    async def due_actions(self, platform: str, *, now: float, limit: int, lease: float) -> list[PendingAction]:
        return await self._run(
            lambda conn: events.due_actions(conn, platform, now=now, limit=limit, lease=lease), write=True
        )

    async def release_actions(self, platform: str, *, now: float) -> int:
        return await self._run(lambda conn: events.release_actions(conn, platform, now=now), write=True)

    async def get_event(self, event_id: int) -> EventRecord:
        """The event, or ``UnknownEventError``."""
        return await self._read(lambda conn: events.get(conn, event_id))

    async def recent_events(self, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]:
        return await self._read(lambda conn: events.recent(conn, chat, limit=limit))

    async def record_feedback(
        self, event_id: int, actor_id: str, correct: bool, *, now: float
    ) -> tuple[EventRecord, bool]:
        """Store an admin's verdict; return the updated event and whether a strike was cleared by it."""

        async def work(conn: aiosqlite.Connection) -> tuple[EventRecord, bool]:
            cleared = await events.record_feedback(conn, event_id, actor_id, correct, now=now)
            return await events.get(conn, event_id), cleared

        return await self._run(work, write=True)

    async def stats(self, chat: ChatRef) -> ChatStats:
        async def work(conn: aiosqlite.Connection) -> ChatStats:
            settings = await chat_settings.load(conn, chat)
            return await events.stats(conn, chat, model=settings.model)

        return await self._read(work)

    async def reviewed_events(self) -> list[EventRecord]:
        """Every event an admin confirmed or rejected, oldest first."""
        return await self._read(events.reviewed)

    # transactions -------------------------------------------------------------------------------------------------

    async def _run(self, work: Work[T], *, write: bool = False, write_connection: bool = True) -> T:
        """Run ``work`` alone on its connection, retrying while another process holds the database.

        ``write``: in a write transaction. Otherwise a plain read, on the read connection unless ``write_connection``
        (set up and migrations use the writer).
        """
        reads_apart = not write and not write_connection
        conn, lock = (self._reader, self._read_lock) if reads_apart else (self._writer, self._write_lock)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lock_timeout
        delay = 0.02
        async with lock:
            while True:
                try:
                    return await (self._transaction(conn, work) if write else work(conn))
                except sqlite3.OperationalError as error:
                    if not _is_busy(error):
                        raise StorageError(f"database error in {self._path}: {error}") from error
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise StorageBusyError(
                            f"the database {self._path} stayed locked by another connection for "
                            f"{self._lock_timeout:g} s; nothing was written, try again"
                        ) from error
                    await asyncio.sleep(min(delay, remaining))
                    delay = min(delay * 2, 0.5)

    async def _read(self, work: Work[T]) -> T:
        return await self._run(work, write_connection=False)

    @staticmethod
    async def _transaction(conn: aiosqlite.Connection, work: Work[T]) -> T:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            result = await work(conn)
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        return result


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES  # extended codes keep the primary code in the low byte
    return "locked" in str(error) or "busy" in str(error)
