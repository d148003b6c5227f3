"""``ModerationService``: a message becomes a classification, a decision, and a logged event that admins can review.

Every adapter (Discord, Telegram, the console) calls this one service. Settings changes and feedback check that the
actor is an admin here too, whatever the adapter already checked, and every settings change is audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from asyncio import Event, Lock
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.errors import (
    BotError,
    InvalidSettingError,
    ModelLoadError,
    PermissionDenied,
    UnknownEventError,
    UnknownModelError,
)
from bot.core.explain import Explanation, explain, explanation_label
from bot.core.intake import Intake
from bot.core.labels import TOXICITY_LABELS
from bot.core.language import LanguageIdentifier
from bot.core.model_folder import POINTS, LabelThresholds
from bot.core.outbox import MAX_ACTION_ATTEMPTS, ActionRetrier, PendingAction, retry_delay
from bot.core.policy import Decision, decide, effective_thresholds
from bot.core.ports import LanguageDetector, ModerationStore, TextClassifier
from bot.core.records import (
    CHAT_ACTIONS,
    Action,
    ActionReport,
    ChatSettings,
    ChatStats,
    EventRecord,
    NewEvent,
)
from bot.core.registry import ModelSpec, Registry
from bot.core.text import clean_text
from bot.core.types import Actor, ChatRef, Classification, Message

__all__ = [
    "FeedbackResult",
    "InvalidSettingError",
    "ModerationService",
    "ModerationStore",
    "Outcome",
    "PermissionDenied",
    "UnknownEventError",
    "UnknownModelError",
]

log = logging.getLogger(__name__)
MODEL_PROBE = "hello, this is a test message"  # what /model scores before a chat switches to a model
MIN_THRESHOLD = 1e-6  # below this a threshold is noise (every score passes); 1e-300 is a typo, not a setting
BOT_ACTOR = Actor("bot", is_admin=True, display_name="the bot")  # changes the bot makes itself (model fallback)


@dataclass(frozen=True)
class Outcome:
    """The result of ``handle``: ``event_id`` is None when nothing was logged (nothing over a threshold, ...)."""

    event_id: int | None
    decision: Decision
    classification: Classification | None
    explanation: Explanation | None = None  # the words behind the top label, for flagged and acted messages
    act: bool = False  # the decision is new (not a redelivery) and its action is for the adapter to carry out
    notice: str | None = None  # to tell the chat's admins (once): e.g. its model failed and the default took over


@dataclass(frozen=True)
class FeedbackResult:
    """An admin's verdict on an event, and what the adapter should undo."""

    event: EventRecord
    strike_cleared: bool
    lift_timeout: bool  # "not toxic" on a timeout that is still running
    chat: ChatRef
    author_id: str


class ModerationService:
    """Classify, decide, log; change chat settings; record feedback; count."""

    def __init__(
        self,
        classifier: TextClassifier,
        storage: ModerationStore,
        registry: Registry,
        *,
        languages: LanguageDetector | None = None,
        clock: Callable[[], float] = time.time,
        explain_events: bool = True,
    ) -> None:
        self._classifier = classifier
        self._explain_events = explain_events
        self._storage = storage
        self._registry = registry
        self._languages = languages if languages is not None else LanguageIdentifier()
        self._clock = clock
        self._fallback_lock = Lock()  # a broken chat model is replaced (and the admins told) once

    # messages -----------------------------------------------------------------------------------------------------

    async def handle(self, message: Message) -> Outcome:
        """Classify the message with its chat's model, decide with its chat's settings, log what was flagged."""
        settings = await self._storage.get_settings(message.chat)
        if not settings.enabled:
            return Outcome(None, Decision.none("moderation is disabled in this chat"), None)
        if not message.text.strip():
            return Outcome(None, Decision.none("the message has no text"), None)
        spec = self._registry.get(self._model_name(settings))
        notice = None
        try:
            [classification] = await self._classifier.classify([message.text], spec.name)
        except ModelLoadError as error:
            if spec.name == self._registry.default:
                raise
            settings, notice = await self._fall_back(message.chat, spec.name, error)
            spec = self._registry.get(self._registry.default)
            [classification] = await self._classifier.classify([message.text], spec.name)
        folder = await self._classifier.folder_config(spec.name)
        languages = spec.languages or folder.languages
        chat, author = message.chat, message.author
        now = self._clock()
        since = now - settings.strike_window_seconds
        facts = {
            "author": author,
            "roles": message.author_roles,
            "task": classification.task,
            "model_thresholds": spec.thresholds,
            "folder_thresholds": folder.thresholds,
            "languages": languages,
        }

        def decide_with(prior: int, foreign: str | None = None) -> Decision:
            return decide(classification.as_dict(), settings, **facts, prior_strikes=prior, foreign_language=foreign)

        # whether a message is flagged never depends on prior strikes: clean messages need no write transaction
        decision = decide_with(0)
        if not decision.flagged:
            return Outcome(None, decision, classification, notice=notice)
        foreign = None
        if decision.triggered and settings.language_gate and languages:  # only what would act is worth the look
            foreign = await asyncio.to_thread(self._languages.foreign_language, message.text, languages)
        # explained before the transaction: the extra forward pass never holds the author's lock
        why = await self._explain_event(message.text, classification, decision) if self._explain_events else None

        def logged(prior: int) -> tuple[Decision, NewEvent]:
            final = decide_with(prior if spec.is_toxicity else 0, foreign)
            event = NewEvent(
                chat=chat,
                message_id=message.message_id,
                author_id=author.user_id,
                model=spec.name,
                scores=classification.as_dict(),
                action=final.action,
                reason=final.reason,
                flagged=final.flagged,
                triggered=final.triggered,
                thresholds=final.thresholds,
                text=message.text,
                store_text=settings.store_text,
                created_at=now,
                strike=final.is_strike,
                timeout_seconds=final.timeout_seconds,
                explanation=why,
                revision=message.revision,
                author_name=author.display_name,
                inbox_id=message.inbox_id,
            )
            return final, event

        # counting prior strikes and logging the new one is one transaction under the (chat, author) lock, so
        # concurrent messages of one author, in this process or another, each see the strikes before them; an edit
        # does not count the strike its own message already has
        excluding = message.message_id if message.revision else None
        decision, recorded = await self._storage.record_decision(
            chat, author.user_id, since=since, decide=logged, excluding=excluding
        )
        assert recorded is not None
        log.debug("event %d in %s:%s: %s", recorded.event_id, chat.platform, chat.chat_id, decision.action)
        return Outcome(recorded.event_id, decision, classification, why, act=recorded.act, notice=notice)

    async def _fall_back(self, chat: ChatRef, failed: str, error: BotError) -> tuple[ChatSettings, str | None]:
        """The chat's model cannot be loaded: the chat goes back to the default (audited, by the bot itself), and
        the admins get a notice, once (the first message to find the model broken changes the setting)."""
        async with self._fallback_lock:
            settings = await self._storage.get_settings(chat)
            if settings.model != failed:
                return settings, None
            log.warning("chat %s: model %s failed (%s); back to the default", chat, failed, error)
            settings = await self._update(chat, BOT_ACTOR, model=None)
        default = self._registry.default
        return settings, (
            f"The model {failed} of this chat cannot be loaded ({error}). Messages are moderated with the default "
            f"model {default} until an admin chooses another one."
        )

    async def explain(
        self, text: str, classification: Classification, *, label: str | None = None
    ) -> Explanation | None:
        """The words of ``text`` that drove ``label`` (default: the verdict's label) under the model that scored it."""
        return await explain(self._classifier, text, model=classification.model, label=label, base=classification)

    async def _explain_event(self, text: str, classification: Classification, decision: Decision) -> Explanation | None:
        """The explanation of a flagged message; a failure only costs the explanation, never the moderation."""
        label = explanation_label(classification, decision.triggered or decision.flagged)
        try:
            return await self.explain(text, classification, label=label)
        except BotError as error:
            log.warning("no explanation for a flagged message: %s", error)
            return None

    async def record_action_report(self, event_id: int, report: ActionReport) -> None:
        """What the platform said when the adapter carried out the action.

        A ``transient`` failure (network, 5xx, flood control) leaves the action due again later, for
        ``retry_actions``, with a growing wait, up to ``MAX_ACTION_ATTEMPTS`` attempts in all.
        """
        retry_at = None
        if report.transient and not report.ok:
            attempts = await self._storage.action_attempts(event_id) + 1
            if attempts < MAX_ACTION_ATTEMPTS:
                retry_at = self._clock() + retry_delay(attempts)
        await self._storage.record_action_report(event_id, report, retry_at=retry_at)

    async def retry_actions(
        self, platform: str, carry_out: Callable[[PendingAction], Awaitable[ActionReport]], stop: Event
    ) -> None:
        """Until ``stop``: carry out the platform's due actions (cut short by a crash, or failed in an outage)."""
        retrier = ActionRetrier(self._storage, platform, carry_out, self.record_action_report, clock=self._clock)
        await retrier.run(stop)

    async def classify(
        self, text: str, *, chat: ChatRef | None = None, model: str | None = None, actor: Actor | None = None
    ) -> Classification:
        """Scores of one text with ``model``, else the chat's model, else the default; no policy, nothing logged.

        A member (``actor`` not an admin) may choose only a model already in memory, the default or the chat's own:
        loading others costs memory and minutes and would evict the models the chats use.
        """
        chat_model = self._model_name(await self._storage.get_settings(chat)) if chat is not None else None
        if model is not None and actor is not None and not actor.is_admin:
            name = self._registry.get(model).name
            allowed = {*self._classifier.loaded_models(), self._registry.default, chat_model}
            if name not in allowed:
                loaded = ", ".join(sorted(n for n in allowed if n)) or "none"
                raise PermissionDenied(f"only admins can load another model; ready now: {loaded}")
        spec = self._registry.get(model or chat_model or self._registry.default)
        [classification] = await self._classifier.classify([clean_text(text)], spec.name)
        return classification

    def intake(self, platform: str, *, concurrency: int = 64) -> Intake:
        """The durable intake of one platform's messages, on this service's store."""
        return Intake(self._storage, platform, concurrency=concurrency, clock=self._clock)

    # settings -----------------------------------------------------------------------------------------------------

    async def settings(self, chat: ChatRef) -> ChatSettings:
        return await self._storage.get_settings(chat)

    async def thresholds(self, settings: ChatSettings) -> dict[str, LabelThresholds]:
        """The thresholds in force in the chat, per label of its model (loads the model to read its folder)."""
        spec = self._registry.get(self._model_name(settings))
        folder = await self._classifier.folder_config(spec.name)
        return effective_thresholds(self._labels(settings), settings, spec.thresholds, folder.thresholds)

    async def model_languages(self, settings: ChatSettings) -> tuple[str, ...]:
        """The languages the chat's model declares (models.yaml, else its folder); empty: no language gate."""
        spec = self._registry.get(self._model_name(settings))
        return spec.languages or (await self._classifier.folder_config(spec.name)).languages

    def effective_model(self, settings: ChatSettings) -> str:
        """The model the chat uses: its own choice while models.yaml still lists it, else the default."""
        return self._model_name(settings)

    async def set_model(self, chat: ChatRef, actor: Actor, name: str) -> ChatSettings:
        """Use model ``name`` in the chat, once it has loaded and scored a test message (else nothing changes)."""
        _require_admin(actor, "change the model")
        spec = self._registry.get(name)  # UnknownModelError lists the known names
        try:
            await self._classifier.classify([MODEL_PROBE], spec.name)
        except BotError as error:
            raise InvalidSettingError(f"model {spec.name} cannot be used, the chat keeps its model: {error}") from None
        return await self._update(chat, actor, model=spec.name)

    async def set_threshold(
        self, chat: ChatRef, actor: Actor, label: str, value: float | None, point: str | None = None
    ) -> ChatSettings:
        """Override one label's ``flag`` or ``act`` threshold, or both (``point`` None); None: back to the model's."""
        _require_admin(actor, "change thresholds")
        current = await self._storage.get_settings(chat)
        _check_labels([label], self._labels(current))
        if point is not None and point not in POINTS:
            raise InvalidSettingError(f"a threshold is 'flag' or 'act', not '{point}'")
        if value is not None and not (math.isfinite(value) and MIN_THRESHOLD <= value <= 1.0):
            raise InvalidSettingError(
                f"a threshold must be above 0 (at least {MIN_THRESHOLD:g}) and at most 1, got {value:g}"
            )
        points = (point,) if point else POINTS

        def change(settings: ChatSettings) -> ChatSettings:
            thresholds = {k: dict(v) for k, v in settings.thresholds.items()}
            override = {k: v for k, v in thresholds.pop(label, {}).items() if k not in points}
            if value is not None:
                override.update(dict.fromkeys(points, float(value)))
            if override:
                thresholds[label] = override
            return dataclasses.replace(settings, thresholds=thresholds)

        return await self._storage.update_settings(chat, actor.user_id, change, now=self._clock())

    async def set_action(self, chat: ChatRef, actor: Actor, action: str) -> ChatSettings:
        _require_admin(actor, "change the action")
        name = str(action).strip().lower()
        if name not in CHAT_ACTIONS:
            raise InvalidSettingError(f"unknown action '{name}' (choose one of: {', '.join(CHAT_ACTIONS)})")
        return await self._update(chat, actor, action=Action(name))

    async def set_exempt(
        self, chat: ChatRef, actor: Actor, kind: Literal["user", "role"], ident: str, exempt: bool
    ) -> ChatSettings:
        _require_admin(actor, "change exemptions")
        if kind not in ("user", "role"):
            raise InvalidSettingError(f"exemptions are for a 'user' or a 'role', not '{kind}'")
        if not ident:
            raise InvalidSettingError(f"which {kind}? the id is empty")
        key = "exempt_users" if kind == "user" else "exempt_roles"

        def change(settings: ChatSettings) -> ChatSettings:
            current = set(getattr(settings, key))
            updated = current | {ident} if exempt else current - {ident}
            return dataclasses.replace(settings, **{key: frozenset(updated)})

        return await self._storage.update_settings(chat, actor.user_id, change, now=self._clock())

    async def set_log_channel(self, chat: ChatRef, actor: Actor, channel_id: str | None) -> ChatSettings:
        _require_admin(actor, "change the log channel")
        return await self._update(chat, actor, log_channel=channel_id or None)

    async def set_enabled(self, chat: ChatRef, actor: Actor, enabled: bool) -> ChatSettings:
        _require_admin(actor, "turn moderation on or off")
        return await self._update(chat, actor, enabled=bool(enabled))

    async def set_acting_labels(self, chat: ChatRef, actor: Actor, labels: Sequence[str]) -> ChatSettings:
        """Which labels may act (delete/warn/timeout); the others only flag. An empty list: everything only flags."""
        _require_admin(actor, "change which labels act")
        current = await self._storage.get_settings(chat)
        _check_labels(labels, self._labels(current))
        return await self._update(chat, actor, acting_labels=tuple(dict.fromkeys(labels)))

    async def set_language_gate(self, chat: ChatRef, actor: Actor, on: bool) -> ChatSettings:
        """On: messages confidently in a language the model was not trained on are at most flagged."""
        _require_admin(actor, "change the language gate")
        return await self._update(chat, actor, language_gate=bool(on))

    async def set_store_text(self, chat: ChatRef, actor: Actor, store_text: bool) -> ChatSettings:
        """Keep whole messages in the moderation log (needed for export-feedback) instead of an excerpt."""
        _require_admin(actor, "change what the log keeps")
        return await self._update(chat, actor, store_text=bool(store_text))

    async def set_escalation(
        self, chat: ChatRef, actor: Actor, *, strike_limit: int, window_seconds: int, timeout_seconds: int
    ) -> ChatSettings:
        """A timeout of ``timeout_seconds`` at ``strike_limit`` strikes within ``window_seconds`` (limit 0: never)."""
        _require_admin(actor, "change escalation")
        if strike_limit < 0 or window_seconds <= 0 or timeout_seconds <= 0:
            raise InvalidSettingError("strike limit must be >= 0, window and timeout > 0 seconds")
        if timeout_seconds > 28 * 86400:
            raise InvalidSettingError("a timeout can last at most 28 days (Discord's limit)")
        return await self._update(
            chat,
            actor,
            strike_limit=int(strike_limit),
            strike_window_seconds=int(window_seconds),
            timeout_seconds=int(timeout_seconds),
        )

    # review and numbers -------------------------------------------------------------------------------------------

    async def feedback(
        self, event_id: int, actor: Actor, correct: bool, *, chat: ChatRef | None = None
    ) -> FeedbackResult:
        """An admin's verdict: ``correct=False`` ("not toxic") clears the strike and asks to lift a running timeout.

        With ``chat``, the event must belong to that chat (the adapter checked the actor's admin rights there).
        """
        _require_admin(actor, "review moderation events")
        event = await self._storage.get_event(event_id)
        if chat is not None and event.chat != chat:
            raise PermissionDenied(f"event #{event_id} belongs to another chat")
        now = self._clock()
        event, cleared = await self._storage.record_feedback(event_id, actor.user_id, correct, now=now)
        running = event.action == Action.TIMEOUT and event.created_at + event.timeout_seconds > now
        return FeedbackResult(event, cleared, (not correct) and running, event.chat, event.author_id)

    async def event(self, event_id: int) -> EventRecord:
        """A logged event (``UnknownEventError`` when there is none)."""
        return await self._storage.get_event(event_id)

    async def stats(self, chat: ChatRef) -> ChatStats:
        stats = await self._storage.stats(chat)
        return dataclasses.replace(stats, model=self._model_name(await self._storage.get_settings(chat)))

    async def recent_events(self, chat: ChatRef, *, limit: int = 20) -> list[EventRecord]:
        return await self._storage.recent_events(chat, limit=limit)

    def models(self) -> list[ModelSpec]:
        return list(self._registry.specs.values())

    @property
    def registry(self) -> Registry:
        return self._registry

    # helpers ------------------------------------------------------------------------------------------------------

    def _model_name(self, settings: ChatSettings) -> str:
        if settings.model and settings.model in self._registry.specs:
            return settings.model
        if settings.model:
            log.warning(
                "chat %s uses model %r, no longer in models.yaml: using the default", settings.chat, settings.model
            )
        return self._registry.default

    def _labels(self, settings: ChatSettings) -> tuple[str, ...]:
        spec = self._registry.get(self._model_name(settings))
        return spec.labels or TOXICITY_LABELS

    async def _update(self, chat: ChatRef, actor: Actor, **values: object) -> ChatSettings:
        return await self._storage.update_settings(
            chat, actor.user_id, lambda settings: dataclasses.replace(settings, **values), now=self._clock()
        )


def threshold_text(value: float) -> str:
    """A threshold as admins read it: two decimals, or as set when it is smaller than that shows."""
    return f"{value:.2f}" if value >= 0.01 else f"{value:.3g}"


def _require_admin(actor: Actor, what: str) -> None:
    if not actor.is_admin:
        raise PermissionDenied(f"only the chat's admins can {what}")


def _check_labels(labels: Sequence[str], known: Sequence[str]) -> None:
    unknown = [label for label in labels if label not in known]
    if unknown:
        raise InvalidSettingError(f"unknown label '{unknown[0]}' (labels: {', '.join(known)})")
