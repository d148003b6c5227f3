"""The domain's records: chat settings, moderation events and their reports, feedback, statistics, audit entries.

The core declares them; the storage reads and writes them (it implements the core's ``ModerationStore``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.explain import Explanation
from bot.core.model_folder import LabelThresholds
from bot.core.types import ChatRef


class Action(StrEnum):
    """What the bot does with a message; a chat configures one of ``CHAT_ACTIONS`` for its acting labels."""

    NONE = "none"
    FLAG = "flag"
    DELETE = "delete"
    WARN = "warn"
    TIMEOUT = "timeout"


CHAT_ACTIONS: tuple[Action, ...] = (Action.FLAG, Action.DELETE, Action.WARN, Action.TIMEOUT)
# Decisions that count as a strike against the author.
STRIKE_ACTIONS: frozenset[Action] = frozenset({Action.DELETE, Action.WARN, Action.TIMEOUT})
# Labels that may trigger an action by default: toxic or obscene alone only flag (friendly swearing is not abuse).
DEFAULT_ACTING_LABELS: tuple[str, ...] = ("severe_toxic", "threat", "insult", "identity_hate")
EXCERPT_CHARS = 40  # what is kept of a message when its chat did not opt in to storing text


@dataclass(frozen=True)
class ChatSettings:
    """Moderation settings of one chat; a chat that never changed anything gets these defaults."""

    chat: ChatRef
    model: str | None = None  # None: the registry's default model
    # per-label overrides of the model's thresholds: {label: {"flag": x, "act": y}}, either point may be missing
    thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    action: Action = Action.WARN  # one of CHAT_ACTIONS
    acting_labels: tuple[str, ...] = DEFAULT_ACTING_LABELS
    strike_limit: int = 3  # strikes within the window that escalate to a timeout; 0 never escalates
    strike_window_seconds: int = 24 * 3600
    timeout_seconds: int = 10 * 60
    exempt_users: frozenset[str] = frozenset()
    exempt_roles: frozenset[str] = frozenset()
    log_channel: str | None = None
    enabled: bool = True
    store_text: bool = False  # keep whole message text in the log (else an excerpt of EXCERPT_CHARS)
    language_gate: bool = True  # never act on a message confidently in a language the model was not trained on


@dataclass(frozen=True, slots=True)
class ActionReport:
    """What the platform said when an adapter carried out a decision: ``ok`` only when every step succeeded.

    ``detail`` is the words shown to admins ("deleted", "forbidden: missing Manage Messages; warned").
    """

    ok: bool
    detail: str
    transient: bool = False  # failed for a reason that passes (network, 5xx, flood control): carried out again later


@dataclass(frozen=True)
class NewEvent:
    """A moderation decision to log. ``strike`` records a strike for the author in the same transaction."""

    chat: ChatRef
    message_id: str
    author_id: str
    model: str
    scores: Mapping[str, float]
    action: Action
    reason: str
    flagged: tuple[str, ...]
    triggered: tuple[str, ...]
    thresholds: Mapping[str, LabelThresholds]  # what the scores were compared with
    text: str
    store_text: bool
    created_at: float
    strike: bool = False
    timeout_seconds: int = 0
    revision: int = 0  # 0 for the message as first sent; an edit's platform timestamp (a later edit is higher)
    author_name: str = ""  # for the warning when the action is carried out later
    inbox_id: int | None = None  # the inbox row the message came from: done in the event's transaction
    explanation: Explanation | None = None  # the words that drove the top label (kept even without store_text)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What ``record_decision`` did: ``act`` is False for a redelivery or a stale edit (nothing new to carry out)."""

    event_id: int
    act: bool


@dataclass(frozen=True)
class EventRecord:
    """A logged moderation event with its review state."""

    id: int
    created_at: float
    chat: ChatRef
    message_id: str
    author_id: str
    model: str
    scores: Mapping[str, float]
    action: Action
    reason: str
    flagged: tuple[str, ...]
    triggered: tuple[str, ...]
    thresholds: Mapping[str, LabelThresholds]  # what the scores were compared with
    text: str  # the whole text when ``text_stored``, else an excerpt
    text_stored: bool
    timeout_seconds: int
    report: ActionReport | None  # None: the adapter has not reported yet
    has_strike: bool
    strike_cleared: bool
    feedback_correct: bool | None  # None: not reviewed
    explanation: Explanation | None = None  # None: not explained (older events)


@dataclass(frozen=True)
class ChatStats:
    """Counts of one chat's moderation log."""

    chat: ChatRef
    model: str | None
    events: int
    by_action: Mapping[str, int]
    by_label: Mapping[str, int]  # events on which each label was over its threshold
    confirmed: int  # feedback: the decision was right
    rejected: int  # feedback: "not toxic"
    active_strikes: int  # strikes not cleared by feedback (whatever their age)
    action_failures: int  # actions the platform refused or could not carry out


@dataclass(frozen=True)
class DailyCounts:
    """A chat's log per day (days since the epoch, UTC): events by action, events by flagged label, reviews."""

    actions: list[tuple[int, str, int]]  # (day, action, events)
    labels: list[tuple[int, str, int]]  # (day, label, events)
    reviews: list[tuple[int, int, int]]  # (day, confirmed, marked not toxic)


@dataclass(frozen=True)
class AuditEntry:
    """One admin change: who changed which setting from what to what."""

    created_at: float
    chat: ChatRef
    actor_id: str
    setting: str
    old: object
    new: object


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
