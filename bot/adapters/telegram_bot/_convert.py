"""Telegram objects -> the core's platform-free types, in one place."""

from __future__ import annotations

from telegram import Chat, User
from telegram import Message as TgMessage

from bot.core.types import Actor, ChatRef, Message

PLATFORM = "telegram"
GROUP_TYPES = frozenset({Chat.GROUP, Chat.SUPERGROUP})


def chat_ref(chat_id: int | str) -> ChatRef:
    """The core's reference to a Telegram chat."""
    return ChatRef(PLATFORM, str(chat_id))


def actor(user: User, *, is_admin: bool) -> Actor:
    """The core's view of a Telegram user; ``is_admin`` comes from getChatMember, never from the client."""
    return Actor(user_id=str(user.id), is_admin=is_admin, display_name=user.full_name)


def message_text(message: TgMessage) -> str:
    """What a message says: its text, or the caption of a photo, video or document."""
    return message.text or message.caption or ""


def is_anonymous_admin(message: TgMessage) -> bool:
    """A group admin posting as the group itself (Telegram hides who it is)."""
    return message.sender_chat is not None and message.sender_chat.id == message.chat.id


def to_core_message(message: TgMessage, *, author_is_admin: bool, edited: bool) -> Message | None:
    """The core ``Message`` for a group message, or None when there is no author or no text to judge."""
    text = message_text(message)
    if message.from_user is None or not text.strip():
        return None
    return Message(
        chat=chat_ref(message.chat.id),
        message_id=str(message.message_id),
        author=actor(message.from_user, is_admin=author_is_admin),
        text=text,
        edited=edited,
    )
