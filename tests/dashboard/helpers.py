"""A dashboard over a real database and the real service (scripted scores), and a platform that records calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.moderation import ModerationService
from bot.core.platforms import Platforms
from bot.core.types import Actor, ChatRef, Message
from bot.dashboard import create_app
from bot.dashboard.auth import Signer
from bot.storage import Storage
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry

CHAT = ChatRef("telegram", "-1001")
OTHER_CHAT = ChatRef("telegram", "-1002")
ADMIN = "42"
KEY = "test-signing-key-0123456789"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingPlatform:
    """The platform side: who is admin where, and the timeouts lifted (what the dashboard asked it to do)."""

    admins: dict[str, set[str]] = field(default_factory=dict)
    lifted: list[tuple[str, str]] = field(default_factory=list)
    admin_checks: int = 0

    async def is_admin(self, chat_id: str, user_id: str) -> bool:
        self.admin_checks += 1
        return user_id in self.admins.get(chat_id, set())

    async def lift_timeout(self, chat_id: str, user_id: str) -> str:
        self.lifted.append((chat_id, user_id))
        return "timeout lifted"


@dataclass
class Setup:
    storage: Storage
    service: ModerationService
    platform: RecordingPlatform
    signer: Signer
    clock: Clock
    app: object

    async def post(self, text: str, *, chat: ChatRef = CHAT, author: str = "7", message_id: str = "1") -> int:
        """A message through the real service; the logged event's id."""
        outcome = await self.service.handle(Message(chat, message_id, Actor(author), text))
        assert outcome.event_id is not None, outcome.decision
        return outcome.event_id


@asynccontextmanager
async def dashboard_setup(folder: Path, *, admin_ttl: float = 0.0) -> AsyncIterator[Setup]:
    clock = Clock()
    storage = await Storage.open(folder / "bot.sqlite3")
    registry = scripted_registry(folder)
    classifier = scripted_classifier(registry)
    service = ModerationService(classifier, storage, registry, clock=clock)
    platform = RecordingPlatform({CHAT.chat_id: {ADMIN}, OTHER_CHAT.chat_id: {ADMIN}})
    platforms = Platforms()
    platforms.register("telegram", platform)
    signer = Signer(KEY, clock=clock)
    app = create_app(storage, service, platforms, signer, admin_ttl=admin_ttl, clock=clock)
    try:
        yield Setup(storage, service, platform, signer, clock, app)
    finally:
        await classifier.aclose()
        await storage.close()
