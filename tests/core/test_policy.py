"""Policy: scores + chat settings -> decision. Table-driven; no model is loaded, the cases give scores."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from bot.core.labels import TOXICITY_LABELS
from bot.core.model_folder import LabelThresholds
from bot.core.policy import Decision, decide, effective_thresholds
from bot.core.records import Action, ChatSettings
from bot.core.types import Actor, ChatRef, Task

CHAT = ChatRef("test", "chat-1")
DEFAULTS = ChatSettings(chat=CHAT)
MEMBER = Actor("member-1")
ADMIN = Actor("admin-1", is_admin=True)


def both(value: float) -> LabelThresholds:
    return LabelThresholds(flag=value, act=value)


def scores(**over: float) -> dict[str, float]:
    """All six labels at 0.05, except the ones given."""
    return {label: over.get(label, 0.05) for label in TOXICITY_LABELS}


@dataclass
class Case:
    name: str
    scores: dict[str, float]
    expect: Action
    settings: dict = field(default_factory=dict)
    author: Actor = MEMBER
    roles: frozenset[str] = frozenset()
    task: Task = Task.MULTI_LABEL
    model_thresholds: dict[str, LabelThresholds] = field(default_factory=dict)
    prior: int = 0
    languages: tuple[str, ...] = ()
    foreign: str | None = None
    triggered: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    strikes: int = 0
    timeout: int = 0
    reason: str = ""


CASES = [
    Case("clean message", scores(), Action.NONE, reason="no label over its flag threshold (closest:"),
    Case(
        "insult warns by default",
        scores(toxic=0.9, insult=0.91),
        Action.WARN,
        triggered=("insult",),
        flagged=("toxic", "insult"),
        strikes=1,
        reason="insult 0.91 >= act 0.50 -> warn (strike 1 of 3 in 24 h)",
    ),
    Case(
        "toxic alone only flags",
        scores(toxic=0.8),
        Action.FLAG,
        flagged=("toxic",),
        reason="toxic 0.80 >= flag 0.50: flag only (no acting label)",
    ),
    Case("obscene and toxic only flag", scores(toxic=0.8, obscene=0.9), Action.FLAG, flagged=("toxic", "obscene")),
    Case(
        "a chat that wants clean language makes obscene act",
        scores(toxic=0.8, obscene=0.9),
        Action.DELETE,
        settings={"acting_labels": ("obscene",), "action": "delete"},
        triggered=("obscene",),
        flagged=("toxic", "obscene"),
        strikes=1,
    ),
    Case("threat acts", scores(threat=0.7), Action.WARN, triggered=("threat",), flagged=("threat",), strikes=1),
    Case(
        "severe_toxic acts",
        scores(severe_toxic=0.6),
        Action.WARN,
        triggered=("severe_toxic",),
        flagged=("severe_toxic",),
        strikes=1,
    ),
    Case(
        "identity_hate acts",
        scores(identity_hate=0.6),
        Action.WARN,
        triggered=("identity_hate",),
        strikes=1,
        flagged=("identity_hate",),
    ),
    Case(
        "the chat's threshold override wins over models.yaml",
        scores(insult=0.55),
        Action.NONE,
        settings={"thresholds": {"insult": {"flag": 0.6, "act": 0.6}}},
        model_thresholds={"insult": both(0.3)},
        reason="insult 0.55 < flag 0.60",
    ),
    Case(
        "models.yaml thresholds apply when the chat has none",
        scores(insult=0.35),
        Action.WARN,
        model_thresholds={"insult": both(0.3)},
        triggered=("insult",),
        flagged=("insult",),
        strikes=1,
        reason="insult 0.35 >= act 0.30",
    ),
    Case(
        "exactly at the threshold counts",
        scores(insult=0.5),
        Action.WARN,
        triggered=("insult",),
        flagged=("insult",),
        strikes=1,
    ),
    Case(
        "third strike in the window escalates to a timeout",
        scores(insult=0.9),
        Action.TIMEOUT,
        prior=2,
        triggered=("insult",),
        flagged=("insult",),
        strikes=3,
        timeout=600,
        reason="insult 0.90 >= act 0.50; 3rd strike in 24 h -> timeout 10 min",
    ),
    Case(
        "custom escalation: 2 strikes in 1h -> 1h timeout",
        scores(threat=0.9),
        Action.TIMEOUT,
        settings={"strike_limit": 2, "strike_window_seconds": 3600, "timeout_seconds": 3600},
        prior=1,
        triggered=("threat",),
        flagged=("threat",),
        strikes=2,
        timeout=3600,
        reason="2nd strike in 1 h -> timeout 1 h",
    ),
    Case(
        "strike limit 0 never escalates",
        scores(insult=0.9),
        Action.DELETE,
        settings={"strike_limit": 0, "action": "delete"},
        prior=10,
        triggered=("insult",),
        flagged=("insult",),
        strikes=11,
    ),
    Case(
        "the chat's action timeout times out at the first strike",
        scores(insult=0.9),
        Action.TIMEOUT,
        settings={"action": "timeout"},
        triggered=("insult",),
        flagged=("insult",),
        strikes=1,
        timeout=600,
        reason="the chat's action -> timeout 10 min",
    ),
    Case(
        "the chat's action flag never strikes",
        scores(insult=0.9),
        Action.FLAG,
        settings={"action": "flag"},
        prior=5,
        triggered=("insult",),
        flagged=("insult",),
        strikes=5,
        reason="-> flag (the chat's action)",
    ),
    Case(
        "admins are never acted on",
        scores(insult=0.9),
        Action.NONE,
        author=ADMIN,
        triggered=("insult",),
        flagged=("insult",),
        reason="-> warn (strike 1 of 3 in 24 h), but the author is an admin: never acted on",
    ),
    Case(
        "exempt users are never acted on",
        scores(threat=0.9),
        Action.NONE,
        settings={"exempt_users": frozenset({"member-1"})},
        triggered=("threat",),
        flagged=("threat",),
        reason="the author is exempt",
    ),
    Case(
        "exempt roles are never acted on",
        scores(threat=0.9),
        Action.NONE,
        settings={"exempt_roles": frozenset({"mods"})},
        roles=frozenset({"mods", "members"}),
        triggered=("threat",),
        flagged=("threat",),
        reason="the exempt role mods",
    ),
    Case(
        "an exempt author is not flagged either",
        scores(toxic=0.9),
        Action.NONE,
        author=ADMIN,
        flagged=("toxic",),
        reason="flag only (no acting label), but the author is an admin",
    ),
    Case(
        "a role that is not exempt does not protect",
        scores(insult=0.9),
        Action.WARN,
        settings={"exempt_roles": frozenset({"mods"})},
        roles=frozenset({"members"}),
        triggered=("insult",),
        flagged=("insult",),
        strikes=1,
    ),
    Case(
        "a sentiment model never acts",
        {"NEGATIVE": 0.99, "POSITIVE": 0.01},
        Action.NONE,
        task=Task.SINGLE_LABEL,
        reason="a single_label model (such as sentiment) never acts",
    ),
    Case(
        "an acting label between its flag and act thresholds only flags, and says so",
        scores(insult=0.6),
        Action.FLAG,
        model_thresholds={"insult": LabelThresholds(flag=0.5, act=0.8)},
        flagged=("insult",),
        reason="insult 0.60 >= flag 0.50: flag only (insult < act 0.80)",
    ),
    Case(
        "over the act threshold of an acting label acts, naming the act threshold",
        scores(insult=0.85, toxic=0.6),
        Action.WARN,
        model_thresholds={"insult": LabelThresholds(flag=0.5, act=0.8), "toxic": LabelThresholds(0.55, 0.9)},
        triggered=("insult",),
        flagged=("toxic", "insult"),
        strikes=1,
        reason="insult 0.85 >= act 0.80 -> warn",
    ),
    Case(
        "the chat overrides one point only",
        scores(insult=0.6),
        Action.WARN,
        settings={"thresholds": {"insult": {"act": 0.55}}},
        model_thresholds={"insult": LabelThresholds(flag=0.5, act=0.8)},
        triggered=("insult",),
        flagged=("insult",),
        strikes=1,
        reason="insult 0.60 >= act 0.55",
    ),
    Case(
        "a message in a language the model does not know is only flagged, without a strike",
        scores(insult=0.95),
        Action.FLAG,
        prior=2,
        languages=("en",),
        foreign="es",
        triggered=("insult",),
        flagged=("insult",),
        strikes=2,
        reason="insult 0.95 >= act 0.50, but the message is in Spanish, not English: flagged only",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_policy_decides_from_scores_and_settings(case: Case) -> None:
    decision = decide(
        case.scores,
        replace(DEFAULTS, **case.settings),
        author=case.author,
        roles=case.roles,
        task=case.task,
        model_thresholds=case.model_thresholds,
        prior_strikes=case.prior,
        languages=case.languages,
        foreign_language=case.foreign,
    )
    assert decision.action is case.expect, decision.reason
    assert decision.triggered == case.triggered
    assert decision.flagged == case.flagged
    assert decision.strikes == case.strikes
    assert decision.timeout_seconds == case.timeout
    assert case.reason in decision.reason


def test_decision_carries_the_thresholds_it_compared_chat_then_models_yaml_then_folder() -> None:
    decision = decide(
        scores(insult=0.9),
        replace(DEFAULTS, thresholds={"insult": {"act": 0.7}}),
        author=MEMBER,
        model_thresholds={"threat": both(0.4), "insult": LabelThresholds(0.3, 0.35)},
        folder_thresholds={"obscene": LabelThresholds(0.6, 0.8), "threat": both(0.9)},
    )
    assert decision.thresholds == {
        "toxic": both(0.5),
        "severe_toxic": both(0.5),
        "obscene": LabelThresholds(0.6, 0.8),
        "threat": both(0.4),
        "insult": LabelThresholds(0.3, 0.7),
        "identity_hate": both(0.5),
    }


def test_several_acting_labels_are_all_named_in_the_reason() -> None:
    decision = decide(scores(threat=0.8, insult=0.7, severe_toxic=0.6), DEFAULTS, author=MEMBER)
    assert decision.triggered == ("severe_toxic", "threat", "insult")
    assert "severe_toxic 0.60 >= act 0.50, threat 0.80 >= act 0.50, insult 0.70 >= act 0.50" in decision.reason


@pytest.mark.parametrize(
    ("action", "is_strike"),
    [(Action.NONE, False), (Action.FLAG, False), (Action.WARN, True), (Action.DELETE, True), (Action.TIMEOUT, True)],
)
def test_only_acting_decisions_count_as_strikes(action: Action, is_strike: bool) -> None:
    assert Decision(action=action, reason="").is_strike is is_strike


def test_effective_thresholds_default_to_one_half_and_an_old_bare_override_means_both() -> None:
    settings = replace(DEFAULTS, thresholds={"a": 0.9, "b": {"flag": 0.3}})  # type: ignore[dict-item]
    resolved = effective_thresholds(["a", "b", "c"], settings, {"a": both(0.1), "b": both(0.2)})
    assert resolved == {"a": both(0.9), "b": LabelThresholds(0.3, 0.2), "c": both(0.5)}
