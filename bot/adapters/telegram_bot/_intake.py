"""Durable Telegram intake: getUpdates -> the inbox -> the next offset; handlers run on updates read from the inbox.

Telegram forgets an update once a later ``getUpdates`` asks for an offset past it, so the offset moves only after
the batch is committed to the inbox. A crash loses nothing: updates not yet stored are delivered again (the inbox
recognises them by ``update_id``), and stored ones are handled after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging

from telegram import Bot, Update
from telegram.error import InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application

from bot.adapters.telegram_bot._retry import retry_seconds
from bot.core.intake import InboxEntry, InboxItem, Intake

log = logging.getLogger(__name__)

POLL_SECONDS = 10  # long-poll timeout
BATCH = 100  # Telegram's maximum per getUpdates
MAX_BACKOFF = 30.0

_current_item: contextvars.ContextVar[int | None] = contextvars.ContextVar("telegram_inbox_item", default=None)
# errors raised by handlers of the update being processed (PTB hands them to the error handler, not to us)
_handler_errors: contextvars.ContextVar[list[BaseException] | None] = contextvars.ContextVar(
    "telegram_handler_errors", default=None
)


def entry_of(update: Update) -> InboxEntry:
    """The inbox row of an update: its raw JSON, keyed by ``update_id``."""
    chat = update.effective_chat
    return InboxEntry(
        key=str(update.update_id),
        chat_id=str(chat.id) if chat else "",
        payload=json.dumps(update.to_dict()),  # ASCII escapes keep even lone surrogates storable
    )


def current_inbox_id() -> int | None:
    """The inbox row of the update being handled (its event marks it done in the same transaction)."""
    return _current_item.get()


def note_handler_error(error: BaseException | None) -> None:
    """Called by the error handler: the update being processed failed, so its inbox row is tried again."""
    errors = _handler_errors.get()
    if errors is not None and error is not None:
        errors.append(error)


async def process(application: Application, item: InboxItem) -> None:
    """Run the application's handlers on a stored update; raise what a handler raised so the row is retried."""
    update = Update.de_json(json.loads(item.payload), application.bot)
    errors: list[BaseException] = []
    token, item_token = _handler_errors.set(errors), _current_item.set(item.id)
    try:
        await application.process_update(update)
    finally:
        _handler_errors.reset(token)
        _current_item.reset(item_token)
    if errors:
        raise errors[0]


async def poll(bot: Bot, intake: Intake, stop: asyncio.Event, *, allowed_updates: list[str]) -> None:
    """Long-poll getUpdates until ``stop``; store each batch before asking for the next offset."""
    offset: int | None = None
    delay = 1.0
    while not stop.is_set():
        fetch = asyncio.create_task(
            bot.get_updates(
                offset=offset, limit=BATCH, timeout=POLL_SECONDS, allowed_updates=allowed_updates,
                read_timeout=POLL_SECONDS + 20,
            )
        )  # fmt: skip
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():  # stopping: what that poll would return stays unconfirmed, so Telegram keeps it
            fetch.cancel()
            with contextlib.suppress(BaseException):
                await fetch
            return
        try:
            updates = fetch.result()
        except InvalidToken:
            raise
        except TelegramError as error:
            wait = retry_seconds(error) if isinstance(error, RetryAfter) else delay
            log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", error, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            delay = min(delay * 2, MAX_BACKOFF)
            continue
        delay = 1.0
        if not updates:
            continue
        try:
            await intake.receive([entry_of(update) for update in updates])
        except Exception:  # not stored: the offset stays, so Telegram delivers the batch again
            log.exception("telegram: could not store %d updates; fetching them again", len(updates))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, MAX_BACKOFF)
            continue
        offset = updates[-1].update_id + 1
