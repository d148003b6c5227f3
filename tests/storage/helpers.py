"""Builders shared by the storage tests."""

from __future__ import annotations

import itertools

from bot.core.model_folder import LabelThresholds
from bot.core.records import NewEvent
from bot.core.types import ChatRef

CHAT = ChatRef("telegram", "-100123")
OTHER_CHAT = ChatRef("discord", "987654321")
_MESSAGE_IDS = itertools.count(1)


def new_event(
    *,
    chat: ChatRef = CHAT,
    author_id: str = "user-1",
    message_id: str | None = None,
    text: str = "you are so stupid and everyone here knows it, honestly",
    store_text: bool = False,
    created_at: float = 1_000_000.0,
    strike: bool = True,
    action: str = "warn",
    flagged: tuple[str, ...] = ("toxic", "insult"),
    timeout_seconds: int = 0,
) -> NewEvent:
    triggered = tuple(label for label in flagged if label != "toxic")
    return NewEvent(
        chat=chat,
        message_id=message_id or f"m-{next(_MESSAGE_IDS)}",  # one event per message: each call a new one
        author_id=author_id,
        model="tiny-toxic",
        scores={"toxic": 0.93, "insult": 0.81, "threat": 0.02},
        action=action,
        reason="insult 0.81 >= 0.50 -> warn (strike 1 of 3 in 24h)",
        flagged=flagged,
        triggered=triggered,
        thresholds={
            "toxic": LabelThresholds(0.5, 0.5),
            "insult": LabelThresholds(0.4, 0.5),
            "threat": LabelThresholds(0.5, 0.9),
        },
        text=text,
        store_text=store_text,
        created_at=created_at,
        strike=strike,
        timeout_seconds=timeout_seconds,
    )
