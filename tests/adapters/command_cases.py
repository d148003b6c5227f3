"""Every command of the shared command surface, once, as each platform is asked for it; and what must follow.

The console and Telegram type ``text``; Discord sends ``discord`` (a slash command and its options). ``settled``
checks the chat's stored settings afterwards; ``says`` is a piece of the reply. ``before`` prepares the chat
through the service (an event to review, moderation turned off to turn it on again ...).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.moderation import ModerationService
from bot.core.records import ChatSettings
from bot.core.types import Actor, ChatRef, Message

SERVICE_ADMIN = Actor("service-admin", is_admin=True)
MEMBER_ID = "4242"  # the member whose message is reviewed, and who is made exempt
Before = Callable[[ModerationService, ChatRef], Awaitable[dict[str, str]]]


async def nothing(service: ModerationService, chat: ChatRef) -> dict[str, str]:
    return {}


async def logged_event(service: ModerationService, chat: ChatRef) -> dict[str, str]:
    """An insult acted on (every score passes a threshold of 1e-6), so there is an event to review."""
    await service.set_threshold(chat, SERVICE_ADMIN, "insult", 1e-6)
    outcome = await service.handle(Message(chat, "m-1", Actor(MEMBER_ID), "you are so stupid"))
    assert outcome.event_id is not None
    return {"event": str(outcome.event_id)}


async def disabled(service: ModerationService, chat: ChatRef) -> dict[str, str]:
    await service.set_enabled(chat, SERVICE_ADMIN, False)
    return {}


def option(name: str, value: Any, kind: int = 3) -> dict[str, Any]:
    """A slash command option: 3 string, 4 integer, 5 boolean, 7 channel, 9 mentionable, 10 number."""
    return {"type": kind, "name": name, "value": value}


def sub(name: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": 1, "name": name, "options": list(options)}]


@dataclass(frozen=True)
class CommandCase:
    name: str
    text: str  # "{sentiment}", "{event}", "{member}", "{channel}" are filled in per platform
    discord: tuple[str, list[dict[str, Any]]]
    settled: Callable[[ChatSettings], bool] | None = None
    says: str = ""
    before: Before = nothing
    resolve: dict[str, str] = field(default_factory=dict)  # Discord: option ids the fake resolves

    def fill(self, text: str, values: dict[str, str]) -> str:
        return text.format(**values)

    def discord_options(self, values: dict[str, str]) -> list[dict[str, Any]]:
        def filled(item: Any) -> Any:
            if isinstance(item, dict):
                return {key: filled(value) for key, value in item.items()}
            if isinstance(item, list):
                return [filled(value) for value in item]
            return item.format(**values) if isinstance(item, str) else item

        options = filled(self.discord[1])
        if self.name == "review":  # an integer option
            options[0]["options"][0]["value"] = int(values["event"])
        return options


CASES = [
    CommandCase(
        "classify",
        "/classify you are so stupid",
        ("classify", [option("text", "you are so stupid")]),
        says="identity_hate",
    ),
    CommandCase("model list", "/model", ("model", sub("list")), says="{sentiment}"),
    CommandCase(
        "model set",
        "/model {sentiment}",
        ("model", sub("set", option("name", "{sentiment}"))),
        settled=lambda s: s.model is not None and "sentiment" in s.model,
    ),
    CommandCase("settings", "/settings", ("moderation", sub("show")), says="language gate"),
    CommandCase(
        "threshold act",
        "/threshold insult act 0.9",
        ("moderation", sub("threshold", option("label", "insult"), option("value", 0.9, 10), option("point", "act"))),
        settled=lambda s: s.thresholds == {"insult": {"act": 0.9}},
    ),
    CommandCase(
        "threshold both",
        "/threshold threat 0.8",
        ("moderation", sub("threshold", option("label", "threat"), option("value", 0.8, 10))),
        settled=lambda s: s.thresholds == {"threat": {"flag": 0.8, "act": 0.8}},
    ),
    CommandCase(
        "action",
        "/action delete",
        ("moderation", sub("action", option("action", "delete"))),
        settled=lambda s: s.action == "delete",
    ),
    CommandCase(
        "acting labels",
        "/labels insult, threat",
        ("moderation", sub("labels", option("labels", "insult, threat"))),
        settled=lambda s: s.acting_labels == ("insult", "threat"),
    ),
    CommandCase(
        "exempt",
        "/exempt {member}",
        ("moderation", sub("exempt", option("target", "{member}", 9))),
        settled=lambda s: len(s.exempt_users) == 1,
        resolve={"member": "member"},
    ),
    CommandCase(
        "log channel",
        "/logchannel {channel}",
        ("moderation", sub("logchannel", option("channel", "{channel}", 7))),
        settled=lambda s: s.log_channel is not None,
        resolve={"channel": "mod-log"},
    ),
    CommandCase("disable", "/disable", ("moderation", sub("disable")), settled=lambda s: not s.enabled),
    CommandCase("enable", "/enable", ("moderation", sub("enable")), settled=lambda s: s.enabled, before=disabled),
    CommandCase(
        "store text",
        "/storetext on",
        ("moderation", sub("storetext", option("on", True, 5))),
        settled=lambda s: s.store_text,
    ),
    CommandCase(
        "language gate",
        "/languagegate off",
        ("moderation", sub("languagegate", option("on", False, 5))),
        settled=lambda s: not s.language_gate,
    ),
    CommandCase(
        "escalation",
        "/escalation 2 1h 2min",
        ("moderation", sub("escalation", option("strikes", 2, 4), option("window", "1h"), option("timeout", "2min"))),
        settled=lambda s: (s.strike_limit, s.strike_window_seconds, s.timeout_seconds) == (2, 3600, 120),
    ),
    CommandCase("stats", "/stats", ("moderation", sub("stats")), says="events logged", before=logged_event),
    CommandCase(
        "review",
        "/review {event} wrong",
        ("moderation", sub("review", option("event", 0, 4), option("verdict", "wrong"))),
        says="marked not toxic",
        before=logged_event,
    ),
    CommandCase("help", "/help", ("help", []), says="escalation"),
]


def ids() -> list[str]:
    return [case.name for case in CASES]
