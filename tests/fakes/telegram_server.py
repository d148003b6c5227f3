"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests with the real python-telegram-bot client.

It answers the methods the bot uses, records every call, lets a test feed updates into ``getUpdates`` long polls and
makes chosen methods fail (400 with a description, 429 with ``retry_after``). It models just enough of Telegram to
make failures realistic: chat membership per user, which messages exist and when they were sent, and that a bot
needs admin rights to delete other people's messages or restrict members.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import ClientSession, web

from tests.fakes._telegram_payloads import (
    BOT_ID,
    BOT_USER,
    DEFAULT_TOKEN,
    chat_member,
    error_response,
    read_params,
    user,
)


@dataclass(eq=False)  # each call is itself: two identical requests are still two calls
class Call:
    """One request the bot made: the method, its decoded parameters and the status the fake answered."""

    method: str
    params: dict[str, Any]
    status: int = 0  # 0 until answered
    result: Any = None  # what the fake answered on success (a sent message has its ``message_id`` here)


@dataclass
class Failure:
    """How the fake answers a failing call: HTTP status, description, ``retry_after`` (429), how many more times."""

    status: int
    description: str
    retry_after: int | None
    remaining: int


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None
    members: dict[int, str] = field(default_factory=dict)  # user id -> status; absent = "member"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.title:
            data["title"] = self.title
        else:
            data["first_name"] = "Private"
        return data


class FakeTelegramServer:
    """``async with FakeTelegramServer() as server:`` then point PTB at ``server.base_url``."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] | None = None  # setWebhook's parameters while a webhook is set
        self.deliveries: list[int] = []  # HTTP statuses of the bot's webhook answering each delivered update
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._chats: dict[int, _Chat] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._changed = asyncio.Condition()
        # a storm: called for every request, returns the failure to answer with (or None to answer normally)
        self.chaos: Callable[[str], Failure | None] | None = None
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- lifecycle ----------------------------------------------------------------------------------------------
    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)  # its paths hold the token
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._closing = True
        await self._notify()  # wake long polls so the server can shut down at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self) -> None:
        """An outage: every connection is closed and the port refuses new ones until ``come_back``."""
        await self.stop()
        self._closing = False

    async def come_back(self) -> None:
        """The end of an outage: the same address answers again, with every queued update still there."""
        await self.start(int(self.url.rsplit(":", 1)[1]))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What ``ApplicationBuilder().base_url`` takes (``TELEGRAM_API_BASE_URL`` takes ``url``)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    # ---- test controls ------------------------------------------------------------------------------------------
    def add_chat(self, chat_id: int, chat_type: str = "supergroup", title: str | None = "Test group") -> None:
        """Register a chat; the bot is an administrator of groups unless ``set_member`` says otherwise."""
        chat = _Chat(chat_id, chat_type, None if chat_type == "private" else title)
        if chat_type != "private":
            chat.members[BOT_ID] = "administrator"
        self._chats[chat_id] = chat

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Set ``getChatMember``'s answer: member, administrator, creator, restricted, left or kicked."""
        self._chats[chat_id].members[user_id] = status

    def fail(
        self,
        method: str,
        *,
        status: int = 400,
        description: str = "Bad Request",
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with this status (429 carries ``retry_after``)."""
        self._failures.setdefault(method, []).append(Failure(status, description, retry_after, times))

    async def post_message(
        self,
        chat_id: int,
        sender: dict[str, Any],
        text: str,
        *,
        caption: bool = False,
        reply_to: int | None = None,
        age_seconds: float = 0,
        push: bool = True,
    ) -> dict[str, Any]:
        """A user posts a message (``/commands`` get a ``bot_command`` entity); returns the Bot API ``Message``.

        ``push=False`` only records it, as a message sent before the bot was there.
        """
        message = self._new_message(chat_id, sender, text, caption=caption, date=int(time.time() - age_seconds))
        if reply_to is not None:
            message["reply_to_message"] = self._messages[(chat_id, reply_to)]
        if push:
            await self.push_update({"message": message})
        return message

    async def edit_message(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The author edits a message they sent."""
        message = dict(self._messages[(chat_id, message_id)], text=text, edit_date=int(time.time()))
        message.pop("entities", None)
        message.update(_entities(text))
        self._messages[(chat_id, message_id)] = message
        await self.push_update({"edited_message": message})
        return message

    async def press_button(self, chat_id: int, sender: dict[str, Any], message_id: int, data: str) -> str:
        """A user presses an inline button of a bot message; returns the callback query id."""
        query_id = f"cq{next(self._update_ids)}"
        query = {
            "id": query_id,
            "from": sender,
            "chat_instance": str(chat_id),
            "data": data,
            "message": self._messages[(chat_id, message_id)],
        }
        await self.push_update({"callback_query": query})
        return query_id

    async def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update for ``getUpdates``, or POST it to the webhook once one is set; returns its id."""
        update_id = next(self._update_ids)
        if self.webhook is not None:
            await self._deliver({"update_id": update_id, **update})
        else:
            self._updates.append({"update_id": update_id, **update})
            await self._notify()
        return update_id

    async def _deliver(self, update: dict[str, Any]) -> None:
        """What Telegram does in webhook mode: POST the update with the secret the bot chose."""
        assert self.webhook is not None
        secret = self.webhook.get("secret_token")
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        async with ClientSession() as session, session.post(self.webhook["url"], json=update, headers=headers) as reply:
            self.deliveries.append(reply.status)

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A message as the fake currently knows it (None once deleted)."""
        return self._messages.get((chat_id, message_id))

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda params: True,
        *,
        status: int | None = None,
        answered: bool = True,
        within: float = 60,
        start: int = 0,
    ) -> Call:
        """The first call of ``method`` from index ``start`` whose params satisfy ``predicate``, within seconds.

        By default only calls already answered count (``status`` may require one answer); ``answered=False`` also
        counts a call still in progress, such as a long poll.
        """

        def matches(call: Call) -> bool:
            if call.method != method or (answered and not call.status):
                return False
            return (status is None or call.status == status) and predicate(call.params)

        def find() -> Call | None:
            return next((call for call in self.calls[start:] if matches(call)), None)

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    # ---- the Bot API ------------------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return error_response(401, "Unauthorized")
        call = Call(method, await read_params(request))
        self.calls.append(call)
        await self._notify()
        response = await self._answer(call)
        call.status = response.status
        await self._notify()
        return response

    async def _answer(self, call: Call) -> web.Response:
        failure = self._take_failure(call.method) or (self.chaos(call.method) if self.chaos else None)
        if failure is not None:
            extra = {"parameters": {"retry_after": failure.retry_after}} if failure.retry_after else {}
            return error_response(failure.status, failure.description, **extra)
        handler = getattr(self, f"_api_{call.method.lower()}", None)
        if handler is None:
            return error_response(404, "Not Found")
        try:
            call.result = await handler(call.params)
        except _ApiError as error:
            return error_response(error.status, error.description)
        return web.json_response({"ok": True, "result": call.result})

    def _take_failure(self, method: str) -> Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    async def _api_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }

    async def _api_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        poll_seconds = float(params.get("timeout") or 0)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_seconds), self._changed:
                await self._changed.wait_for(lambda: bool(self._updates) or self._closing)
        limit = min(max(int(params.get("limit") or 100), 1), 100)  # Telegram: 1 to 100, default 100
        return self._updates[:limit]

    @property
    def unconfirmed(self) -> int:
        """Updates the bot has not yet confirmed with a later ``getUpdates`` offset."""
        return len(self._updates)

    async def _api_deletewebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

    async def _api_setwebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = params
        return True

    async def _api_setmycommands(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_setmessagereaction(self, params: dict[str, Any]) -> bool:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            raise _ApiError(400, "Bad Request: message to react not found")
        self._messages[key] = dict(self._messages[key], reactions=params.get("reaction", []))
        return True

    async def _api_answercallbackquery(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        text = str(params.get("text", ""))
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        if chat_id > 0 and chat_id not in self._chats:  # a user who never opened a private chat with the bot
            raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        message = self._new_message(chat_id, BOT_USER, text, date=int(time.time()))
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    async def _api_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        message = dict(self._messages[key], text=params["text"], edit_date=int(time.time()))
        message.pop("reply_markup", None)
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        self._messages[key] = message
        return message

    async def _api_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self._messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        message = dict(self._messages[key])
        message.pop("reply_markup", None)
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self._messages[key] = message
        return message

    async def _api_deletemessage(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        own = message["from"]["id"] == BOT_ID
        if not own and not self._bot_is_admin(chat_id):
            raise _ApiError(400, "Bad Request: message can't be deleted")
        if not own and time.time() - message["date"] > 48 * 3600:
            raise _ApiError(400, "Bad Request: message can't be deleted for everyone")
        del self._messages[(chat_id, message_id)]
        return True

    async def _api_restrictchatmember(self, params: dict[str, Any]) -> bool:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        if not self._bot_is_admin(chat_id):
            raise _ApiError(400, "Bad Request: not enough rights to restrict/unrestrict chat member")
        if self._chats[chat_id].members.get(user_id) in ("administrator", "creator"):
            raise _ApiError(400, "Bad Request: user is an administrator of the chat")
        can_send = bool(params.get("permissions", {}).get("can_send_messages"))
        self._chats[chat_id].members[user_id] = "member" if can_send else "restricted"
        return True

    async def _api_banchatsenderchat(self, params: dict[str, Any]) -> bool:
        chat_id, sender = int(params["chat_id"]), int(params["sender_chat_id"])
        if not self._bot_is_admin(chat_id):
            raise _ApiError(400, "Bad Request: not enough rights to ban a sender chat")
        self._chats[chat_id].members[sender] = "kicked"
        return True

    async def _api_unbanchatsenderchat(self, params: dict[str, Any]) -> bool:
        self._chats[int(params["chat_id"])].members.pop(int(params["sender_chat_id"]), None)
        return True

    async def _api_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chats.get(int(params["chat_id"]))
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        user_id = int(params["user_id"])
        member_user = BOT_USER if user_id == BOT_ID else user(user_id)
        return chat_member(chat.members.get(user_id, "member"), member_user)

    async def _api_getchat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat = self._chats.get(int(params["chat_id"]))
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        return chat.as_dict()

    # ---- internals ----------------------------------------------------------------------------------------------
    def _bot_is_admin(self, chat_id: int) -> bool:
        chat = self._chats[chat_id]
        return chat.type == "private" or chat.members.get(BOT_ID) in ("administrator", "creator")

    def _new_message(
        self, chat_id: int, sender: dict[str, Any], text: str, *, date: int, caption: bool = False
    ) -> dict[str, Any]:
        if chat_id not in self._chats:
            raise _ApiError(400, "Bad Request: chat not found")
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": date,
            "chat": self._chats[chat_id].as_dict(),
            "from": sender,
        }
        key = "caption" if caption else "text"
        message[key] = text
        if caption:
            message["photo"] = [{"file_id": "photo1", "file_unique_id": "p1", "width": 10, "height": 10}]
        if not caption:
            message.update(_entities(text))
        self._messages[(chat_id, message_id)] = message
        return message

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _entities(text: str) -> dict[str, Any]:
    """The ``bot_command`` entity Telegram adds to a message starting with a command."""
    if not text.startswith("/"):
        return {}
    return {"entities": [{"type": "bot_command", "offset": 0, "length": len(text.split(maxsplit=1)[0])}]}
