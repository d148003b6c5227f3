"""What the web dashboard asks of a connected platform, and the directory where adapters offer it.

An adapter registers itself when it is connected; the dashboard looks the chat's platform up at each request, so a
platform that is not running simply has no dashboard (nothing can be confirmed with it).
"""

from __future__ import annotations

from typing import Protocol


class PlatformOps(Protocol):
    """Calls the dashboard makes on a platform, with the platform's own ids as strings."""

    async def is_admin(self, chat_id: str, user_id: str) -> bool:
        """Whether ``user_id`` is an admin of the chat now (asked of the platform, not of any client)."""
        ...

    async def lift_timeout(self, chat_id: str, user_id: str) -> str:
        """End a running timeout / mute of the member; what happened, in words ("timeout lifted", ...)."""
        ...


class Platforms:
    """The connected platforms, by name ("discord", "telegram")."""

    def __init__(self) -> None:
        self._ops: dict[str, PlatformOps] = {}

    def register(self, platform: str, ops: PlatformOps) -> None:
        self._ops[platform] = ops

    def unregister(self, platform: str) -> None:
        self._ops.pop(platform, None)

    def get(self, platform: str) -> PlatformOps | None:
        return self._ops.get(platform)
