"""The console chat: lines become messages and commands of the real service (scores from a word table)."""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.adapters.console import CONSOLE_CHAT, ConsoleChat, serve
from bot.config import Settings
from bot.core.moderation import ModerationService
from bot.storage import Storage
from tests.adapters.command_cases import CASES, MEMBER_ID, CommandCase, ids
from tests.fakes.scripted_backend import scripted_classifier, scripted_registry

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[ModerationService]:
    registry = scripted_registry(tmp_path)
    classifier = scripted_classifier(registry)
    async with await Storage.open(tmp_path / "bot.sqlite3") as storage:
        yield ModerationService(classifier, storage, registry)
    await classifier.aclose()


async def chat_session(service: ModerationService, *lines: str) -> list[str]:
    """Feed lines to a ConsoleChat; return the answer to each line (echo off)."""
    answers = []
    chat = ConsoleChat(service, out := io.StringIO())
    for line in lines:
        start = out.tell()
        await chat.handle_line(line)
        answers.append(out.getvalue()[start:].rstrip("\n"))
    return answers


async def test_messages_are_answered_with_their_decision_and_flagged_ones_with_the_table(
    service: ModerationService,
) -> None:
    clean, insult = await chat_session(service, "have a nice day", "you are so stupid")
    assert clean.startswith("none: no label over its flag threshold")
    assert "\n" not in clean  # no table for a clean message
    first, *table = insult.splitlines()
    assert first == (
        "none: insult 0.91 >= act 0.50 -> warn (strike 1 of 3 in 24 h), but the author is an admin: never acted on"
        " [event #1]"
    )
    assert any(re.match(r"\s+insult\s+0\.910\s+█+", row) for row in table)


async def test_as_a_member_the_policy_acts_and_escalates(service: ModerationService) -> None:
    answers = await chat_session(service, "/as member", "stupid", "stupid", "stupid", "damn")
    assert answers[0] == "you are now the local member (local-member)"
    assert answers[1].startswith("warn: insult 0.91 >= act 0.50 -> warn (strike 1 of 3 in 24 h) [event #1]")
    assert answers[3].startswith("timeout: insult 0.91 >= act 0.50; 3rd strike in 24 h -> timeout 10 min [event #3]")
    assert answers[4].startswith("flag: toxic 0.72 >= flag 0.50, obscene 0.81 >= flag 0.50: flag only")


async def test_admin_commands_change_the_chat_and_are_refused_to_members(service: ModerationService) -> None:
    answers = await chat_session(
        service,
        "/threshold insult 0.95",
        "/action delete",
        "/as member",
        "stupid",
        "/action warn",
        "/as admin",
        "/threshold insult default",
        "/as member",
        "stupid",
    )
    assert answers[0] == "insult: thresholds set to 0.95 (now flag 0.95, act 0.95)."
    assert answers[1] == "Acting labels over their act threshold now get: delete."
    assert answers[3].startswith("flag: ")  # toxic 0.93 flags; insult 0.91 < 0.95 does not act
    assert answers[4] == "error: only the chat's admins can change the action"
    assert answers[6] == "insult: thresholds reset to the model's (now flag 0.50, act 0.50)."
    assert answers[8].startswith("delete: insult 0.91 >= act 0.50 -> delete")
    assert (await service.settings(CONSOLE_CHAT)).action == "delete"


async def test_bad_commands_get_a_clear_answer_and_the_chat_goes_on(service: ModerationService) -> None:
    answers = await chat_session(
        service,
        "/threshold insult lots",
        "/threshold insult",
        "/threshold rudeness 0.5",
        "/action ban",
        "/model gpt-17",
        "/feedback 99 wrong",
        "/feedback x",
        "/classify",
        "/dance",
        "stupid",
    )
    assert answers[:9] == [
        "error: 'lots' is not a number between 0 and 1 (or 'default')",
        "error: usage: /threshold LABEL [flag|act] VALUE|default",
        "error: unknown label 'rudeness' (labels: toxic, severe_toxic, obscene, threat, insult, identity_hate)",
        "error: unknown action 'ban' (choose one of: flag, delete, warn, timeout)",
        "error: unknown model 'gpt-17' (known: scripted-toxic, scripted-sentiment)",
        "error: no moderation event #99",
        "error: usage: /review EVENT_ID right|wrong",
        "error: usage: /classify [explain] TEXT",
        "unknown command /dance: /help lists them",
    ]
    assert answers[9].startswith("none: insult 0.91")


async def test_model_lists_and_switches_models(service: ModerationService) -> None:
    listing, switched, classified, settings = await chat_session(
        service, "/model", "/model scripted-sentiment", "/classify so stupid", "/settings"
    )
    assert listing.splitlines()[2].startswith("scripted-toxic:") and "in use here · default" in listing
    assert listing.splitlines()[3].startswith("scripted-sentiment:")
    assert switched == "This chat now uses scripted-sentiment."
    assert "model: scripted-sentiment" in classified and "Prediction: NEGATIVE (0.970)" in classified
    assert re.search(r"^model: +scripted-sentiment$", settings, re.M) and re.search(r"^action: +warn$", settings, re.M)


async def test_stats_and_feedback(service: ModerationService) -> None:
    answers = await chat_session(service, "/as member", "stupid", "damn", "/as admin", "/feedback 1 wrong", "/stats")
    assert answers[4] == "Event #1: marked not toxic, strike cleared."
    assert answers[5].splitlines() == [
        "Moderation statistics",
        "model:               scripted-toxic",
        "events logged:       2",
        "by action:           flag 1, warn 1",
        "by label:            toxic 2, insult 1, obscene 1",
        "reviews:             0 confirmed, 1 marked not toxic",
        "active strikes:      0",
        "actions that failed: 0",
    ]


async def test_serve_reads_a_pipe_to_its_end_and_echoes_each_line(service: ModerationService) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"hello\n/as member\nstupid\n\xff broken \n")
    os.close(write_end)
    out = io.StringIO()
    with os.fdopen(read_end, "rb") as stdin:
        await asyncio.wait_for(serve(service, Settings(), asyncio.Event(), stdin=stdin, stdout=out), 30)
    lines = out.getvalue().splitlines()
    assert lines[0] == "> hello" and lines[1].startswith("none: ")
    assert lines[2:4] == ["> /as member", "you are now the local member (local-member)"]
    assert lines[4] == "> stupid" and lines[5].startswith("warn: ")
    assert "> \ufffd broken " in lines  # undecodable bytes are replaced, not fatal


async def test_serve_stops_when_asked_while_waiting_for_input(service: ModerationService) -> None:
    read_end, write_end = os.pipe()
    stop = asyncio.Event()
    out = io.StringIO()
    with os.fdopen(read_end, "rb") as stdin:
        try:
            task = asyncio.create_task(serve(service, Settings(), stop, stdin=stdin, stdout=out))
            os.write(write_end, b"stupid\n")
            for _ in range(200):  # the loop keeps running while the reader waits for more input
                await asyncio.sleep(0.05)
                if "none: " in out.getvalue():
                    break
            assert not task.done()
            stop.set()
            await asyncio.wait_for(task, 10)
        finally:
            os.close(write_end)  # lets the reading thread see the end before its pipe closes
            await asyncio.sleep(0.1)
    assert out.getvalue().startswith("> stupid\nnone: insult 0.91")


@pytest.mark.parametrize("case", CASES, ids=ids())
async def test_every_command_of_the_shared_surface_works_in_the_console(
    service: ModerationService, case: CommandCase
) -> None:
    values = {"sentiment": "scripted-sentiment", "member": MEMBER_ID, "channel": "-100999"}
    values |= await case.before(service, CONSOLE_CHAT)
    if case.name == "log channel":  # a console has no other channel to post to
        [answer] = await chat_session(service, case.fill(case.text, values))
        assert answer == "unknown command /logchannel: /help lists them"
        return
    [answer] = await chat_session(service, case.fill(case.text, values))
    assert not answer.startswith("error"), answer
    assert case.fill(case.says, values) in answer
    if case.settled is not None:
        assert case.settled(await service.settings(CONSOLE_CHAT)), answer


async def test_flagged_messages_and_classify_explain_say_which_words_drove_the_score(
    service: ModerationService,
) -> None:
    flagged, plain, explained, usage = await chat_session(
        service,
        "you are so stupid",
        "/classify so damn stupid",
        "/classify explain so damn stupid",
        "/classify explain",
    )
    assert flagged.splitlines()[-1].strip() == 'why: insult 0.91: "stupid" +0.89'
    assert "why:" not in plain
    assert explained.splitlines()[-1] == 'why: insult 0.91: "stupid" +0.89'
    assert usage == "error: usage: /classify [explain] TEXT"


async def test_serve_stops_on_request_with_a_backlog_of_piped_lines(service: ModerationService) -> None:
    stop = asyncio.Event()
    handled: list[str] = []

    class Stopping(io.StringIO):
        def write(self, text: str) -> int:
            handled.append(text)
            if len(handled) == 6:  # three lines answered: the signal arrives with thousands still queued
                stop.set()
            return super().write(text)

    stdin = io.BytesIO(b"hello\n" * 20_000)
    await asyncio.wait_for(serve(service, Settings(), stop, stdin=stdin, stdout=Stopping()), 60)
    assert 6 <= len(handled) <= 8, "at most the line in hand is finished after the stop"


async def test_an_overlong_line_gets_a_one_line_error_and_the_next_line_is_handled(
    service: ModerationService,
) -> None:
    from bot.adapters.console import MAX_LINE_BYTES

    stdin = io.BytesIO(b"x" * (64 << 20) + b"\nhello\n" + b"y" * (MAX_LINE_BYTES + 1))
    out = io.StringIO()
    await asyncio.wait_for(serve(service, Settings(), asyncio.Event(), stdin=stdin, stdout=out), 120)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"error: a line of {64 << 20:,} bytes is over the {MAX_LINE_BYTES:,} limit, skipped"
    assert lines[1] == "> hello" and lines[2].startswith("none: ")
    assert lines[3].startswith(f"error: a line of {MAX_LINE_BYTES + 1:,} bytes") and len(lines) == 4


async def test_feedback_on_an_id_beyond_64_bits_is_a_one_line_error(service: ModerationService) -> None:
    [answer] = await chat_session(service, "/feedback 99999999999999999999999 right")
    assert answer == "error: no moderation event #99999999999999999999999"


async def test_a_small_threshold_is_shown_as_set_and_a_vanishing_one_refused(service: ModerationService) -> None:
    small, vanishing = await chat_session(service, "/threshold insult 0.001", "/threshold insult 1e-300")
    assert small == "insult: thresholds set to 0.001 (now flag 0.001, act 0.001)."
    assert vanishing == "error: a threshold must be above 0 (at least 1e-06) and at most 1, got 1e-300"
