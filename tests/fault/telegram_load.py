"""A Telegram message load against the fake, and the check that each message was moderated exactly once."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from tests.fakes._telegram_payloads import user
from tests.fakes.telegram_server import FakeTelegramServer
from tests.fault.conftest import Load
from tests.fault.harness import Rows, wait_until

GROUP = -100555
USER_BASE = 1000


@dataclass
class Sent:
    """What the test posted: (message id, author number, whether it should strike)."""

    rows: list[tuple[int, int, bool]]

    @property
    def striking(self) -> list[int]:
        return [message_id for message_id, _, strikes in self.rows if strikes]

    def strikes_per_author(self) -> dict[str, int]:
        return dict(collections.Counter(str(USER_BASE + author) for _, author, strikes in self.rows if strikes))


async def post_load(server: FakeTelegramServer, load: Load, count: int, *, authors: int = 40, start: int = 0) -> Sent:
    sent = []
    for author, text, strikes in load.messages(count, authors, start=start):
        message = await server.post_message(GROUP, user(USER_BASE + author, f"U{author}"), text)
        sent.append((message["message_id"], author, strikes))
    return Sent(sent)


async def settled(rows: Rows, server: FakeTelegramServer, *, within: float) -> None:
    """Every update fetched and stored, every inbox row done, every decided action carried out or given up."""
    await wait_until(
        lambda: server.unconfirmed == 0 and rows.inbox_pending() == 0 and rows.actions_unsettled() == 0,
        within=within,
        every=0.5,
        what="the inbox and the actions to settle",
    )


def check_exactly_once(rows: Rows, sent: Sent, log: str = "") -> None:
    """One event per toxic message, none for the others, and each author's strikes equal their toxic messages."""
    per_message = rows.events_per_message()
    missing = [m for m in sent.striking if per_message.get((str(GROUP), str(m)), 0) == 0]
    doubled = {key: count for key, count in per_message.items() if count > 1}
    assert not missing, f"{len(missing)} of {len(sent.striking)} toxic messages were never moderated\n{log}"
    assert not doubled, f"{len(doubled)} messages have more than one event"
    assert len(per_message) == len(sent.striking), "only the toxic messages make events"
    assert rows.strikes_per_author() == sent.strikes_per_author()
