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


def author_of(message: TgMessage) -> tuple[int, str] | None:
    """(id, name) of who is judged and acted on: the channel a post was sent as, else the user; None if neither.

    Posts sent as a channel carry a placeholder user shared by every channel (136817688), so strikes and bans must
    be keyed by the channel (a negative chat id), never by that user.
    """
    if message.sender_chat is not None and not is_anonymous_admin(message):
        chat = message.sender_chat
        return chat.id, chat.title or chat.username or "a channel"
    if message.from_user is None:
        return None
    return message.from_user.id, message.from_user.full_name


def to_core_message(
    message: TgMessage, *, author_is_admin: bool, edited: bool, inbox_id: int | None = None
) -> Message | None:
    """The core ``Message`` for a group message, or None when there is no author or no text to judge."""
    text = message_text(message)
    author = author_of(message)
    if author is None or not text.strip():
        return None
    author_id, name = author
    revision = int(message.edit_date.timestamp()) if edited and message.edit_date else 0
    return Message(
        chat=chat_ref(message.chat.id),
        message_id=str(message.message_id),
        author=Actor(user_id=str(author_id), is_admin=author_is_admin, display_name=name),
        text=text,
        edited=edited,
        revision=revision or (1 if edited else 0),
        inbox_id=inbox_id,
    )
