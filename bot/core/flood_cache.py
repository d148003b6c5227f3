"""Scores of recently seen texts, so a raid that repeats one message hundreds of times is scored once.

Keyed by (model name, normalised text): the text as the model's tokenizer sees it (its normaliser, e.g. lowercasing
and accent stripping for an uncased model, and collapsed whitespace where the tokenizer splits on it anyway), so
copies that differ only in ways the model cannot see share one entry. Safe because scores do not depend on batch
mates. Entries live ``ttl_s`` seconds, at most ``maxsize`` of them (cachetools ``TTLCache``: LRU within the TTL).
A request for a text that is being scored right now waits for that pass instead of starting another.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache

DEFAULT_MAXSIZE = 4096
DEFAULT_TTL_S = 60.0


class FloodCache:
    """A bounded TTL/LRU map of ``key -> asyncio.Future`` (pending or done); failed or cancelled futures leave it."""

    def __init__(
        self,
        maxsize: int = DEFAULT_MAXSIZE,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        if maxsize < 0 or ttl_s < 0:
            raise ValueError("the flood cache's maxsize and ttl_s must be >= 0")
        self.enabled = maxsize > 0 and ttl_s > 0
        self._entries: TTLCache[Hashable, asyncio.Future[Any]] = TTLCache(max(1, maxsize), ttl_s or 1.0, timer=timer)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> asyncio.Future[Any] | None:
        """The entry's future (maybe still pending), counting the hit or the miss; None when disabled or absent."""
        if not self.enabled:
            return None
        future = self._entries.get(key)
        if future is None:
            self.misses += 1
        else:
            self.hits += 1
        return future

    def put(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        """Remember ``future`` for ``key``; it is forgotten again if it fails or is cancelled."""
        if not self.enabled:
            return
        self._entries[key] = future

        def forget_failure(done: asyncio.Future[Any]) -> None:
            if (done.cancelled() or done.exception() is not None) and self._entries.get(key) is done:
                del self._entries[key]

        future.add_done_callback(forget_failure)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0
