"""How records look on the pages: times, score rows, and the explained words highlighted in the message."""

from __future__ import annotations

import time
from dataclasses import dataclass

from jinja2 import Environment

from bot.core.explain import Explanation
from bot.core.model_folder import LabelThresholds
from bot.core.records import EventRecord

HOW_TO_OPEN = (
    "The dashboard has no accounts: an admin runs /dashboard in the chat and the bot answers privately with a link "
    "that opens this chat's pages for 15 minutes."
)


@dataclass(frozen=True)
class Segment:
    """A piece of the message; ``weight`` is set for an explained word (how much it raised the score)."""

    text: str
    weight: float | None = None


@dataclass(frozen=True)
class ScoreRow:
    label: str
    score: float
    threshold: LabelThresholds | None  # the flag and act points it was compared with
    over: bool


def when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def explanation_of(event: EventRecord) -> Explanation | None:
    return getattr(event, "explanation", None)


def segments(event: EventRecord) -> list[Segment]:
    """The stored text cut at the explained words (words past a stored excerpt are left out)."""
    text = event.text
    explanation = explanation_of(event)
    cut = not event.text_stored and text.endswith("…")  # an excerpt: the words past its end are not there
    visible = len(text) - 1 if cut else len(text)
    words = sorted(
        (w for w in (explanation.words if explanation else ()) if w.end <= visible and text[w.start : w.end] == w.word),
        key=lambda w: w.start,
    )
    pieces: list[Segment] = []
    position = 0
    for word in words:
        if word.start < position:
            continue
        pieces += [Segment(text[position : word.start]), Segment(word.word, word.weight)]
        position = word.end
    pieces.append(Segment(text[position:]))
    return [piece for piece in pieces if piece.text]


def score_rows(event: EventRecord, limit: int = 4) -> list[ScoreRow]:
    """The highest scores first, with the threshold each was compared with."""
    ordered = sorted(event.scores.items(), key=lambda item: -item[1])[:limit]
    rows = []
    for label, score in ordered:
        threshold = event.thresholds.get(label)
        rows.append(ScoreRow(label, score, threshold, label in event.flagged))
    return rows


def action_ok(event: EventRecord) -> bool | None:
    """Whether the platform carried the action out (None: not reported)."""
    return None if event.report is None else event.report.ok


def install(env: Environment) -> None:
    """Make the helpers available to the templates."""
    env.filters["when"] = when
    env.globals.update(segments=segments, score_rows=score_rows, explanation_of=explanation_of, action_ok=action_ok)
