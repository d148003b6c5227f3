"""What the moderation service needs from outside, declared by the core as Protocols (the service's ports).

``bot.core.classifier.Classifier`` is the classifier, ``bot.storage.Storage`` the store (it imports the core's
records, never the reverse), ``bot.core.language.LanguageIdentifier`` the language detector.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol, TypeVar

from bot.core.intake import InboxStore
from bot.core.model_folder import FolderConfig
from bot.core.outbox import ActionStore
from bot.core.records import ActionReport, AuditEntry, ChatSettings, ChatStats, EventRecord, NewEvent, Recorded
from bot.core.types import ChatRef, Classification

T = TypeVar("T")


class TextClassifier(Protocol):
    """The part of ``bot.core.classifier.Classifier`` the service uses."""

    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]: ...
    async def folder_config(self, model: str | None = None) -> FolderConfig: ...
    def loaded_models(self) -> list[str]: ...


class LanguageDetector(Protocol):
    """The part of ``bot.core.language.LanguageIdentifier`` the service uses."""

    def foreign_language(self, text: str, expected: Collection[str]) -> str | None: ...


class ModerationStore(InboxStore, ActionStore, Protocol):
    """What the service keeps: ``bot.storage.Storage`` implements it with the core's records.

    Writes that belong together are atomic: an event and its strike; a settings change and its audit entries;
    a verdict and the strike it clears or restores; a decision and its inbox row. Unknown event ids raise
    ``UnknownEventError``. A message has at most one event (``record_decision``: a redelivery changes nothing, an
    edit updates it). The inbox (``InboxStore``) and the actions due again (``ActionStore``) are their own parts, so
    each engine claims rows its own way (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    """

    async def get_settings(self, chat: ChatRef) -> ChatSettings: ...
    async def update_settings(
        self, chat: ChatRef, actor_id: str, change: Callable[[ChatSettings], ChatSettings], *, now: float
    ) -> ChatSettings: ...
    async def audit_log(self, chat: ChatRef, *, limit: int = 50) -> list[AuditEntry]: ...
    async def record_event(self, event: NewEvent) -> int: ...
    async def record_decision(
        self,
        chat: ChatRef,
        author_id: str,
        *,
        since: float,
        decide: Callable[[int], tuple[T, NewEvent | None]],
        excluding: str | None = None,
    ) -> tuple[T, Recorded | None]:
        """In one transaction that excludes every other one for (chat, author), in any process: count the author's
        strikes since ``since`` (but for message ``excluding``: an edit), call ``decide`` with that count, and log the
        decision it returns once per message (a redelivery changes nothing; an edit updates the message's event),
        with its strike and its inbox row done."""
        ...

    async def count_strikes(
        self, chat: ChatRef, author_id: str, *, since: float, excluding: str | None = None
    ) -> int: ...
    async def record_action_report(
        self, event_id: int, report: ActionReport, *, retry_at: float | None = None
    ) -> None: ...
    async def action_attempts(self, event_id: int) -> int: ...
    async def get_event(self, event_id: int) -> EventRecord: ...
    async def recent_events(self, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]: ...
    async def record_feedback(
        self, event_id: int, actor_id: str, correct: bool, *, now: float
    ) -> tuple[EventRecord, bool]: ...
    async def event(self, event_id: int) -> EventRecord:
        """A logged event (``UnknownEventError`` when there is none)."""
        return await self._storage.get_event(event_id)

    async def stats(self, chat: ChatRef) -> ChatStats: ...
