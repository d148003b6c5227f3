"""Who may see a chat's dashboard: signed expiring links, signed sessions, CSRF tokens, and the admin re-check.

No accounts: an admin runs ``/dashboard`` in the chat and gets a link signed with the dashboard's key, scoped to that
chat and that admin and valid ``link_minutes``. Opening it starts a session (a signed cookie, HttpOnly,
SameSite=Strict, limited to that chat's URLs) that carries a random CSRF token every state-changing form must echo.
Each request asks the platform again whether the person is still an admin of the chat (answers cached briefly).
Signing uses itsdangerous; links and sessions use different salts, so one can never stand in for the other.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.core.types import ChatRef

LINK_SALT = "modbot.dashboard.link"
SESSION_SALT = "modbot.dashboard.session"
SECRET_NAME = "dashboard_signing_key"  # noqa: S105 - a row name, not a secret; where a generated key is kept in the database


class LinkError(Exception):
    """A link or session that cannot be used; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Grant:
    """An admin's access to one chat's dashboard."""

    chat: ChatRef
    user_id: str
    csrf: str = ""  # set for sessions, empty in links


def chat_path(chat: ChatRef) -> str:
    """The URL prefix of one chat's pages; the session cookie is limited to it."""
    return f"/c/{quote(chat.platform, safe='')}/{quote(chat.chat_id, safe='')}/"


class Signer:
    """Signs and checks links and sessions with one key (never logged: it lives only in the serializers)."""

    def __init__(
        self,
        key: str,
        *,
        link_seconds: int = 15 * 60,
        session_seconds: int = 60 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the dashboard signing key must be at least 16 characters")
        self._links = URLSafeTimedSerializer(key, salt=LINK_SALT)
        self._sessions = URLSafeTimedSerializer(key, salt=SESSION_SALT)
        self.link_seconds = link_seconds
        self.session_seconds = session_seconds
        self._clock = clock

    def link_token(self, chat: ChatRef, user_id: str) -> str:
        return self._dumps(self._links, {"p": chat.platform, "c": chat.chat_id, "u": user_id})

    def open_link(self, token: str) -> Grant:
        data = self._loads(self._links, token, self.link_seconds, "link")
        return Grant(ChatRef(data["p"], data["c"]), data["u"])

    def session_cookie(self, grant: Grant) -> tuple[str, Grant]:
        """A new session for ``grant`` with a fresh CSRF token: (cookie value, the session's grant)."""
        session = Grant(grant.chat, grant.user_id, secrets.token_urlsafe(32))
        data = {"p": session.chat.platform, "c": session.chat.chat_id, "u": session.user_id, "x": session.csrf}
        return self._dumps(self._sessions, data), session

    def open_session(self, value: str) -> Grant:
        data = self._loads(self._sessions, value, self.session_seconds, "session")
        if not isinstance(data.get("x"), str):
            raise LinkError("this session is not valid: run /dashboard in the chat for a new link")
        return Grant(ChatRef(data["p"], data["c"]), data["u"], data["x"])

    # itsdangerous reads the time through its signer: ours takes the injected clock, so expiry can be tested
    def _dumps(self, serializer: URLSafeTimedSerializer, data: dict[str, str]) -> str:
        signer = serializer.make_signer(serializer.salt)
        signer.get_timestamp = lambda: int(self._clock())  # type: ignore[method-assign]
        payload = serializer.dump_payload(data)
        return signer.sign(payload).decode("ascii")

    def _loads(self, serializer: URLSafeTimedSerializer, token: str, max_age: int, what: str) -> dict[str, str]:
        signer = serializer.make_signer(serializer.salt)
        signer.get_timestamp = lambda: int(self._clock())  # type: ignore[method-assign]
        try:
            payload = signer.unsign(token.encode("ascii", "replace"), max_age=max_age)
            data = serializer.load_payload(payload)
        except SignatureExpired:
            raise LinkError(f"this {what} has expired: run /dashboard in the chat for a new link") from None
        except BadSignature:
            raise LinkError(f"this {what} is not valid: run /dashboard in the chat for a new link") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in ("p", "c", "u")):
            raise LinkError(f"this {what} is not valid: run /dashboard in the chat for a new link")
        return data


def same_token(sent: str | None, expected: str) -> bool:
    """The CSRF check, in constant time."""
    return bool(sent) and bool(expected) and hmac.compare_digest(str(sent), expected)


class AdminCheck(Protocol):
    async def __call__(self, chat: ChatRef, user_id: str) -> bool: ...


class AdminCache:
    """Asks ``check`` whether someone is (still) an admin of a chat, remembering each answer ``ttl`` seconds."""

    def __init__(self, check: AdminCheck, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._check = check
        self._ttl = ttl
        self._clock = clock
        self._answers: dict[tuple[ChatRef, str], tuple[float, bool]] = {}

    async def is_admin(self, chat: ChatRef, user_id: str) -> bool:
        key = (chat, user_id)
        cached = self._answers.get(key)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        answer = bool(await self._check(chat, user_id))
        if len(self._answers) > 10_000:  # bound the memory; answers are cheap to ask again
            self._answers.clear()
        self._answers[key] = (now, answer)
        return answer
