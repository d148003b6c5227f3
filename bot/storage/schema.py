"""Versioned schema: ``MIGRATIONS[i]`` takes a database from ``PRAGMA user_version`` i to i + 1, in one transaction."""

from __future__ import annotations

import aiosqlite

from bot.core.errors import StorageError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: settings, the moderation log, strikes and the admin audit log
    (
        """CREATE TABLE chat_settings (
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            model TEXT,
            thresholds TEXT NOT NULL DEFAULT '{}',
            action TEXT NOT NULL DEFAULT 'warn' CHECK (action IN ('flag', 'delete', 'warn', 'timeout')),
            acting_labels TEXT NOT NULL,
            strike_limit INTEGER NOT NULL DEFAULT 3 CHECK (strike_limit >= 0),
            strike_window_seconds INTEGER NOT NULL DEFAULT 86400 CHECK (strike_window_seconds > 0),
            timeout_seconds INTEGER NOT NULL DEFAULT 600 CHECK (timeout_seconds > 0),
            exempt_users TEXT NOT NULL DEFAULT '[]',
            exempt_roles TEXT NOT NULL DEFAULT '[]',
            log_channel TEXT,
            enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            updated_at REAL NOT NULL,
            PRIMARY KEY (platform, chat_id)
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            message_id TEXT NOT NULL,
            author_id TEXT NOT NULL,
            model TEXT NOT NULL,
            scores TEXT NOT NULL,
            action TEXT NOT NULL,
            reason TEXT NOT NULL,
            flagged TEXT NOT NULL DEFAULT '[]',
            triggered TEXT NOT NULL DEFAULT '[]',
            text TEXT NOT NULL DEFAULT '',
            text_stored INTEGER NOT NULL DEFAULT 0 CHECK (text_stored IN (0, 1)),
            timeout_seconds INTEGER NOT NULL DEFAULT 0,
            action_result TEXT
        )""",
        "CREATE INDEX events_by_chat ON events (platform, chat_id, created_at)",
        """CREATE TABLE strikes (
            id INTEGER PRIMARY KEY,
            event_id INTEGER NOT NULL UNIQUE REFERENCES events (id) ON DELETE CASCADE,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            author_id TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
        "CREATE INDEX strikes_by_author ON strikes (platform, chat_id, author_id, created_at)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            created_at REAL NOT NULL,
            platform TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            setting TEXT NOT NULL,
            old_value TEXT,
            new_value TEXT
        )""",
        "CREATE INDEX audit_by_chat ON audit_log (platform, chat_id, created_at)",
    ),
    # v2: admins review events (feedback clears strikes), chats may opt in to storing whole messages,
    # and each event keeps the thresholds it was compared with
    (
        """CREATE TABLE feedback (
            event_id INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
            actor_id TEXT NOT NULL,
            correct INTEGER NOT NULL CHECK (correct IN (0, 1)),
            created_at REAL NOT NULL
        )""",
        "ALTER TABLE strikes ADD COLUMN cleared_at REAL",
        "ALTER TABLE chat_settings ADD COLUMN store_text INTEGER NOT NULL DEFAULT 0 CHECK (store_text IN (0, 1))",
        "ALTER TABLE events ADD COLUMN thresholds TEXT NOT NULL DEFAULT '{}'",
    ),
    # v3: whether the adapter carried out the action is a typed column (``ActionReport.ok``); action_result keeps
    # the words. Older rows: the words the adapters used for success mean ok.
    (
        "ALTER TABLE events ADD COLUMN action_ok INTEGER CHECK (action_ok IN (0, 1))",
        "UPDATE events SET action_ok = CASE WHEN action_result IN ('done', 'flagged', 'deleted', 'warned', "
        "'timed out') THEN 1 ELSE 0 END WHERE action_result IS NOT NULL",
    ),
    # v4 (reliability): the intake inbox; one event per message (an edit updates it: ``revision``, ``text_hash``); an
    # action's state so that actions cut short by a crash or failed in an outage are carried out later
    (
        """CREATE TABLE inbox (
            id INTEGER PRIMARY KEY,
            platform TEXT NOT NULL,
            key TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            payload TEXT NOT NULL,
            received_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            claimed_until REAL,
            done_at REAL,
            error TEXT,
            UNIQUE (platform, key)
        )""",
        "CREATE INDEX inbox_pending ON inbox (platform, done_at, id)",
        "CREATE INDEX inbox_by_chat ON inbox (platform, chat_id, seq)",
        "ALTER TABLE events ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE events ADD COLUMN text_hash TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE events ADD COLUMN author_name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE events ADD COLUMN action_state TEXT NOT NULL DEFAULT 'settled' "
        "CHECK (action_state IN ('pending', 'retry', 'settled'))",
        "ALTER TABLE events ADD COLUMN action_attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE events ADD COLUMN action_due_at REAL",
        # older releases logged each edit as one more event: keep them all, apart from the first, under a marked id
        "UPDATE events SET message_id = message_id || '#' || id WHERE id NOT IN "
        "(SELECT MIN(id) FROM events GROUP BY platform, chat_id, message_id)",
        "CREATE UNIQUE INDEX events_by_message ON events (platform, chat_id, message_id)",
        "CREATE INDEX events_due ON events (platform, action_state, action_due_at) WHERE action_state != 'settled'",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Apply the missing migrations up to ``target`` (the connection must be in autocommit mode); return the version.

    Each step and its version bump are one transaction, so a crash leaves the database at a whole version.
    """
    current = await schema_version(conn)
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"the database schema is version {current}, newer than this bot knows ({SCHEMA_VERSION}): upgrade the bot"
        )
    for version in range(current + 1, target + 1):
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(version)}")  # PRAGMA takes no parameters
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return max(current, target)
