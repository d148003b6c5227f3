"""Logging set-up: the level from LOG_LEVEL, JSON lines with LOG_JSON, and every secret of the settings redacted from
every record that reaches the handler, whichever library logged it and however it got into the record."""

from __future__ import annotations

import io
import json
import logging
import os
from urllib.parse import quote

import pytest

from bot.config import Settings
from bot.logging_setup import HANDLER_NAME, setup_logging
from tests.ops.helpers import OWN_PREFIXES

DISCORD = "MTIzNDU2Nzg5MDEy.GxYzAb.discord-SECRET-part_0123456789"
TELEGRAM = "123456789:AAH-telegram-SECRET-part_0123456789"
WEBHOOK = "webhook-SECRET_0123456789"
SECRET_PARTS = ("discord-SECRET", "telegram-SECRET", "webhook-SECRET", "AAH-telegram")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Only the variables a test sets: none of the outer environment's bot settings."""
    for key in os.environ:
        if key.startswith(OWN_PREFIXES):
            monkeypatch.delenv(key)
    return monkeypatch


def configured(environment: pytest.MonkeyPatch, **variables: str) -> io.StringIO:
    for key, value in variables.items():
        environment.setenv(key, value)
    stream = io.StringIO()
    setup_logging(Settings(), stream=stream)
    return stream


def with_tokens(environment: pytest.MonkeyPatch, **variables: str) -> io.StringIO:
    return configured(
        environment, DISCORD_TOKEN=DISCORD, TELEGRAM_TOKEN=TELEGRAM, TELEGRAM_WEBHOOK_SECRET=WEBHOOK, **variables
    )


def test_secrets_logged_by_libraries_are_replaced_by_their_names(environment: pytest.MonkeyPatch) -> None:
    stream = with_tokens(environment, LOG_LEVEL="DEBUG")
    logging.getLogger("discord.gateway").debug("IDENTIFY %s", {"token": DISCORD, "intents": 33281})
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1/bot%s/getMe", TELEGRAM)
    logging.getLogger("telegram.ext.ExtBot").debug("setWebhook with %s", {"secret_token": WEBHOOK})
    logging.getLogger("some.proxy").warning("retrying %s", f"https://api/bot{quote(TELEGRAM, safe='')}/getUpdates")
    logging.getLogger("bot.adapters").info("only the secret half: %s", TELEGRAM.split(":")[1])

    output = stream.getvalue()
    assert not any(part in output for part in SECRET_PARTS), output
    lines = output.splitlines()
    assert len(lines) == 5
    assert lines[0].endswith("DEBUG discord.gateway: IDENTIFY {'token': '<DISCORD_TOKEN>', 'intents': 33281}")
    assert lines[1].endswith("INFO httpx: HTTP Request: POST http://127.0.0.1/bot<TELEGRAM_TOKEN>/getMe")
    assert lines[2].endswith("setWebhook with {'secret_token': '<TELEGRAM_WEBHOOK_SECRET>'}")
    assert lines[3].endswith("retrying https://api/bot<TELEGRAM_TOKEN>/getUpdates")
    assert lines[4].endswith("only the secret half: <TELEGRAM_TOKEN>")


def test_secrets_in_tracebacks_and_stacks_are_redacted(environment: pytest.MonkeyPatch) -> None:
    stream = with_tokens(environment)
    log = logging.getLogger("telegram.ext.Updater")
    try:
        raise ConnectionError(f"cannot reach http://127.0.0.1:9/bot{TELEGRAM}/getUpdates")
    except ConnectionError:
        log.exception("polling failed")
    log.error("state: %s", DISCORD, stack_info=True)

    output = stream.getvalue()
    assert not any(part in output for part in SECRET_PARTS), output
    assert "Traceback (most recent call last)" in output
    assert "ConnectionError: cannot reach http://127.0.0.1:9/bot<TELEGRAM_TOKEN>/getUpdates" in output
    assert "state: <DISCORD_TOKEN>" in output and "Stack (most recent call last)" in output


def test_a_record_whose_arguments_do_not_fit_is_still_redacted(environment: pytest.MonkeyPatch) -> None:
    stream = with_tokens(environment)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.name == HANDLER_NAME]  # pytest's own handler raises on this
    logging.getLogger("careless").warning("token %s and %s", DISCORD)  # one argument short
    output = stream.getvalue()
    assert DISCORD not in output
    assert "<DISCORD_TOKEN>" in output


def test_json_lines_carry_level_logger_message_and_exception(environment: pytest.MonkeyPatch) -> None:
    stream = with_tokens(environment, LOG_JSON="true")
    logging.getLogger("bot.cli.run").info("serving: %s", "discord")
    try:
        raise ValueError(f"bad token {DISCORD}")
    except ValueError:
        logging.getLogger("discord.client").exception("login failed")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert {key: first[key] for key in ("level", "logger", "message")} == {
        "level": "INFO", "logger": "bot.cli.run", "message": "serving: discord"
    }  # fmt: skip
    assert first["time"].endswith("+00:00") and "exception" not in first
    assert second["level"] == "ERROR" and second["message"] == "login failed"
    assert second["exception"].endswith("ValueError: bad token <DISCORD_TOKEN>")
    assert DISCORD not in stream.getvalue()


def test_log_level_comes_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    stream = configured(environment, LOG_LEVEL="warning")
    logging.getLogger("bot").info("hidden")
    logging.getLogger("bot").warning("shown")
    assert [line.split(" ", 2)[2] for line in stream.getvalue().splitlines()] == ["WARNING bot: shown"]


def test_one_shot_commands_only_warn_unless_log_level_is_set(environment: pytest.MonkeyPatch) -> None:
    quiet = io.StringIO()
    setup_logging(Settings(), default_level="WARNING", stream=quiet)
    logging.getLogger("bot.core").info("loaded a model")
    assert quiet.getvalue() == ""

    environment.setenv("LOG_LEVEL", "INFO")  # an explicit LOG_LEVEL wins over the command's default
    chatty = io.StringIO()
    setup_logging(Settings(), default_level="WARNING", stream=chatty)
    logging.getLogger("bot.core").info("loaded a model")
    assert chatty.getvalue().rstrip().endswith("INFO bot.core: loaded a model")


def test_setting_up_twice_leaves_one_handler(environment: pytest.MonkeyPatch) -> None:
    first = configured(environment)
    second = configured(environment)
    logging.getLogger("bot").warning("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_sql_statements_with_message_texts_are_not_logged_even_at_debug(environment: pytest.MonkeyPatch) -> None:
    stream = configured(environment, LOG_LEVEL="DEBUG")
    logging.getLogger("aiosqlite").debug("executing INSERT INTO events ... ('you are so stupid', ...)")
    logging.getLogger("bot.core.moderation").debug("event 1 in console:local: warn")
    assert "you are so stupid" not in stream.getvalue()
    assert "event 1 in console:local: warn" in stream.getvalue()
