"""Scores + a chat's settings -> a decision that explains itself (none / flag / delete / warn / timeout).

What the adapters do with each action: FLAG replies or reacts, DELETE removes the message, WARN replies with a
warning, TIMEOUT mutes the author for ``timeout_seconds`` (and removes the message). Strikes count the acting
decisions (delete, warn, timeout) of an author within the chat's window; reaching the limit escalates to a timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from bot.core.records import STRIKE_ACTIONS, Action, ChatSettings
from bot.core.types import Actor, Task

DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Decision:
    """What to do with a message, and why: the labels over their thresholds, the thresholds and the rule that fired."""

    action: Action
    reason: str
    triggered: tuple[str, ...] = ()  # labels over threshold that may act in this chat
    flagged: tuple[str, ...] = ()  # every label over its threshold (flag-only ones included)
    thresholds: dict[str, float] = field(default_factory=dict)
    strikes: int = 0  # strikes of the author in the window, including this one
    timeout_seconds: int = 0  # > 0 only for TIMEOUT

    @property
    def is_strike(self) -> bool:
        return self.action in STRIKE_ACTIONS

    @classmethod
    def none(cls, reason: str) -> Decision:
        return cls(action=Action.NONE, reason=reason)


def effective_thresholds(
    labels: Collection[str], chat_thresholds: Mapping[str, float], model_thresholds: Mapping[str, float]
) -> dict[str, float]:
    """Per label: the chat's override, else the model's threshold from models.yaml, else 0.5."""
    return {
        label: float(chat_thresholds.get(label, model_thresholds.get(label, DEFAULT_THRESHOLD))) for label in labels
    }


def exemption(author: Actor, roles: Collection[str], settings: ChatSettings) -> str | None:
    """Why the author is never acted on, or None."""
    if author.is_admin:
        return "the author is an admin"
    if author.user_id in settings.exempt_users:
        return "the author is exempt"
    exempt_roles = sorted(set(roles) & set(settings.exempt_roles))
    if exempt_roles:
        return f"the author has the exempt role {exempt_roles[0]}"
    return None


def decide(
    scores: Mapping[str, float],
    settings: ChatSettings,
    *,
    author: Actor,
    roles: Collection[str] = frozenset(),
    task: Task = Task.MULTI_LABEL,
    model_thresholds: Mapping[str, float] | None = None,
    prior_strikes: int = 0,
) -> Decision:
    """Decide with the rules of ``RULES`` in order: the first that returns a decision wins.

    ``prior_strikes`` are the author's uncleared strikes in the chat's window before this message.
    """
    facts = _Facts(scores, settings, author, frozenset(roles), task, model_thresholds or {}, prior_strikes)
    for rule in RULES:
        decision = rule(facts)
        if decision is not None:
            return decision
    raise AssertionError("the last rule always decides")  # pragma: no cover


@dataclass(frozen=True)
class _Facts:
    scores: Mapping[str, float]
    settings: ChatSettings
    author: Actor
    roles: frozenset[str]
    task: Task
    model_thresholds: Mapping[str, float]
    prior_strikes: int

    @property
    def thresholds(self) -> dict[str, float]:
        return effective_thresholds(self.scores, self.settings.thresholds, self.model_thresholds)

    @property
    def flagged(self) -> tuple[str, ...]:
        limits = self.thresholds
        return tuple(label for label, score in self.scores.items() if score >= limits[label])

    @property
    def triggered(self) -> tuple[str, ...]:
        return tuple(label for label in self.flagged if label in self.settings.acting_labels)

    def compared(self, labels: tuple[str, ...]) -> str:
        limits = self.thresholds
        return ", ".join(f"{label} {self.scores[label]:.2f} >= {limits[label]:.2f}" for label in labels)


def _not_toxicity(facts: _Facts) -> Decision | None:
    if facts.task is Task.MULTI_LABEL:
        return None
    return Decision.none(f"a {facts.task} model (such as sentiment) never acts")


def _nothing_over(facts: _Facts) -> Decision | None:
    if facts.flagged:
        return None
    limits = facts.thresholds
    if not facts.scores:
        return Decision.none("the model returned no scores")
    top = max(facts.scores, key=lambda label: facts.scores[label] - limits[label])
    reason = f"no label over its threshold (closest: {top} {facts.scores[top]:.2f} < {limits[top]:.2f})"
    return Decision(Action.NONE, reason, thresholds=limits, strikes=facts.prior_strikes)


def _act(facts: _Facts) -> Decision:
    """Flag-only labels flag; acting labels get the chat's action, escalated to a timeout at the strike limit."""
    settings, flagged, triggered = facts.settings, facts.flagged, facts.triggered
    strikes, timeout = facts.prior_strikes, 0
    if not triggered:
        action, rule = Action.FLAG, f"{facts.compared(flagged)}: flag only (no acting label)"
    elif (configured := Action(settings.action)) is Action.FLAG:
        action, rule = Action.FLAG, f"{facts.compared(triggered)} -> flag (the chat's action)"
    else:
        strikes += 1
        window = _duration(settings.strike_window_seconds)
        limit = settings.strike_limit
        if configured is Action.TIMEOUT or (limit > 0 and strikes >= limit):
            action, timeout = Action.TIMEOUT, settings.timeout_seconds
            why = "the chat's action" if configured is Action.TIMEOUT else f"{_ordinal(strikes)} strike in {window}"
            rule = f"{facts.compared(triggered)}; {why} -> timeout {_duration(timeout)}"
        else:
            action = configured
            rule = f"{facts.compared(triggered)} -> {configured} (strike {strikes} of {limit} in {window})"
    exempt = exemption(facts.author, facts.roles, settings)
    if exempt:
        return Decision(
            Action.NONE,
            f"{rule}, but {exempt}: never acted on",
            triggered,
            flagged,
            facts.thresholds,
            facts.prior_strikes,
        )
    return Decision(action, rule, triggered, flagged, facts.thresholds, strikes, timeout)


RULES: tuple[Callable[[_Facts], Decision | None], ...] = (_not_toxicity, _nothing_over, _act)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _duration(seconds: int) -> str:
    """86400 -> "24h", 600 -> "10 min", 172800 -> "2d"."""
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
