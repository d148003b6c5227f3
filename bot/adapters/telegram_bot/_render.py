"""Telegram HTML for the bot's replies, every user-supplied string escaped, every reply under Telegram's limit."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.explain import Explanation
from bot.core.replies import Reply, ReviewButton
from bot.core.report import render_telegram_html
from bot.core.types import Classification

FEEDBACK_PREFIX = "fb"
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


def reply_html(reply: Reply) -> str:
    """A neutral reply as Telegram HTML: bold title, escaped lines, one "name: value" line per table row, scores."""
    lines = [f"<b>{escape(reply.title, quote=False)}</b>"] if reply.title else []
    lines += [escape(line, quote=False) for line in reply.lines]
    lines += [f"{escape(name, quote=False)}: <code>{escape(value, quote=False)}</code>" for name, value in reply.table]
    html = "\n".join(lines)
    if reply.scores is not None:
        html = classification_html(reply.scores, reply.quoted or "", reply.explanation)
    return html


def review_keyboard(buttons: Sequence[ReviewButton]) -> InlineKeyboardMarkup | None:
    """The review buttons of a logged event, one row; the callback data is ``fb:<event id>:<1 right | 0 wrong>``."""
    if not buttons:
        return None
    row = [
        InlineKeyboardButton(b.label, callback_data=f"{FEEDBACK_PREFIX}:{b.event_id}:{int(b.correct)}") for b in buttons
    ]
    return InlineKeyboardMarkup([row])


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
