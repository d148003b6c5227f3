"""Scores + a chat's settings -> a decision that explains itself (none / flag / delete / warn / timeout).

Each label has two operating points: at its ``flag`` threshold a message is flagged for review; at its ``act``
threshold an acting label gets the chat's action (delete / warn / timeout). What the adapters do with each action:
FLAG replies or reacts, DELETE removes the message, WARN replies with a warning, TIMEOUT mutes the author for
``timeout_seconds`` (and removes the message). Strikes count the acting decisions of an author within the chat's
window; reaching the limit escalates to a timeout. A message confidently in a language the model was not trained on
is at most flagged (the chat's ``language_gate``; the service finds the language).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from bot.core.durations import format_duration
from bot.core.language import language_name
from bot.core.model_folder import LabelThresholds, resolve_thresholds
from bot.core.records import STRIKE_ACTIONS, Action, ChatSettings
from bot.core.types import Actor, Task


@dataclass(frozen=True)
class Decision:
    """What to do with a message, and why: the labels over their thresholds, the thresholds and the rule that fired."""

    action: Action
    reason: str
    triggered: tuple[str, ...] = ()  # acting labels over their act threshold
    flagged: tuple[str, ...] = ()  # every label over its flag (or act) threshold
    thresholds: dict[str, LabelThresholds] = field(default_factory=dict)
    strikes: int = 0  # strikes of the author in the window, including this one
    timeout_seconds: int = 0  # > 0 only for TIMEOUT

    @property
    def is_strike(self) -> bool:
        return self.action in STRIKE_ACTIONS

    @classmethod
    def none(cls, reason: str) -> Decision:
        return cls(action=Action.NONE, reason=reason)


def effective_thresholds(
    labels: Sequence[str],
    settings: ChatSettings,
    model_thresholds: Mapping[str, LabelThresholds] | None = None,
    folder_thresholds: Mapping[str, LabelThresholds] | None = None,
) -> dict[str, LabelThresholds]:
    """Per label and point: the chat's override > models.yaml > the model folder's own > 0.5."""
    return resolve_thresholds(labels, settings.thresholds, model_thresholds or {}, folder_thresholds or {})


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
    model_thresholds: Mapping[str, LabelThresholds] | None = None,
    folder_thresholds: Mapping[str, LabelThresholds] | None = None,
    prior_strikes: int = 0,
    languages: Sequence[str] = (),
    foreign_language: str | None = None,
) -> Decision:
    """Decide with the rules of ``RULES`` in order: the first that returns a decision wins.

    ``prior_strikes`` are the author's uncleared strikes in the chat's window before this message.
    ``foreign_language``: the code of the language the message is confidently in when it is none of the model's
    ``languages`` and the chat's language gate is on (None otherwise).
    """
    thresholds = effective_thresholds(tuple(scores), settings, model_thresholds, folder_thresholds)
    facts = _Facts(
        scores, settings, author, frozenset(roles), task, thresholds, prior_strikes, tuple(languages), foreign_language
    )
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
    thresholds: dict[str, LabelThresholds]
    prior_strikes: int
    languages: tuple[str, ...]
    foreign_language: str | None

    @cached_property
    def flagged(self) -> tuple[str, ...]:
        limits = self.thresholds
        return tuple(
            label for label, score in self.scores.items() if score >= min(limits[label].flag, limits[label].act)
        )

    @cached_property
    def triggered(self) -> tuple[str, ...]:
        limits = self.thresholds
        acting = self.settings.acting_labels
        return tuple(label for label in self.flagged if label in acting and self.scores[label] >= limits[label].act)

    def compared(self, labels: tuple[str, ...], point: str) -> str:
        limits = self.thresholds
        return ", ".join(
            f"{label} {self.scores[label]:.2f} >= {point} {getattr(limits[label], point):.2f}" for label in labels
        )


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
    top = max(facts.scores, key=lambda label: facts.scores[label] - limits[label].flag)
    reason = f"no label over its flag threshold (closest: {top} {facts.scores[top]:.2f} < flag {limits[top].flag:.2f})"
    return Decision(Action.NONE, reason, thresholds=limits, strikes=facts.prior_strikes)


def _flag_only(facts: _Facts) -> str:
    """Why flagged labels do not act: none may act in this chat, or those that may are below their act threshold."""
    limits, acting = facts.thresholds, facts.settings.acting_labels
    below = [label for label in facts.flagged if label in acting]
    if not below:
        return f"{facts.compared(facts.flagged, 'flag')}: flag only (no acting label)"
    under = ", ".join(f"{label} < act {limits[label].act:.2f}" for label in below)
    return f"{facts.compared(facts.flagged, 'flag')}: flag only ({under})"


def _act(facts: _Facts) -> Decision:
    """Flag-only labels flag; acting labels over their act threshold get the chat's action, escalated at the limit."""
    settings, flagged, triggered = facts.settings, facts.flagged, facts.triggered
    strikes, timeout = facts.prior_strikes, 0
    over = facts.compared(triggered, "act")
    if not triggered:
        action, rule = Action.FLAG, _flag_only(facts)
    elif facts.foreign_language:
        expected = " or ".join(language_name(code) for code in facts.languages) or "the model's language"
        found = language_name(facts.foreign_language)
        action, rule = Action.FLAG, f"{over}, but the message is in {found}, not {expected}: flagged only"
    elif (configured := Action(settings.action)) is Action.FLAG:
        action, rule = Action.FLAG, f"{over} -> flag (the chat's action)"
    else:
        strikes += 1
        window = format_duration(settings.strike_window_seconds)
        limit = settings.strike_limit
        if configured is Action.TIMEOUT or (limit > 0 and strikes >= limit):
            action, timeout = Action.TIMEOUT, settings.timeout_seconds
            why = "the chat's action" if configured is Action.TIMEOUT else f"{_ordinal(strikes)} strike in {window}"
            rule = f"{over}; {why} -> timeout {format_duration(timeout)}"
        else:
            action = configured
            rule = f"{over} -> {configured} (strike {strikes} of {limit} in {window})"
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
    if action is Action.FLAG:
        strikes = facts.prior_strikes
    return Decision(action, rule, triggered, flagged, facts.thresholds, strikes, timeout)


RULES: tuple[Callable[[_Facts], Decision | None], ...] = (_not_toxicity, _nothing_over, _act)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
