"""Typed commands (Telegram, the console): ``/name args`` -> a ``Commands`` call; one syntax, one help.

Discord parses its slash options itself and calls the same ``Commands`` methods.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core.commands import Commands, Context, answer
from bot.core.durations import parse_duration
from bot.core.errors import InvalidSettingError
from bot.core.model_folder import POINTS
from bot.core.records import CHAT_ACTIONS
from bot.core.replies import Reply

Run = Callable[[Commands, Context, str], Awaitable[Reply]]
_ON, _OFF = ("on", "yes", "true", "1"), ("off", "no", "false", "0")
_RESET = ("default", "reset")


@dataclass(frozen=True, slots=True)
class TextCommand:
    name: str
    arguments: str  # the usage after the name
    summary: str
    admin: bool  # adapters check the platform's admin rights first (the service checks again)
    run: Run


def _usage(command: str) -> InvalidSettingError:
    spec = COMMANDS[command]
    return InvalidSettingError(f"usage: /{spec.name} {spec.arguments}".rstrip())


def _switch(word: str, command: str) -> bool:
    word = word.strip().lower()
    if word in _ON or word in _OFF:
        return word in _ON
    raise _usage(command)


async def _classify(commands: Commands, ctx: Context, rest: str) -> Reply:
    first, _, after = rest.strip().partition(" ")
    explain = first.lower() == "explain"
    text = after.strip() if explain else rest.strip()
    if not text:
        raise _usage("classify")
    return await commands.classify(ctx, text, explain=explain)


async def _model(commands: Commands, ctx: Context, rest: str) -> Reply:
    return await (commands.set_model(ctx, rest) if rest.strip() else commands.models(ctx))


async def _threshold(commands: Commands, ctx: Context, rest: str) -> Reply:
    parts = rest.split()
    point = parts.pop(1).lower() if len(parts) == 3 else None
    if len(parts) != 2 or (point is not None and point not in POINTS):
        raise _usage("threshold")
    label, raw = parts
    if raw.lower() in _RESET:
        return await commands.threshold(ctx, label, None, point)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidSettingError(f"'{raw}' is not a number between 0 and 1 (or 'default')") from None
    return await commands.threshold(ctx, label, value, point)


async def _action(commands: Commands, ctx: Context, rest: str) -> Reply:
    if not rest.strip():
        raise _usage("action")
    return await commands.action(ctx, rest.strip())


async def _labels(commands: Commands, ctx: Context, rest: str) -> Reply:
    chosen = [part for part in rest.replace(",", " ").split() if part]
    if not chosen:
        raise _usage("labels")
    return await commands.acting_labels(ctx, [] if chosen == ["none"] else chosen)


async def _exempt(commands: Commands, ctx: Context, rest: str) -> Reply:
    parts = rest.split()
    kind = parts.pop(0).lower() if parts and parts[0].lower() in ("user", "role") else "user"
    exempt = not (len(parts) == 2 and parts[1].lower() in _OFF)
    if len(parts) not in (1, 2) or (len(parts) == 2 and exempt):
        raise _usage("exempt")
    return await commands.exempt(ctx, kind, parts[0], exempt)  # type: ignore[arg-type]


async def _log_channel(commands: Commands, ctx: Context, rest: str) -> Reply:
    target = rest.strip()
    if not target:
        raise _usage("logchannel")
    return await commands.log_channel(ctx, None if target.lower() in _OFF else target)


async def _escalation(commands: Commands, ctx: Context, rest: str) -> Reply:
    parts = rest.split()
    if parts and parts[0].lower() in _OFF:
        current = await commands.service.settings(ctx.chat)
        return await commands.escalation(ctx, 0, current.strike_window_seconds, current.timeout_seconds)
    if len(parts) != 3 or not parts[0].isdigit():
        raise _usage("escalation")
    return await commands.escalation(ctx, int(parts[0]), parse_duration(parts[1]), parse_duration(parts[2]))


async def _review(commands: Commands, ctx: Context, rest: str) -> Reply:
    verdicts = {"right": True, "confirm": True, "wrong": False, "not-toxic": False}
    parts = rest.split()
    if len(parts) != 2 or not parts[0].lstrip("#").isdigit() or parts[1].lower() not in verdicts:
        raise _usage("review")
    reply, _ = await commands.review(ctx, int(parts[0].lstrip("#")), verdicts[parts[1].lower()])
    return reply


def _simple(method: str, *, on: bool | None = None, switch: str | None = None) -> Run:
    async def run(commands: Commands, ctx: Context, rest: str) -> Reply:
        handler = getattr(commands, method)
        if switch is not None:
            return await handler(ctx, _switch(rest, switch))
        return await (handler(ctx) if on is None else handler(ctx, on))

    return run


_ADMIN = True
_TABLE = (
    TextCommand(
        "classify", "[explain] TEXT", "the per-label scores of TEXT; explain: the words behind them", False, _classify
    ),
    TextCommand("model", "[NAME]", "the models; with NAME, switch this chat's model (admins)", False, _model),
    TextCommand("settings", "", "every moderation setting of this chat", _ADMIN, _simple("settings")),
    TextCommand(
        "threshold",
        "LABEL [flag|act] VALUE|default",
        "a label's flag threshold (review) and/or act threshold (automatic action), 0-1",
        _ADMIN,
        _threshold,
    ),
    TextCommand("action", "|".join(CHAT_ACTIONS), "what acting labels over their act threshold get", _ADMIN, _action),
    TextCommand("labels", "LABEL[,LABEL...]|none", "the labels that may act; the others only flag", _ADMIN, _labels),
    TextCommand("exempt", "[user|role] ID [off]", "never act on this user (or role); off undoes it", _ADMIN, _exempt),
    TextCommand(
        "logchannel", "CHAT_ID|off", "where the bot posts what it did, with review buttons", _ADMIN, _log_channel
    ),
    TextCommand("enable", "", "turn automatic moderation on", _ADMIN, _simple("enabled", on=True)),
    TextCommand("disable", "", "turn moderation off (/classify keeps working)", _ADMIN, _simple("enabled", on=False)),
    TextCommand(
        "storetext",
        "on|off",
        "keep whole messages in the log (export-feedback)",
        _ADMIN,
        _simple("store_text", switch="storetext"),
    ),
    TextCommand(
        "languagegate",
        "on|off",
        "only flag messages the model cannot read",
        _ADMIN,
        _simple("language_gate", switch="languagegate"),
    ),
    TextCommand(
        "escalation",
        "STRIKES WINDOW TIMEOUT|off",
        "a timeout at STRIKES strikes in WINDOW (3 24h 10min)",
        _ADMIN,
        _escalation,
    ),
    TextCommand("stats", "", "counts of this chat's moderation log", _ADMIN, _simple("stats")),
    TextCommand(
        "review", "EVENT_ID right|wrong", "review a logged event (wrong: not toxic, clears its strike)", _ADMIN, _review
    ),
)
COMMANDS: dict[str, TextCommand] = {command.name: command for command in _TABLE}


async def run_text(commands: Commands, ctx: Context, name: str, rest: str) -> Reply | None:
    """Run ``/name rest``; None for a name that is not a command here (``help`` is the adapter's)."""
    command = COMMANDS.get(name.lower())
    if command is None:
        return None
    return await answer(command.run(commands, ctx, rest))


def help_reply(*, exclude: frozenset[str] = frozenset(), extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """Every typed command with its arguments (minus those a platform lacks), then ``extra`` rows."""
    rows = [
        (f"/{command.name} {command.arguments}".rstrip(), command.summary + (" (admins)" if command.admin else ""))
        for command in _TABLE
        if command.name not in exclude
    ]
    return Reply(title="Commands", table=(*rows, *extra))
