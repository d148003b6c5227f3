"""The per-label table of a Classification, rendered as plain text, Markdown, Telegram HTML, Discord and raw JSON.

Labels and model names come from files anyone can edit and user text from anyone at all, so every renderer
escapes everything it did not write itself.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from bot.core.explain import Explanation
from bot.core.types import Classification, Task

BAR_WIDTH = 20
QUOTE_LIMIT = 300  # characters of the user's text quoted back
_FULL, _EMPTY = "█", "░"
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_~|>#\[\]()<{}+\-.!:=])")
_MENTION = re.compile(r"@(everyone|here|[!&]?\d)")
_TRUNCATED_NOTE = "long text: only its beginning was scored"


def bar(score: float, width: int = BAR_WIDTH) -> str:
    """A fixed-width bar, ``score`` in [0, 1] rounded to whole cells."""
    filled = max(0, min(width, round(score * width)))
    return _FULL * filled + _EMPTY * (width - filled)


def summary_line(c: Classification) -> str:
    """The original demo's one-row verdict as a sentence (plain text, not escaped)."""
    summary = c.summary
    if summary.toxic is None:
        return f"Prediction: {summary.label} ({summary.score:.3f})"
    if summary.toxic:
        return f"Toxic: Yes - toxicity class: {summary.label} ({summary.score:.3f})"
    return "Toxic: No - this text is not toxic"


def table_lines(c: Classification) -> list[str]:
    """Aligned rows ``label  score  bar`` (plain text, not escaped)."""
    width = max(len("label"), *(len(label) for label in c.labels))
    lines = [f"{'label':<{width}}  score  "]
    lines += [f"{label:<{width}}  {score:.3f}  {bar(score)}" for label, score in zip(c.labels, c.scores, strict=True)]
    lines[0] = lines[0].rstrip()
    return lines


def explanation_line(explanation: Explanation) -> str:
    """``why: insult 0.91: "idiot" +0.42, "stupid" +0.30`` (plain text, not escaped)."""
    return f"why: {explanation.summary()}"


def render_text(c: Classification, explanation: Explanation | None = None) -> str:
    """Plain text for terminals: model, aligned table with bars, summary (and why, when explained)."""
    lines = [f"model: {c.model}", *table_lines(c), summary_line(c)]
    if explanation is not None:
        lines.append(explanation_line(explanation))
    if c.truncated:
        lines.append(f"({_TRUNCATED_NOTE})")
    return "\n".join(lines)


def render_markdown(c: Classification) -> str:
    """A Markdown table (GitHub flavour) with the summary above it."""
    lines = [f"**{escape_markdown(c.model)}**: {escape_markdown(summary_line(c))}", ""]
    lines += ["| label | score | |", "| --- | ---: | --- |"]
    lines += [
        f"| {escape_markdown(label)} | {score:.3f} | `{bar(score)}` |"
        for label, score in zip(c.labels, c.scores, strict=True)
    ]
    if c.truncated:
        lines += ["", f"_{escape_markdown(_TRUNCATED_NOTE)}_"]
    return "\n".join(lines)


def render_telegram_html(c: Classification, text: str | None = None, explanation: Explanation | None = None) -> str:
    """Telegram ``parse_mode=HTML``: the summary in bold, the table in ``<pre>``, the quoted text escaped."""
    parts = []
    if text is not None:
        parts.append(f"<i>{html.escape(_quote(text))}</i>")
    parts.append(f"<b>{html.escape(summary_line(c))}</b>")
    parts.append(f"<pre>{html.escape(chr(10).join(table_lines(c)))}</pre>")
    if explanation is not None:
        parts.append(html.escape(explanation_line(explanation)))
    footer = f"model: {c.model}" + (f" · {_TRUNCATED_NOTE}" if c.truncated else "")
    parts.append(html.escape(footer))
    return "\n".join(parts)


def render_discord(c: Classification, text: str | None = None, explanation: Explanation | None = None) -> str:
    """Discord Markdown: summary and quoted text escaped (no mentions), the table in a code block."""
    parts = []
    if text is not None:
        parts.append(f"> {escape_discord(_quote(text))}")
    parts.append(f"**{escape_discord(summary_line(c))}**")
    table = "\n".join(table_lines(c)).replace("```", "`\u200b``")
    parts.append(f"```\n{table}\n```")
    if explanation is not None:
        parts.append(escape_discord(explanation_line(explanation)))
    footer = f"model: {c.model}" + (f" · {_TRUNCATED_NOTE}" if c.truncated else "")
    parts.append(f"-# {escape_discord(footer)}")
    return "\n".join(parts)


def render_raw(c: Classification) -> str:
    """The raw output, label -> score, like the demo's expander (JSON)."""
    return json.dumps(c.as_dict(), indent=2, ensure_ascii=False)


def as_json(c: Classification, text: str | None = None, explanation: Explanation | None = None) -> dict[str, Any]:
    """Everything in a Classification as JSON-ready data (``text`` and ``explanation`` included when given)."""
    data: dict[str, Any] = {} if text is None else {"text": text}
    data |= {
        "model": c.model,
        "task": str(c.task),
        "scores": c.as_dict(),
        "summary": {"label": c.summary.label, "score": c.summary.score, "toxic": c.summary.toxic},
        "truncated": c.truncated,
    }
    if c.task is Task.SINGLE_LABEL:
        del data["summary"]["toxic"]
    if explanation is not None:
        data["explanation"] = {
            "label": explanation.label,
            "score": explanation.score,
            "words": [{"word": w.word, "start": w.start, "end": w.end, "weight": w.weight} for w in explanation.words],
        }
    return data


def escape_markdown(text: str) -> str:
    """Backslash-escape every Markdown special character."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def escape_discord(text: str) -> str:
    """Markdown-escape for Discord and break @everyone, @here and <@id> mentions with a zero-width space."""
    return escape_markdown(_MENTION.sub("@\u200b\\1", text))


def _quote(text: str) -> str:
    """One line of the user's text, shortened for quoting."""
    flat = " ".join(text.split())
    return flat if len(flat) <= QUOTE_LIMIT else flat[: QUOTE_LIMIT - 1] + "…"
