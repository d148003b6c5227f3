"""Bot API calls that survive flood control and brief network errors, with bounded waits."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 3
MAX_FLOOD_WAIT = 30.0  # seconds: a longer flood wait gives up rather than stall a handler for minutes
NETWORK_BACKOFF = 1.0


def retry_seconds(error: RetryAfter) -> float:
    """How long Telegram asked us to wait (PTB returns int or timedelta depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


async def call_api(
    method: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = MAX_ATTEMPTS,
    max_flood_wait: float = MAX_FLOOD_WAIT,
    **kwargs: Any,
) -> T:
    """``await method(*args, **kwargs)``, waiting out RetryAfter and retrying network errors, ``attempts`` in all.

    BadRequest (a NetworkError subclass in PTB) is the caller's to handle and is never retried.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await method(*args, **kwargs)
        except RetryAfter as error:
            wait = retry_seconds(error)
            if attempt == attempts or wait > max_flood_wait:
                raise
            log.warning("flood control on %s: waiting %.0f s (attempt %d)", _name(method), wait, attempt)
            await asyncio.sleep(wait)
        except BadRequest:
            raise
        except NetworkError as error:
            if attempt == attempts:
                raise
            log.warning("network error on %s: %s (attempt %d)", _name(method), error, attempt)
            await asyncio.sleep(NETWORK_BACKOFF * attempt)
    raise AssertionError("unreachable")


def _name(method: Callable[..., Any]) -> str:
    return getattr(method, "__name__", repr(method))
