"""One process's parts, wired once: registry, classifier, storage and the moderation service every adapter shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.config import Settings
from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.registry import Registry, load_registry
from bot.storage import Storage


@dataclass(frozen=True)
class App:
    settings: Settings
    registry: Registry
    classifier: Classifier
    storage: Storage
    service: ModerationService


@asynccontextmanager
async def build_app(settings: Settings) -> AsyncIterator[App]:
    """``async with build_app(settings) as app``: closes the classifier and the database on the way out.

    Raises ``RegistryError`` for a bad models.yaml and ``StorageError`` for a database that cannot be opened.
    """
    registry = load_registry(settings.models_file)
    storage = await Storage.open(settings.database)
    classifier = Classifier(
        registry,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        cache_size=settings.model_cache_size,
        cache_dir=settings.model_cache_dir,
    )
    try:
        yield App(settings, registry, classifier, storage, ModerationService(classifier, storage, registry))
    finally:
        try:
            await classifier.aclose()
        finally:
            await storage.close()
