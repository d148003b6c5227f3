"""``await classifier.classify(texts, model=name)``: micro-batched, off the event loop, with a bounded model cache.

Each loaded model has a ``batcher.ModelWorker``: texts that arrive within ``max_wait_ms`` share forward passes up to a
budget of ``max_batch_tokens`` (and ``max_batch`` texts), in groups of similar length, shortest first; the model never
runs concurrently with itself and never on the event loop. Identical texts scored by the same model within
``flood_ttl_s`` reuse the scores (``flood_cache``). Loaded models live in an LRU cache of ``cache_size``; a model that
fails to load raises ModelLoadError (remembered for ``retry_after_s``) and disturbs no loaded model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bot.core.backends.base import Backend, load_backend
from bot.core.batcher import ModelWorker
from bot.core.errors import InvalidInputError, ModelLoadError
from bot.core.flood_cache import DEFAULT_MAXSIZE, DEFAULT_TTL_S, FloodCache
from bot.core.model_folder import FolderConfig
from bot.core.registry import ModelSpec, Registry
from bot.core.types import Classification, Summary, Task

log = logging.getLogger(__name__)
LoaderFn = Callable[..., Backend]  # (spec, *, cache_dir) -> Backend
Row = tuple[np.ndarray, bool]  # one text's probabilities and truncated flag


class Classifier:
    """Scores texts with the models of a registry, loading each on first use (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        *,
        loader: LoaderFn = load_backend,
        max_batch: int = 64,
        max_batch_tokens: int = 2048,
        max_wait_ms: float = 5.0,
        cache_size: int = 3,
        flood_size: int = DEFAULT_MAXSIZE,
        flood_ttl_s: float = DEFAULT_TTL_S,
        cache_dir: str | Path | None = None,
        retry_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1 or max_batch_tokens < 1 or cache_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch, max_batch_tokens and cache_size must be >= 1 and max_wait_ms >= 0")
        self.registry = registry
        self.flood = FloodCache(flood_size, flood_ttl_s, timer=clock)
        self._loader = loader
        self._max_batch = max_batch
        self._max_batch_tokens = max_batch_tokens
        self._max_wait = max_wait_ms / 1000
        self._cache_size = cache_size
        self._cache_dir = cache_dir
        self._retry_after = retry_after_s
        self._clock = clock
        self._workers: OrderedDict[str, ModelWorker] = OrderedDict()  # least recently used first
        self._loading: dict[str, asyncio.Task[ModelWorker]] = {}
        self._failures: dict[str, tuple[float, ModelLoadError]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._waiters: dict[asyncio.Future[Row], int] = {}  # callers waiting for each pending text

    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]:
        """One Classification per text, in order. Raises UnknownModelError, ModelLoadError, InvalidInputError."""
        cleaned = _validate(texts)
        spec = self.registry.get(model or self.registry.default)
        if not cleaned:
            return []
        worker = await self._worker(spec)
        encoder = getattr(worker.backend, "encoder", None)  # backends without one: exact texts only
        keys = [(spec.name, encoder.normalize(text) if encoder else text) for text in cleaned]
        futures: list[asyncio.Future[Row] | None] = [self.flood.get(key) for key in keys]
        missing = [index for index, future in enumerate(futures) if future is None]
        for index, future in zip(missing, worker.submit([cleaned[i] for i in missing]), strict=True):
            futures[index] = future
            self.flood.put(keys[index], future)
        rows = await self._await_shared([future for future in futures if future is not None])
        labels = worker.backend.labels
        return [_classification(spec, labels, probabilities, truncated) for probabilities, truncated in rows]

    async def _await_shared(self, futures: list[asyncio.Future[Row]]) -> list[Row]:
        """Wait for ``futures``, which other callers may share (copies of a text): a caller that gives up cancels a
        text's pass only when no one else waits for it."""
        for future in futures:
            self._waiters[future] = self._waiters.get(future, 0) + 1
        try:
            return await asyncio.gather(*(asyncio.shield(future) for future in futures))
        finally:
            for future in futures:
                self._waiters[future] -= 1
                if not self._waiters[future]:
                    del self._waiters[future]
                    if not future.done():
                        future.cancel()  # everyone gave up: the batcher skips it

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

    async def _worker(self, spec: ModelSpec) -> ModelWorker:
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

    async def _load(self, spec: ModelSpec) -> ModelWorker:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{spec.name}")
        try:
            backend = await asyncio.get_running_loop().run_in_executor(executor, self._load_backend, spec)
        except BaseException as error:
            executor.shutdown(wait=False)
            if isinstance(error, ModelLoadError):
                self._failures[spec.name] = (self._clock(), error)
            raise
        self._failures.pop(spec.name, None)
        worker = ModelWorker(spec.name, backend, executor, self._max_batch, self._max_batch_tokens, self._max_wait)
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
