"""Process-wide logging: one stderr handler on the root logger, plain or JSON lines, every secret redacted.

The handler sits on the root logger, so records of third-party loggers (discord.py, python-telegram-bot, httpx,
aiohttp ...) pass through it too; its filter rewrites each record before it is formatted, so no secret from
``Settings`` (``DISCORD_TOKEN``, ``TELEGRAM_TOKEN``, ``TELEGRAM_WEBHOOK_SECRET`` and any later ``SecretStr`` field)
reaches a log line, a traceback or a stack dump.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import quote

from pydantic import SecretStr

from bot.config import Settings

HANDLER_NAME = "bot.logging_setup"  # marks our handler, so a second setup replaces it instead of adding one more
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Chatty at INFO (a line per HTTP request, long polls included): kept at WARNING unless LOG_LEVEL is DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "hpack", "alembic")
# Their DEBUG lines repeat every SQL statement with its parameters, message texts included: never below INFO.
PRIVATE_LOGGERS = ("aiosqlite",)
# SQLAlchemy logs each statement at INFO: never below WARNING.
SQL_LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool")


class SecretRedactor(logging.Filter):
    """Replaces each secret (and its URL-encoded form) by ``<NAME>`` in a record's message, traceback and stack."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        replacements: dict[str, str] = {}
        for name, value in secrets:
            for variant in _variants(value):
                replacements.setdefault(variant, f"<{name}>")
        # longest first, so a token is replaced whole before a part of it could be
        self._replacements = sorted(replacements.items(), key=lambda item: len(item[0]), reverse=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretRedactor:
        """Every ``SecretStr`` field of the settings that is set, named by its environment variable."""
        secrets = []
        for name, field in type(settings).model_fields.items():
            value = getattr(settings, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                secrets.append((field.alias or name.upper(), value.get_secret_value()))
        return cls(secrets)

    def redact(self, text: str) -> str:
        for secret, placeholder in self._replacements:
            if secret in text:
                text = text.replace(secret, placeholder)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._replacements:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: logging would print both raw, so redact both
            message = f"{record.msg!s} (arguments: {record.args!r})"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and exception/stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (it may be replaced after set-up)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def setup_logging(settings: Settings, *, default_level: str | None = None, stream: TextIO | None = None) -> None:
    """Configure the root logger once per process (calling it again replaces the previous set-up).

    The level is ``LOG_LEVEL`` when the environment sets it, else ``default_level`` (one-shot commands pass
    ``"WARNING"`` so their output stays clean), else the settings' default. ``LOG_JSON`` switches to JSON lines.
    """
    explicit = "log_level" in settings.model_fields_set
    level_name = (settings.log_level if explicit or default_level is None else default_level).upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {level_name!r}")

    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.name == HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.name = HANDLER_NAME
    handler.setFormatter(JsonFormatter() if settings.log_json else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretRedactor.from_settings(settings))
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)
    for name in PRIVATE_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    for name in SQL_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def _variants(secret: str) -> list[str]:
    """The secret as it may appear in a log: verbatim, URL-encoded, and a Telegram token's part after ``ID:``."""
    variants = {secret, quote(secret, safe="")}
    bot_id, colon, rest = secret.partition(":")
    if colon and bot_id.isdigit() and len(rest) >= 8:
        variants.add(rest)
    return [variant for variant in variants if variant]
