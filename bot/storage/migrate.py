"""Alembic migrations at start: bring the database to the newest revision in one transaction, whatever the engine.

A SQLite file of the aiosqlite releases (no ``alembic_version`` table, its version in ``PRAGMA user_version``) is
stamped with the revision of the same schema first, then upgraded in place. Several processes starting at once are
fine: on PostgreSQL the upgrade holds an advisory lock, on SQLite the write lock.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from bot.core.errors import StorageError

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).resolve().parent / "migrations"
# PRAGMA user_version of the aiosqlite releases -> the revision with the same schema
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003"}
# what this code writes to PRAGMA user_version: an aiosqlite release opening the file refuses it as "newer"
LEGACY_FENCE = 1000
_MIGRATION_LOCK = 0x626F74  # the advisory lock key that serialises upgrades on PostgreSQL


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this package's migrations, run on ``connection`` (see ``migrations/env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, target: str = "head") -> str:
    """Migrate to ``target`` inside the connection's transaction (the caller commits); return the revision reached."""
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    config = alembic_config(connection)
    scripts = ScriptDirectory.from_config(config)
    current = current_revision(connection)
    if current is None and sqlite:
        current = _stamp_legacy(connection, config)
    if current is not None and current not in {script.revision for script in scripts.walk_revisions()}:
        raise StorageError(
            f"the database schema is at revision {current}, newer than this bot knows "
            f"({scripts.get_current_head()}): upgrade the bot"
        )
    command.upgrade(config, target)
    if sqlite and connection.exec_driver_sql("PRAGMA user_version").scalar() != LEGACY_FENCE:
        connection.exec_driver_sql(f"PRAGMA user_version = {LEGACY_FENCE}")  # PRAGMA takes no parameters
    reached = current_revision(connection)
    assert reached is not None
    if reached != current:
        log.info("database schema migrated from revision %s to %s", current or "(empty)", reached)
    return reached


def _stamp_legacy(connection: Connection, config: Config) -> str | None:
    version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
    if version == 0:
        return None
    if version not in LEGACY_REVISIONS:
        raise StorageError(
            f"the database schema is version {version}, newer than this bot knows "
            f"({max(LEGACY_REVISIONS)}): upgrade the bot"
        )
    command.stamp(config, LEGACY_REVISIONS[version])
    return LEGACY_REVISIONS[version]
