"""``await classifier.classify(texts, model=name)``: micro-batched, off the event loop, with a bounded model cache.

Each loaded model has a queue, a batching task and one worker thread: texts that arrive within ``max_wait_ms`` (up to
``max_batch``) share a forward pass, grouped by length so one long text does not pad many short ones; the model never
runs concurrently with itself and never on the event loop. Loaded models live in an LRU cache of ``cache_size``; a
model that fails to load raises ModelLoadError (remembered for ``retry_after_s``) and disturbs no loaded model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.core.backends.base import Backend, load_backend
from bot.core.errors import InferenceError, InvalidInputError, ModelLoadError
from bot.core.model_folder import FolderConfig
from bot.core.registry import ModelSpec, Registry
from bot.core.types import Classification, Summary, Task

log = logging.getLogger(__name__)
LoaderFn = Callable[..., Backend]  # (spec, *, cache_dir) -> Backend
# Texts in one forward pass are padded to the longest: start a new group when a text is this much longer.
GROUP_LENGTH_RATIO = 2.0
GROUP_MIN_TOKENS = 16


@dataclass(eq=False)
class _Item:
    text: str
    tokens: int  # a cheap estimate, only used to group texts of similar length
    future: asyncio.Future[tuple[np.ndarray, bool]]


@dataclass(eq=False)
class _Worker:
    """One loaded model: its queue, its batching task and the single thread that runs it."""

    spec: ModelSpec
    backend: Backend
    executor: ThreadPoolExecutor
    max_batch: int
    max_wait: float
    queue: asyncio.Queue[_Item | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"classifier-{self.spec.name}")

    def submit(self, texts: Sequence[str]) -> list[asyncio.Future[tuple[np.ndarray, bool]]]:
        loop = asyncio.get_running_loop()
        futures = []
        for text in texts:
            future: asyncio.Future[tuple[np.ndarray, bool]] = loop.create_future()
            tokens = min(self.backend.max_length, len(text) // 4 + 2)
            self.queue.put_nowait(_Item(text, tokens, future))
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
            batch = [first]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
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
            live = [item for item in batch if not item.future.done()]  # callers may have been cancelled
            if live:
                await self._serve(loop, live)

    async def _serve(self, loop: asyncio.AbstractEventLoop, items: list[_Item]) -> None:
        groups = _group_by_length(items)
        try:
            results = await loop.run_in_executor(self.executor, _predict_groups, self.backend, groups)
        except Exception as error:  # one bad batch fails its callers, never the batching task
            log.exception("model %s failed on a batch of %d texts", self.spec.name, len(items))
            failure = InferenceError(f"model '{self.spec.name}' failed on a batch: {type(error).__name__}: {error}")
            for item in items:
                if not item.future.done():
                    item.future.set_exception(failure)
            return
        for group, (probabilities, truncated) in zip(groups, results, strict=True):
            for row, item in enumerate(group):
                if not item.future.done():
                    item.future.set_result((probabilities[row], bool(truncated[row])))


class Classifier:
    """Scores texts with the models of a registry, loading each on first use (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        *,
        loader: LoaderFn = load_backend,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        cache_size: int = 3,
        cache_dir: str | Path | None = None,
        retry_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1 or cache_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and cache_size must be >= 1 and max_wait_ms >= 0")
        self.registry = registry
        self._loader = loader
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000
        self._cache_size = cache_size
        self._cache_dir = cache_dir
        self._retry_after = retry_after_s
        self._clock = clock
        self._workers: OrderedDict[str, _Worker] = OrderedDict()  # least recently used first
        self._loading: dict[str, asyncio.Task[_Worker]] = {}
        self._failures: dict[str, tuple[float, ModelLoadError]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]:
        """One Classification per text, in order. Raises UnknownModelError, ModelLoadError, InvalidInputError."""
        cleaned = _validate(texts)
        spec = self.registry.get(model or self.registry.default)
        if not cleaned:
            return []
        worker = await self._worker(spec)
        rows = await asyncio.gather(*worker.submit(cleaned))
        labels = worker.backend.labels
        return [_classification(spec, labels, probabilities, truncated) for probabilities, truncated in rows]

    async def load(self, model: str | None = None) -> None:
        """Load ``model`` (default: the registry's default) now, so the first message does not wait for it."""
        await self._worker(self.registry.get(model or self.registry.default))

    async def folder_config(self, model: str | None = None) -> FolderConfig:
        """The model folder's own settings (thresholds, languages, ...), loading the model if needed.

        With models.yaml and the chat's overrides they resolve through ``model_folder.resolve_thresholds``.
        """
        worker = await self._worker(self.registry.get(model or self.registry.default))
        return getattr(worker.backend, "folder", None) or FolderConfig()

    def loaded_models(self) -> list[str]:
        """Names of the models in memory, least recently used first."""
        return list(self._workers)

    async def aclose(self) -> None:
        """Finish queued work, stop every model's task and thread, cancel loads in progress."""
        for task in self._loading.values():
            task.cancel()
        await asyncio.gather(*self._loading.values(), return_exceptions=True)
        workers, self._workers = list(self._workers.values()), OrderedDict()
        await asyncio.gather(*(worker.close() for worker in workers), *self._closing)

    async def _worker(self, spec: ModelSpec) -> _Worker:
        worker = self._workers.get(spec.name)
        if worker is not None:
            self._workers.move_to_end(spec.name)
            return worker
        failed = self._failures.get(spec.name)
        if failed is not None and self._clock() - failed[0] < self._retry_after:
            raise failed[1]
        task = self._loading.get(spec.name)
        if task is None:  # concurrent first requests share one load
            task = asyncio.get_running_loop().create_task(self._load(spec), name=f"load-{spec.name}")
            self._loading[spec.name] = task
            task.add_done_callback(lambda _: self._loading.pop(spec.name, None))
        return await asyncio.shield(task)

    async def _load(self, spec: ModelSpec) -> _Worker:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{spec.name}")
        try:
            backend = await asyncio.get_running_loop().run_in_executor(executor, self._load_backend, spec)
        except BaseException as error:
            executor.shutdown(wait=False)
            if isinstance(error, ModelLoadError):
                self._failures[spec.name] = (self._clock(), error)
            raise
        self._failures.pop(spec.name, None)
        worker = _Worker(spec, backend, executor, self._max_batch, self._max_wait)
        worker.start()
        self._workers[spec.name] = worker
        while len(self._workers) > self._cache_size:
            _, evicted = self._workers.popitem(last=False)
            closing = asyncio.get_running_loop().create_task(evicted.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        return worker

    def _load_backend(self, spec: ModelSpec) -> Backend:
        try:
            return self._loader(spec, cache_dir=self._cache_dir)
        except ModelLoadError:
            raise
        except Exception as error:  # a custom loader's failure is still this model's failure, not the process's
            raise ModelLoadError(spec.name, f"{type(error).__name__}: {error}") from error


def _validate(texts: Sequence[str]) -> list[str]:
    """Check the input is a sequence of strings; drop NUL characters and unpaired surrogates."""
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a list of strings, not {type(texts).__name__}")
    cleaned = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"text {index} is {type(text).__name__}, not str")
        text = text.replace("\x00", "")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # e.g. a lone surrogate from a broken client: the tokenizer cannot take it
            text = text.encode("utf-8", "replace").decode("utf-8")
        cleaned.append(text)
    return cleaned


def _group_by_length(items: list[_Item]) -> list[list[_Item]]:
    """Sort by estimated length and split where padding to the group's longest text would waste the most."""
    ordered = sorted(items, key=lambda item: item.tokens)
    groups: list[list[_Item]] = [[ordered[0]]]
    for item in ordered[1:]:
        shortest = groups[-1][0].tokens
        if item.tokens - shortest >= GROUP_MIN_TOKENS and item.tokens > GROUP_LENGTH_RATIO * shortest:
            groups.append([item])
        else:
            groups[-1].append(item)
    return groups


def _predict_groups(backend: Backend, groups: list[list[_Item]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Runs in the model's thread: one forward pass per length group."""
    results = []
    for group in groups:
        prediction = backend.predict([item.text for item in group])
        results.append((prediction.probabilities, prediction.truncated))
    return results


def _classification(
    spec: ModelSpec, labels: tuple[str, ...], probabilities: np.ndarray, truncated: bool
) -> Classification:
    scores = tuple(float(score) for score in probabilities)
    return Classification(
        model=spec.name,
        task=spec.task,
        labels=labels,
        scores=scores,
        summary=summarize(spec, labels, scores),
        truncated=truncated,
    )


def summarize(spec: ModelSpec, labels: tuple[str, ...], scores: tuple[float, ...]) -> Summary:
    """The original demo's verdict, plus the top label other than toxic.

    Toxic when any label reaches its threshold: with per-label thresholds a threat can pass its own while the
    ``toxic`` score stays under toxic's, and "not toxic" beside a flagged threat would contradict the table.
    """
    by_label = dict(zip(labels, scores, strict=True))
    if spec.task is Task.SINGLE_LABEL:
        label = max(by_label, key=by_label.__getitem__)
        return Summary(label=label, score=by_label[label], toxic=None)
    toxic = any(score >= spec.threshold(label) for label, score in by_label.items())
    others = {label: score for label, score in by_label.items() if label != "toxic"} or by_label
    label = max(others, key=others.__getitem__)
    return Summary(label=label, score=others[label], toxic=toxic)
