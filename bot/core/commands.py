"""The command surface, once: platform-free handlers that call the service and return neutral replies.

Discord (slash options), Telegram and the console (text, through ``bot.core.command_text``) parse their input into
these calls and render the ``Reply``. The service checks admin rights again, whatever the adapter decided.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.core.dashboard_access import LinkMaker, dashboard_answer
from bot.core.durations import format_duration
from bot.core.errors import BotError
from bot.core.language import language_name
from bot.core.model_folder import POINTS
from bot.core.moderation import FeedbackResult, ModerationService
from bot.core.records import ChatSettings, ChatStats
from bot.core.replies import Reply
from bot.core.types import Actor, ChatRef


@dataclass(frozen=True, slots=True)
class Context:
    """Who runs a command, in which chat (``actor.is_admin`` comes from the platform, checked by the adapter)."""

    chat: ChatRef
    actor: Actor


async def answer(call: Awaitable[Reply]) -> Reply:
    """The handler's reply, or its refusal as a one-line error reply (bad input, not an admin, unknown model ...)."""
    try:
        return await call
    except BotError as error:
        return Reply.failure(str(error))


def on_off(value: bool) -> str:
    return "on" if value else "off"


def number(threshold: float) -> str:
    """Two decimals, as the policy's reasons write them; tiny values in full (0.000001, not 0.00)."""
    return f"{threshold:.2f}" if threshold >= 0.01 else f"{threshold:g}"


class Commands:
    """One method per command; each returns a ``Reply`` or raises a ``BotError`` (see ``answer``)."""

    def __init__(self, service: ModerationService) -> None:
        self.service = service

    async def classify(self, ctx: Context, text: str, model: str | None = None, *, explain: bool = False) -> Reply:
        """The per-label table of ``text`` with ``model``, else the chat's model (with ``explain``: the words that
        drove the scores); nothing logged."""
        result = await self.service.classify(text, chat=ctx.chat, model=model, actor=ctx.actor)
        why = await self.service.explain(text, result) if explain else None
        spec = self.service.registry.get(result.model)
        return Reply(title=spec.display_name or spec.name, scores=result, quoted=text, explanation=why)

    async def models(self, ctx: Context) -> Reply:
        current = self.service.effective_model(await self.service.settings(ctx.chat))
        registry = self.service.registry
        rows = []
        for spec in self.service.models():
            notes = [str(spec.task), spec.runtime, str(registry.availability(spec.name))]
            marks = (" · in use here" if spec.name == current else "") + (
                " · default" if spec.name == registry.default else ""
            )
            rows.append((spec.name, f"{spec.display_name} ({', '.join(notes)}){marks}"))
        return Reply(title="Models", table=tuple(rows), lines=("Admins switch with /model NAME.",))

    async def set_model(self, ctx: Context, name: str) -> Reply:
        settings = await self.service.set_model(ctx.chat, ctx.actor, name.strip())
        return Reply.text(f"This chat now uses {self.service.effective_model(settings)}.")

    async def settings(self, ctx: Context) -> Reply:
        """The chat's settings, every one of them, the same on every platform."""
        settings = await self.service.settings(ctx.chat)
        return Reply(title="Moderation settings", table=await self.settings_rows(settings))

    async def settings_rows(self, settings: ChatSettings) -> tuple[tuple[str, str], ...]:
        """The one settings view: (setting, value) rows."""
        model = self.service.effective_model(settings)
        thresholds = await self.service.thresholds(settings)
        languages = await self.service.model_languages(settings)
        rows = [
            ("moderation", on_off(settings.enabled)),
            ("model", model + ("" if settings.model else " (default)")),
            ("action", str(settings.action)),
            ("acting labels", ", ".join(settings.acting_labels) or "none (everything only flags)"),
        ]
        for label, points in thresholds.items():
            mine = settings.thresholds.get(label, {})
            shown = [f"{point} {number(getattr(points, point))}{'*' if point in mine else ''}" for point in POINTS]
            rows.append((f"threshold {label}", ", ".join(shown)))
        rows += [
            ("escalation", escalation_text(settings)),
            ("exempt users", ", ".join(sorted(settings.exempt_users)) or "none"),
            ("exempt roles", ", ".join(sorted(settings.exempt_roles)) or "none"),
            ("log channel", settings.log_channel or "off"),
            ("language gate", language_gate_text(settings.language_gate, languages)),
            ("log keeps", "whole messages" if settings.store_text else "an excerpt of each message"),
        ]
        if any(settings.thresholds.values()):
            rows.append(("*", "set in this chat; the others come from the model"))
        return tuple(rows)

    async def threshold(self, ctx: Context, label: str, value: float | None, point: str | None = None) -> Reply:
        """``point`` "flag", "act" or None (both); ``value`` None resets to the model's."""
        settings = await self.service.set_threshold(ctx.chat, ctx.actor, label, value, point)
        points = (await self.service.thresholds(settings))[label]
        which = f"{point} threshold" if point else "thresholds"
        done = "reset to the model's" if value is None else f"set to {number(value)}"
        return Reply.text(f"{label}: {which} {done} (now flag {number(points.flag)}, act {number(points.act)}).")

    async def action(self, ctx: Context, action: str) -> Reply:
        settings = await self.service.set_action(ctx.chat, ctx.actor, action)
        return Reply.text(f"Acting labels over their act threshold now get: {settings.action}.")

    async def acting_labels(self, ctx: Context, labels: Sequence[str]) -> Reply:
        settings = await self.service.set_acting_labels(ctx.chat, ctx.actor, labels)
        return Reply.text(f"Acting labels: {', '.join(settings.acting_labels) or 'none (everything only flags)'}.")

    async def exempt(
        self, ctx: Context, kind: Literal["user", "role"], ident: str, exempt: bool = True, shown: str | None = None
    ) -> Reply:
        """Never act on this user or role (``exempt=False`` undoes it); ``shown`` is how the platform names it."""
        await self.service.set_exempt(ctx.chat, ctx.actor, kind, ident.strip(), exempt)
        return Reply.text(f"{kind} {shown or ident} is {'now' if exempt else 'no longer'} exempt.")

    async def log_channel(self, ctx: Context, channel: str | None, shown: str | None = None) -> Reply:
        await self.service.set_log_channel(ctx.chat, ctx.actor, channel)
        return Reply.text(f"Mod-log: {shown or channel}." if channel else "Mod-log turned off.")

    async def enabled(self, ctx: Context, on: bool) -> Reply:
        await self.service.set_enabled(ctx.chat, ctx.actor, on)
        return Reply.text(f"Automatic moderation is {on_off(on)}" + ("." if on else " (/classify keeps working)."))

    async def store_text(self, ctx: Context, on: bool) -> Reply:
        await self.service.set_store_text(ctx.chat, ctx.actor, on)
        keeps = "whole messages (export-feedback can use them)" if on else "an excerpt of each message"
        return Reply.text(f"The moderation log now keeps {keeps}.")

    async def language_gate(self, ctx: Context, on: bool) -> Reply:
        settings = await self.service.set_language_gate(ctx.chat, ctx.actor, on)
        text = language_gate_text(on, await self.service.model_languages(settings))
        return Reply.text(f"Language gate: {text}.")

    async def escalation(self, ctx: Context, strikes: int, window_seconds: int, timeout_seconds: int) -> Reply:
        """A timeout at ``strikes`` strikes within the window (0 strikes: never escalate)."""
        settings = await self.service.set_escalation(
            ctx.chat, ctx.actor, strike_limit=strikes, window_seconds=window_seconds, timeout_seconds=timeout_seconds
        )
        return Reply.text(f"Escalation: {escalation_text(settings)}.")

    async def dashboard(self, ctx: Context, links: LinkMaker | None) -> Reply:
        """A signed link to the chat's web dashboard (admins; ``links`` None: the dashboard is off). Private: the
        adapter hands it only to the admin who asked."""
        return Reply(lines=tuple(dashboard_answer(links, ctx.chat, ctx.actor).splitlines()), private=True)

    async def stats(self, ctx: Context) -> Reply:
        if not ctx.actor.is_admin:  # the counts name no one, but they are the admins' business
            return Reply.failure("only the chat's admins can see the moderation statistics")
        return Reply(title="Moderation statistics", table=stats_rows(await self.service.stats(ctx.chat)))

    async def review(self, ctx: Context, event_id: int, correct: bool) -> tuple[Reply, FeedbackResult]:
        """An admin's verdict on a logged event; the adapter lifts a timeout when ``lift_timeout`` says so."""
        result = await self.service.feedback(event_id, ctx.actor, correct, chat=ctx.chat)
        notes = ["confirmed" if correct else "marked not toxic"]
        if result.strike_cleared:
            notes.append("strike cleared")
        return Reply.text(f"Event #{event_id}: {', '.join(notes)}."), result


def escalation_text(settings: ChatSettings) -> str:
    if not settings.strike_limit:
        return "never"
    return (
        f"timeout of {format_duration(settings.timeout_seconds)} at {settings.strike_limit} strikes "
        f"in {format_duration(settings.strike_window_seconds)}"
    )


def language_gate_text(on: bool, languages: Sequence[str]) -> str:
    if not on:
        return "off (messages in any language may be acted on)"
    if not languages:
        return "on (this model declares no languages, so it has no effect)"
    names = " or ".join(language_name(code) for code in languages)
    return f"on (messages confidently not in {names} are only flagged)"


def stats_rows(stats: ChatStats) -> tuple[tuple[str, str], ...]:
    return (
        ("model", stats.model or "default"),
        ("events logged", str(stats.events)),
        ("by action", _counts(stats.by_action)),
        ("by label", _counts(stats.by_label)),
        ("reviews", f"{stats.confirmed} confirmed, {stats.rejected} marked not toxic"),
        ("active strikes", str(stats.active_strikes)),
        ("actions that failed", str(stats.action_failures)),
    )


def _counts(counts: Mapping[str, int]) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{key} {value}" for key, value in items) or "none"
