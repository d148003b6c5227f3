"""Bot API calls that survive flood control, network errors and 5xx answers: tenacity, bounded waits."""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 3
MAX_FLOOD_WAIT = 30.0  # seconds: a longer flood wait gives up rather than stall a handler for minutes
NETWORK_BACKOFF = 1.0  # the first wait after a network error or a 5xx; doubles per attempt


def retry_seconds(error: RetryAfter) -> float:
    """How long Telegram asked us to wait (PTB returns int or timedelta depending on PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def is_transient(error: BaseException) -> bool:
    """Worth trying again later: flood control, no connection, a timeout or a 5xx (PTB: NetworkError)."""
    return isinstance(error, RetryAfter) or (isinstance(error, NetworkError) and not isinstance(error, BadRequest))


async def call_api(
    method: Callable[..., Awaitable[T]],
    *args: Any,
    attempts: int = MAX_ATTEMPTS,
    max_flood_wait: float = MAX_FLOOD_WAIT,
    **kwargs: Any,
) -> T:
    """``await method(*args, **kwargs)``, retrying transient failures, ``attempts`` in all.

    RetryAfter waits what Telegram asked (giving up when that is over ``max_flood_wait``); network errors and 5xx
    back off exponentially. BadRequest, Forbidden and the like are the caller's to handle and never retried.
    """
    backoff = wait_exponential(multiplier=NETWORK_BACKOFF, max=8.0)

    def retryable(error: BaseException) -> bool:
        if isinstance(error, RetryAfter):
            return retry_seconds(error) <= max_flood_wait
        return is_transient(error)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return retry_seconds(error) if isinstance(error, RetryAfter) else backoff(state)

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (%s); attempt %d of %d", _name(method), error, state.attempt_number, attempts)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        sleep=_sleep,
        reraise=True,
    )
    return await retrying(method, *args, **kwargs)


def describe(error: TelegramError) -> str:
    """A failure in the words admins read."""
    if isinstance(error, RetryAfter):
        return f"flood control: retry in {retry_seconds(error):.0f} s"
    return str(error)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)  # looked up at each call, so tests can stand in for the clock


def _name(method: Callable[..., Any]) -> str:
    return getattr(method, "__name__", repr(method))
