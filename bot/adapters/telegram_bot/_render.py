"""Telegram HTML for the bot's replies, every user-supplied string escaped, every reply under Telegram's limit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

from bot.core.explain import Explanation
from bot.core.labels import TOXICITY_LABELS
from bot.core.policy import effective_thresholds
from bot.core.records import ChatSettings, ChatStats
from bot.core.registry import ModelSpec
from bot.core.report import render_telegram_html
from bot.core.types import Classification

MAX_MESSAGE = 4096  # Telegram's limit on a message's text, in characters after entity parsing
_QUOTE_LIMITS = (None, 1000, 200, 0)  # how much of a long classified text to quote back, tried in order


def classification_html(classification: Classification, text: str, explanation: Explanation | None = None) -> str:
    """The per-label table with the classified text quoted, trimmed so the reply fits in one message."""
    for limit in _QUOTE_LIMITS:
        quoted = text if limit is None or len(text) <= limit else text[:limit] + "…"
        html = render_telegram_html(classification, text=quoted or None, explanation=explanation)
        if len(html) <= MAX_MESSAGE:
            return html
    return render_telegram_html(classification)[:MAX_MESSAGE]  # a table alone never gets near the limit


def settings_html(settings: ChatSettings, spec: ModelSpec) -> str:
    """A chat's moderation settings, one per line, with the thresholds in force for its model."""
    labels = spec.labels or (TOXICITY_LABELS if spec.is_toxicity else tuple(settings.thresholds))
    thresholds = effective_thresholds(labels, settings.thresholds, spec.thresholds)
    threshold_text = ", ".join(
        f"{escape(label)} {value:g}{'*' if label in settings.thresholds else ''}" for label, value in thresholds.items()
    )
    escalation = (
        f"timeout of {_duration(settings.timeout_seconds)} after {settings.strike_limit} strikes in "
        f"{_duration(settings.strike_window_seconds)}"
        if settings.strike_limit
        else "never"
    )
    lines = [
        "<b>Moderation settings</b>",
        f"enabled: {'yes' if settings.enabled else 'no'}",
        f"model: <code>{escape(spec.name)}</code>{'' if settings.model else ' (default)'}",
        f"action: <code>{escape(settings.action)}</code>",
        f"labels that act: {escape(', '.join(settings.acting_labels)) or 'none'}",
        f"thresholds (* set here): {threshold_text or 'from models.yaml'}",
        f"escalation: {escalation}",
        f"exempt users: {escape(', '.join(sorted(settings.exempt_users))) or 'none'}",
    ]
    return "\n".join(lines)


def stats_html(stats: ChatStats) -> str:
    """Counts of a chat's moderation log."""
    lines = [
        "<b>Moderation statistics</b>",
        f"model: <code>{escape(stats.model or 'default')}</code>",
        f"messages acted on or flagged: {stats.events}",
        f"by action: {_counts(stats.by_action)}",
        f"by label: {_counts(stats.by_label)}",
        f"reviews: {stats.confirmed} confirmed, {stats.rejected} marked not toxic",
        f"active strikes: {stats.active_strikes}",
        f"actions that failed: {stats.action_failures}",
    ]
    return "\n".join(lines)


def models_html(specs: Iterable[ModelSpec], current: str | None) -> str:
    """The models a chat can switch to, the current one marked."""
    lines = ["<b>Models</b> (admins: <code>/model NAME</code>)"]
    for spec in specs:
        mark = " ← current" if spec.name == current else ""
        lines.append(f"• <code>{escape(spec.name)}</code> {escape(spec.display_name)}{mark}")
    return "\n".join(lines)


def split_html(html: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Split at line ends into messages under ``limit``; lines must not span tags (ours never do)."""
    chunks: list[str] = []
    current = ""
    for line in html.split("\n"):
        while len(line) > limit:  # one overlong line: cut it (only happens with plain text)
            chunks.extend([current] if current else [])
            chunks.append(line[:limit])
            line, current = line[limit:], ""
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            candidate = line
        current = candidate
    if current:
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()]


def mention(user_id: int, name: str) -> str:
    """A clickable mention of a user, safe for any display name."""
    return f'<a href="tg://user?id={int(user_id)}">{escape(name or "user")}</a>'


def _counts(counts: Mapping[str, int]) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{escape(str(k))} {v}" for k, v in items) or "none"


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
