"""Neutral replies of the command surface: text lines, a name/value table, a score table, buttons as data.

Everything here is plain text: each adapter escapes and renders it its own way (Discord embeds, Telegram HTML, the
console's lines). ``render_text`` is the plain rendering (the console's).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.explain import Explanation
from bot.core.report import render_text as render_scores
from bot.core.types import Classification


@dataclass(frozen=True, slots=True)
class ReviewButton:
    """A button under a logged event: an admin marks the decision right (``correct``) or wrong ("not toxic")."""

    event_id: int
    correct: bool

    @property
    def label(self) -> str:
        return "Confirm" if self.correct else "Not toxic"


def review_buttons(event_id: int) -> tuple[ReviewButton, ...]:
    return (ReviewButton(event_id, correct=False), ReviewButton(event_id, correct=True))


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer to a command. ``error``: the command was refused or invalid (``lines`` says why, in one line)."""

    title: str = ""
    lines: tuple[str, ...] = ()
    table: tuple[tuple[str, str], ...] = ()  # (name, value) rows: a settings view, counts
    scores: Classification | None = None  # the per-label table of a classified text
    quoted: str | None = None  # the classified text, to quote back
    explanation: Explanation | None = None  # the words that drove the scores, when asked for
    buttons: tuple[ReviewButton, ...] = ()
    error: bool = False
    private: bool = False  # only for the person who asked: an ephemeral answer, a private message, never the chat

    @classmethod
    def text(cls, *lines: str, title: str = "") -> Reply:
        return cls(title=title, lines=lines)

    @classmethod
    def failure(cls, message: str) -> Reply:
        return cls(lines=(message,), error=True)


def render_text(reply: Reply) -> str:
    """The reply as plain text lines (the console)."""
    parts = [reply.title] if reply.title and reply.scores is None else []  # the score table names its model
    parts += [f"error: {line}" if reply.error else line for line in reply.lines]
    width = max((len(name) for name, _ in reply.table), default=0)
    parts += [f"{name + ':':<{width + 1}} {value}" for name, value in reply.table]
    if reply.scores is not None:
        parts.append(render_scores(reply.scores, reply.explanation))
    parts += [f"[{button.label}: /review {button.event_id} {'right' if button.correct else 'wrong'}]"
              for button in reply.buttons]  # fmt: skip
    return "\n".join(parts)
