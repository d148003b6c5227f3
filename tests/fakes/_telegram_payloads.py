"""Bot API objects and request decoding for the fake Telegram server."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

BOT_ID = 4242
BOT_USERNAME = "modbot"
DEFAULT_TOKEN = "4242:TEST-token"
# Form fields that PTB sends as plain strings; every other field is JSON-encoded by PTB.
_STRING_FIELDS = frozenset({"text", "parse_mode", "callback_query_id", "url", "secret_token", "caption"})
_ADMIN_RIGHTS = (
    "can_be_edited can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members can_promote_members "
    "can_change_info can_invite_users can_post_stories can_edit_stories can_delete_stories can_pin_messages"
)
_MEMBER_RIGHTS = (
    "can_change_info can_invite_users can_pin_messages can_send_messages can_send_polls can_send_other_messages "
    "can_add_web_page_previews can_manage_topics can_send_audios can_send_documents can_send_photos can_send_videos "
    "can_send_video_notes can_send_voice_notes can_edit_tag can_react_to_messages"
)


def user(user_id: int, first_name: str = "User", *, is_bot: bool = False) -> dict[str, Any]:
    """A Bot API ``User`` object."""
    return {"id": user_id, "is_bot": is_bot, "first_name": first_name}


BOT_USER = {**user(BOT_ID, "Moderation bot", is_bot=True), "username": BOT_USERNAME}


def chat_member(status: str, member_user: dict[str, Any]) -> dict[str, Any]:
    """A ``ChatMember`` of the given status, with every field PTB requires for it."""
    if status == "creator":
        return {"status": "creator", "user": member_user, "is_anonymous": False}
    if status == "administrator":
        rights = dict.fromkeys(_ADMIN_RIGHTS.split(), True)
        return {"status": "administrator", "user": member_user, "is_anonymous": False, **rights}
    if status == "restricted":
        rights = dict.fromkeys(_MEMBER_RIGHTS.split(), False)
        return {"status": "restricted", "user": member_user, "is_member": True, "until_date": 0, **rights}
    return {"status": status, "user": member_user}


def error_response(status: int, description: str, **extra: Any) -> web.Response:
    """A Bot API error: ``{"ok": false, "error_code": ..., "description": ...}`` with the same HTTP status."""
    body = {"ok": False, "error_code": status, "description": description, **extra}
    return web.json_response(body, status=status)


async def read_params(request: web.Request) -> dict[str, Any]:
    """A request's parameters from the query, a form (PTB) or a JSON body, non-string fields decoded."""
    raw: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw.update(await request.json())
        return raw
    if request.can_read_body:
        form = await request.post()
        raw.update({key: value for key, value in form.items() if isinstance(value, str)})
    return {key: _decode(key, value) for key, value in raw.items()}


def _decode(key: str, value: Any) -> Any:
    if key in _STRING_FIELDS or not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
