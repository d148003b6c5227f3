"""``/dashboard`` on the command surface: a private reply with a signed link, for the chat's admins only."""

from __future__ import annotations

import pytest

from bot.core.commands import Commands, Context, answer
from bot.core.dashboard_access import DASHBOARD_OFF
from bot.core.types import Actor, ChatRef
from bot.dashboard import DashboardLinks
from bot.dashboard.auth import Signer

pytestmark = pytest.mark.asyncio
CHAT = ChatRef("discord", "123")
SIGNER = Signer("command-test-signing-key-01234")
LINKS = DashboardLinks(SIGNER, "https://mod.example.org")


async def test_an_admin_gets_a_private_link_to_this_chat() -> None:
    reply = await answer(Commands(service=None).dashboard(Context(CHAT, Actor("7", is_admin=True)), LINKS))  # type: ignore[arg-type]
    assert reply.private and not reply.error
    link = reply.lines[0].split(": ", 1)[1]
    assert link.startswith("https://mod.example.org/login?t=")
    grant = SIGNER.open_link(link.split("t=", 1)[1])
    assert (grant.chat, grant.user_id) == (CHAT, "7")
    assert "15 minutes" in reply.lines[1]


async def test_a_member_is_refused_and_an_off_dashboard_says_so() -> None:
    refused = await answer(Commands(service=None).dashboard(Context(CHAT, Actor("8")), LINKS))  # type: ignore[arg-type]
    assert refused.error and "admins" in refused.lines[0] and "http" not in refused.lines[0]
    off = await answer(Commands(service=None).dashboard(Context(CHAT, Actor("7", is_admin=True)), None))  # type: ignore[arg-type]
    assert off.lines == (DASHBOARD_OFF,)
