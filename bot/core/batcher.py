"""One loaded model's micro-batcher: a queue, a batching task and the single thread that runs the model.

Texts that arrive within ``max_wait`` share forward passes until the batch holds ``max_batch_tokens`` (estimated) or
``max_batch`` texts: a budget in tokens, because a pass costs what its padded tokens cost, not its row count. A batch is
split into groups of similar length and the groups run shortest first, each answering its callers as soon as it is
done, so short messages never wait behind a long one of the same batch. The model never runs concurrently with
itself and never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from bot.core.backends.base import Backend, Prediction
from bot.core.errors import InferenceError

log = logging.getLogger(__name__)
# Texts in one forward pass are padded to the longest: start a new group when a text is this much longer.
GROUP_LENGTH_RATIO = 2.0
GROUP_MIN_TOKENS = 16
CHARS_PER_TOKEN = 4  # for the estimate only: English chat averages 4-5 characters per WordPiece token
Result = tuple[np.ndarray, bool]  # probabilities, truncated


@dataclass(eq=False)
class _Item:
    text: str
    tokens: int  # an estimate from the length: only budgets batches and groups similar lengths
    future: asyncio.Future[Result]


def estimate_tokens(text: str, max_length: int) -> int:
    """A cheap token-count estimate (tokenising on the event loop would cost more than it saves)."""
    return min(max_length, len(text) // CHARS_PER_TOKEN + 2)


@dataclass(eq=False)
class ModelWorker:
    """Serves one loaded model; see the module docstring."""

    name: str
    backend: Backend
    executor: ThreadPoolExecutor
    max_batch: int
    max_batch_tokens: int
    max_wait: float
    queue: asyncio.Queue[_Item | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"classifier-{self.name}")

    def submit(self, texts: Sequence[str]) -> list[asyncio.Future[Result]]:
        loop = asyncio.get_running_loop()
        futures = []
        for text in texts:
            future: asyncio.Future[Result] = loop.create_future()
            self.queue.put_nowait(_Item(text, estimate_tokens(text, self.backend.max_length), future))
            futures.append(future)
        return futures

    async def close(self) -> None:
        """Serve what is queued, then stop the task and the thread."""
        self.queue.put_nowait(None)
        if self.task is not None:
            await asyncio.shield(self.task)
        self.executor.shutdown(wait=False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        closing = False
        while not closing:
            first = await self.queue.get()
            if first is None:
                return
            batch, tokens = [first], first.tokens
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch and tokens < self.max_batch_tokens:
                try:
                    item = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self.queue.get(), remaining)
                    except TimeoutError:
                        break
                if item is None:
                    closing = True
                    break
                batch.append(item)
                tokens += item.tokens
            live = [item for item in batch if not item.future.done()]  # callers may have been cancelled
            for group in group_by_length(live):
                await self._serve(loop, group)

    async def _serve(self, loop: asyncio.AbstractEventLoop, group: list[_Item]) -> None:
        try:
            prediction: Prediction = await loop.run_in_executor(
                self.executor, self.backend.predict, [item.text for item in group]
            )
        except Exception as error:  # one bad pass fails its callers, never the batching task
            log.exception("model %s failed on a pass of %d texts", self.name, len(group))
            failure = InferenceError(f"model '{self.name}' failed on a batch: {type(error).__name__}: {error}")
            for item in group:
                if not item.future.done():
                    item.future.set_exception(failure)
            return
        for row, item in enumerate(group):
            if not item.future.done():
                item.future.set_result((prediction.probabilities[row], bool(prediction.truncated[row])))


def group_by_length(items: list[_Item]) -> list[list[_Item]]:
    """Sort by estimated length and split where padding to the group's longest text would waste the most.

    Shortest group first: it is the cheapest pass, so the most callers are answered soonest.
    """
    if not items:
        return []
    ordered = sorted(items, key=lambda item: item.tokens)
    groups: list[list[_Item]] = [[ordered[0]]]
    for item in ordered[1:]:
        shortest = groups[-1][0].tokens
        if item.tokens - shortest >= GROUP_MIN_TOKENS and item.tokens > GROUP_LENGTH_RATIO * shortest:
            groups.append([item])
        else:
            groups[-1].append(item)
    return groups
