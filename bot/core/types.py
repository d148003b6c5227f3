"""Platform-free value types shared by the core, the storage and the adapters."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.text import clean_text


class Task(StrEnum):
    MULTI_LABEL = "multi_label"  # independent sigmoid per label (toxicity)
    SINGLE_LABEL = "single_label"  # softmax over labels (sentiment)


@dataclass(frozen=True, slots=True)
class Summary:
    """The one-row verdict the original demo showed.

    Toxicity models: ``toxic`` is ``scores["toxic"] >= threshold``; ``label``/``score`` are the highest label other
    than ``toxic``. Single-label models: ``toxic`` is None and ``label``/``score`` are the predicted class.
    """

    label: str
    score: float
    toxic: bool | None


@dataclass(frozen=True, slots=True)
class Classification:
    """Scores of one text by one model, in the model's label order."""

    model: str
    task: Task
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    summary: Summary
    truncated: bool = False  # the text was longer than the model's max_length

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.labels, self.scores, strict=True))

    def score(self, label: str) -> float:
        return self.scores[self.labels.index(label)]


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Which chat, on which platform. ``chat_id`` is the platform's id as a string."""

    platform: str  # "discord" | "telegram" | "console"
    chat_id: str


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for something. ``is_admin`` is decided by the adapter from the platform, never by the client UI."""

    user_id: str
    is_admin: bool = False
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message as the core sees it: the adapters build it in one place each."""

    chat: ChatRef
    message_id: str
    author: Actor
    text: str
    author_roles: frozenset[str] = field(default_factory=frozenset)
    edited: bool = False
    revision: int = 0  # 0 as first sent; an edit's platform timestamp, so a late redelivery never undoes an edit
    inbox_id: int | None = None  # the intake row it came from (marked done with its event)

    def __post_init__(self) -> None:
        # the boundary: text that cannot be stored (lone surrogates, NUL) is replaced before anything sees it
        object.__setattr__(self, "text", clean_text(self.text))
