"""A local chat on stdin/stdout: each line is a message in chat ("console", "local"), echoed with its decision.

Lines starting with ``/`` are the commands the platforms have. The local user is the chat's admin, so messages are
never acted on (the decision says what would have happened); ``/as member`` speaks as an ordinary member instead.
Works piped and interactive, and ends at end of input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from bot.config import Settings
from bot.core.command_text import help_reply, run_text
from bot.core.commands import Commands, Context
from bot.core.errors import BotError
from bot.core.moderation import ModerationService
from bot.core.replies import render_text
from bot.core.report import render_text as render_scores
from bot.core.types import Actor, ChatRef, Message

CONSOLE_CHAT = ChatRef("console", "local")
LOCAL_ADMIN = Actor("local", is_admin=True, display_name="local admin")
MAX_LINE_BYTES = 1 << 20  # a chat message is a few KB at most (Telegram 4,096 characters, Discord 4,000)
LOCAL_MEMBER = Actor("local-member", is_admin=False, display_name="local member")
NOT_HERE = frozenset({"logchannel"})  # a console has no other channel to post to
CONSOLE_ONLY = (
    ("/as admin|member", "who is talking (admins are never acted on)"),
    ("/help", "this list; anything else is a message in the chat, end of input (Ctrl-D) quits"),
)

log = logging.getLogger(__name__)


class ConsoleChat:
    """Turns lines into messages or commands of the shared command surface, and prints the answers."""

    def __init__(self, service: ModerationService, out: TextIO, *, echo: bool = False) -> None:
        self._service = service
        self._commands = Commands(service)
        self._out = out
        self._echo = echo
        self._speaker = LOCAL_ADMIN
        self._count = 0

    async def handle_line(self, line: str) -> None:
        """One line of input: a command or a message. Errors are answered, never raised."""
        line = line.rstrip("\r\n")
        if not line.strip():
            return
        if self._echo:
            self.write(f"> {line}")
        try:
            answer = await (self._command(line[1:]) if line.startswith("/") else self._message(line))
        except BotError as error:
            answer = f"error: {error}"
        except Exception as error:  # a bug must not end the session: say so, log the traceback
            log.exception("console: failed on %r", line)
            answer = f"error: internal error ({type(error).__name__}), see the log"
        self.write(answer)

    async def _command(self, text: str) -> str:
        name, _, rest = text.partition(" ")
        name = name.lower()
        if name == "help":
            return render_text(help_reply(exclude=NOT_HERE, extra=CONSOLE_ONLY))
        if name == "as":
            return self._as(rest.strip())
        if name == "feedback":  # the console's name for /review before the command surface was shared
            name = "review"
        context = Context(CONSOLE_CHAT, self._speaker)
        reply = None if name in NOT_HERE else await run_text(self._commands, context, name, rest)
        return f"unknown command /{name}: /help lists them" if reply is None else render_text(reply)

    async def _message(self, text: str) -> str:
        self._count += 1
        message = Message(chat=CONSOLE_CHAT, message_id=str(self._count), author=self._speaker, text=text)
        outcome = await self._service.handle(message)
        decision = outcome.decision
        event = f" [event #{outcome.event_id}]" if outcome.event_id is not None else ""
        answer = f"{decision.action}: {decision.reason}{event}"
        if outcome.notice:
            answer = f"notice: {outcome.notice}\n{answer}"
        if decision.flagged and outcome.classification is not None:
            answer += "\n" + _indent(render_scores(outcome.classification, outcome.explanation))
        return answer

    def _as(self, who: str) -> str:
        speakers = {"admin": LOCAL_ADMIN, "member": LOCAL_MEMBER}
        if who.lower() not in speakers:
            return "usage: /as admin|member"
        self._speaker = speakers[who.lower()]
        return f"you are now the {self._speaker.display_name} ({self._speaker.user_id})"

    def write(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


async def serve(
    service: ModerationService,
    settings: Settings,
    stop: asyncio.Event,
    *,
    stdin: BinaryIO | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Chat on stdin/stdout until end of input or ``stop``; the line being handled is finished first."""
    if stdin is None and sys.stdin is None:  # started without any standard input: nothing to chat about
        return
    source = stdin if stdin is not None else sys.stdin.buffer
    out = stdout if stdout is not None else sys.stdout
    interactive = source.isatty()
    chat = ConsoleChat(service, out, echo=not interactive)
    if interactive:
        out.write(f"local chat with the moderation bot ({CONSOLE_CHAT.platform}:{CONSOLE_CHAT.chat_id}); /help\n")
        out.flush()
    lines = _read_lines(source)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():  # checked first: with piped input a next line is always ready
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait({next_line, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done() or stop.is_set():
                next_line.cancel()
                return
            line = next_line.result()
            if line is None:
                return
            try:
                if isinstance(line, LineTooLong):
                    chat.write(f"error: a line of {line.size:,} bytes is over the {MAX_LINE_BYTES:,} limit, skipped")
                else:
                    await chat.handle_line(line)
            except BrokenPipeError:  # `... | head`: the reader left, so has the chat
                return
    finally:
        stopped.cancel()


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """An input line over ``MAX_LINE_BYTES``: answered with an error, never buffered whole."""

    size: int


def _read_lines(source: BinaryIO) -> asyncio.Queue[str | LineTooLong | None]:
    """Lines of ``source`` (None at the end), read by a daemon thread so the event loop never blocks on input.

    A thread works for pipes, files and terminals alike, and being a daemon it never holds up the exit. It reads the
    file descriptor directly: a daemon thread blocked inside a buffered reader would hold the buffer's lock, which
    the interpreter needs again at shutdown.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | LineTooLong | None] = asyncio.Queue()

    def put(item: str | LineTooLong | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def pump() -> None:
        try:
            for raw in _raw_lines(source):
                put(raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw)
        except (OSError, ValueError) as error:  # closed or unreadable input ends the chat like end of input
            log.warning("console: stopped reading input: %s", error)
        finally:
            put(None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()
    return queue


def _raw_lines(source: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes | LineTooLong]:
    """The lines of ``source`` in linear time; a line over ``limit`` bytes is skipped and reported by its size."""
    try:
        fd = source.fileno()
        read: Callable[[], bytes] = lambda: os.read(fd, 65536)  # noqa: E731 - the two sources read alike
    except (OSError, AttributeError, ValueError):  # an in-memory stream
        read = lambda: source.read(65536)  # noqa: E731
    pending = bytearray()
    overflow = 0  # bytes of the current line dropped because it is too long
    while chunk := read():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:  # a newline byte is never part of a UTF-8 sequence
            yield from _line(pending, chunk[start:end], overflow, limit)
            pending, overflow, start = bytearray(), 0, end + 1
        rest = chunk[start:]
        if overflow or len(pending) + len(rest) > limit:
            overflow += len(pending) + len(rest)
            pending = bytearray()
        else:
            pending += rest
    if pending or overflow:
        yield from _line(pending, b"", overflow, limit)


def _line(pending: bytearray, tail: bytes, overflow: int, limit: int) -> Iterator[bytes | LineTooLong]:
    size = overflow + len(pending) + len(tail)
    yield LineTooLong(size) if size > limit else bytes(pending) + tail


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
