"""``/dashboard``: the answer an admin gets privately, with a signed link to the chat's web dashboard.

The link maker lives with the dashboard (``bot.dashboard.DashboardLinks``); every platform delivers this answer
privately (ephemeral on Discord, a private message on Telegram), never in the chat itself.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.errors import PermissionDenied
from bot.core.types import Actor, ChatRef

DASHBOARD_OFF = "The web dashboard is off: the bot's operator can turn it on with DASHBOARD_PORT."


class LinkMaker(Protocol):
    @property
    def minutes(self) -> int: ...
    def link(self, chat: ChatRef, admin_id: str) -> str: ...


def dashboard_answer(links: LinkMaker | None, chat: ChatRef, actor: Actor) -> str:
    """The private answer to ``/dashboard`` (plain text). PermissionDenied unless ``actor`` is an admin of ``chat``."""
    if not actor.is_admin:
        raise PermissionDenied("only the chat's admins can open the dashboard")
    if links is None:
        return DASHBOARD_OFF
    return (
        f"Moderation dashboard of this chat: {links.link(chat, actor.user_id)}\n"
        f"The link works for {links.minutes} minutes and only for you: do not share it."
    )
