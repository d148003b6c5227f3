"""End to end: slash commands, autocomplete and the context menu of the real discord.py client against a fake Discord.

The service, storage and classifier are real (tiny models, a temporary database); only Discord is faked.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.registry import load_registry
from tests.adapters.command_cases import CASES, CommandCase, ids
from tests.adapters.discord_bot.harness import (
    SERVICE_ADMIN,
    TOXIC_TEXT,
    chat,
    embed_text,
    moderation_service,
    option,
    running_bot,
    subcommand,
)
from tests.fakes.discord_server import FakeDiscord
from tests.tiny_models import TinyModels

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60, func_only=True)]

EPHEMERAL = 64


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def classifier(tiny_models: TinyModels) -> AsyncIterator[Classifier]:
    shared = Classifier(load_registry(tiny_models.models_yaml))
    for name in shared.registry.names():  # loaded and warmed up once here, not inside a test's bounded waits
        await shared.classify(["warm up"], name)
    yield shared
    await shared.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "bot.sqlite3"


@pytest_asyncio.fixture(loop_scope="module")
async def service(classifier: Classifier, database: Path) -> AsyncIterator[ModerationService]:
    async with moderation_service(classifier, database) as core:
        yield core


async def test_commands_are_synced_globally_or_to_the_test_guilds(fake, service):
    async with running_bot(fake, service):
        pass
    synced = {(c["name"], c["type"]) for c in fake.commands["global"]}
    assert synced == {
        ("classify", 1),
        ("model", 1),
        ("moderation", 1),
        ("help", 1),
        ("dashboard", 1),
        ("Classify message", 3),
    }
    fake.commands.clear()
    async with running_bot(fake, service, guild_ids=[int(fake.guild.id)]):
        pass
    assert set(fake.commands) == {fake.guild.id}
    assert {(c["name"], c["type"]) for c in fake.commands[fake.guild.id]} == synced


async def test_classify_answers_only_the_caller_with_the_per_label_table(fake, service):
    async with running_bot(fake, service):
        interaction = await fake.slash("classify", [option("text", TOXIC_TEXT)])
        reply = await fake.wait_reply(interaction)
    deferred = fake.replies(interaction)[0]
    assert deferred["type"] == 5 and deferred["flags"] & EPHEMERAL
    expected = await service.classify(TOXIC_TEXT, chat=chat(fake))
    text = embed_text(reply)
    for label, score in zip(expected.labels, expected.scores, strict=True):
        assert re.search(rf"{label}\s+{score:.3f}", text), f"{label} {score:.3f} missing from:\n{text}"
    assert "Tiny toxicity (test)" in text
    assert "Raw scores" not in text


async def test_classify_public_raw_with_another_model(fake, service):
    async with running_bot(fake, service):
        options = [
            option("text", "what a lovely day"),
            option("model", "tiny-sentiment"),
            option("raw", True, 5),
            option("public", True, 5),
        ]
        interaction = await fake.slash("classify", options)
        reply = await fake.wait_reply(interaction)
    deferred = fake.replies(interaction)[0]
    assert deferred["type"] == 5 and not deferred.get("flags", 0) & EPHEMERAL
    text = embed_text(reply)
    assert "Tiny sentiment (test)" in text
    assert "Raw scores" in text and '"NEGATIVE"' in text and '"POSITIVE"' in text


async def test_unknown_model_gets_a_one_line_answer(fake, service):
    async with running_bot(fake, service):
        interaction = await fake.slash("classify", [option("text", "hi"), option("model", "nope")])
        reply = await fake.wait_reply(interaction)
        still_serving = await fake.slash("classify", [option("text", "hi")])
        await fake.wait_reply(still_serving, lambda r: bool(r.get("embeds")))
    assert "unknown model 'nope'" in embed_text(reply)


async def test_model_autocomplete_and_the_classify_message_context_menu(fake, service):
    room = chat(fake)
    await service.set_enabled(room, SERVICE_ADMIN, False)  # /classify still works with moderation off
    async with running_bot(fake, service):
        typing = await fake.slash("classify", [option("text", "x"), option("model", "sent", focused=True)], kind=4)
        choices = (await fake.wait_reply(typing))["choices"]
        typing_set = await fake.slash("model", [subcommand("set", option("name", "tiny", focused=True))], kind=4)
        set_choices = (await fake.wait_reply(typing_set))["choices"]
        target = await fake.send_message(TOXIC_TEXT, author="member")
        menu = await fake.message_command("Classify message", target, user="admin")
        reply = await fake.wait_reply(menu)
    assert choices == [{"name": "tiny-sentiment - Tiny sentiment (test)", "value": "tiny-sentiment"}]
    assert [c["value"] for c in set_choices] == ["tiny-toxic", "tiny-sentiment"]
    assert fake.replies(menu)[0]["flags"] & EPHEMERAL
    text = embed_text(reply)
    assert TOXIC_TEXT in text
    expected = await service.classify(TOXIC_TEXT, chat=room)
    assert re.search(rf"insult\s+{expected.score('insult'):.3f}", text)


async def test_model_set_is_refused_for_a_member_accepted_for_an_admin_and_kept_after_restart(
    fake, classifier, database
):
    room = chat(fake)
    set_sentiment = [subcommand("set", option("name", "tiny-sentiment"))]
    async with moderation_service(classifier, database) as first, running_bot(fake, first):
        refused = await fake.slash("model", set_sentiment, user="member")
        refusal = await fake.wait_reply(refused)
        assert (await first.settings(room)).model is None
        unknown = await fake.slash("model", [subcommand("set", option("name", "nope"))], user="admin")
        assert "unknown model 'nope'" in embed_text(await fake.wait_reply(unknown))
        accepted = await fake.slash("model", set_sentiment, user="admin")
        acceptance = await fake.wait_reply(accepted)
    assert "Manage Server" in refusal["content"] and refusal["flags"] & EPHEMERAL
    assert "This server now uses tiny-sentiment." in embed_text(acceptance).replace("chat", "server")

    async with moderation_service(classifier, database) as restarted, running_bot(fake, restarted):
        listing = await fake.slash("model", [subcommand("list")], user="member")
        models = embed_text(await fake.wait_reply(listing))
        answer = await fake.slash("classify", [option("text", "what a lovely day")], user="member")
        classified = embed_text(await fake.wait_reply(answer))
    [in_use] = [line for line in models.splitlines() if "in use here" in line]
    assert "tiny-sentiment" in in_use
    assert "Tiny sentiment (test)" in classified


async def test_moderation_commands_change_settings_for_admins_only(fake, service):
    room = chat(fake)
    member_id = fake.guild.users["member"]["id"]
    log_id = fake.guild.channels["mod-log"]["id"]

    async def run(options, user="admin", resolved=None) -> dict:
        interaction = await fake.slash("moderation", options, user=user, resolved=resolved)
        return await fake.wait_reply(interaction)

    async with running_bot(fake, service):
        refused = await run([subcommand("action", option("action", "delete"))], user="member")
        answers = [
            await run([subcommand("threshold", option("label", "insult"), option("value", 0.7, 10))]),
            await run([subcommand("threshold", option("label", "threat"), option("value", 0.0, 10))]),
            await run([subcommand("action", option("action", "delete"))]),
            await run([subcommand("exempt", option("target", member_id, 9))], resolved=fake.resolve(member="member")),
            await run(
                [subcommand("logchannel", option("channel", log_id, 7))], resolved=fake.resolve(channel="mod-log")
            ),
            await run([subcommand("labels", option("labels", "insult, threat, obscene"))]),
            await run([subcommand("disable")]),
        ]
        shown = embed_text(await run([subcommand("show")]))
    assert "Manage Server" in refused["content"]
    assert "a threshold must be above 0" in embed_text(answers[1])
    assert all(answer["flags"] & EPHEMERAL for answer in [refused, *answers])
    settings = await service.settings(room)
    assert settings.thresholds == {"insult": {"flag": 0.7, "act": 0.7}}
    assert settings.action == "delete"
    assert settings.exempt_users == frozenset({member_id})
    assert settings.log_channel == log_id
    assert settings.acting_labels == ("insult", "threat", "obscene")
    assert not settings.enabled
    assert "action: delete" in shown and r"threshold insult: flag 0.70\*, act 0.70\*" in shown
    assert f"exempt users: {member_id}" in shown and f"log channel: {log_id}" in shown


@pytest.mark.parametrize("case", CASES, ids=ids())
async def test_every_command_of_the_shared_surface_works_on_discord(fake, service, case: CommandCase):
    room = chat(fake)
    values = {
        "sentiment": "tiny-sentiment",
        "member": fake.guild.users["member"]["id"],
        "channel": fake.guild.channels["mod-log"]["id"],
    }
    values |= await case.before(service, room)
    name, _ = case.discord
    resolved = fake.resolve(**case.resolve) if case.resolve else None
    async with running_bot(fake, service):
        interaction = await fake.slash(name, case.discord_options(values), user="admin", resolved=resolved)
        text = embed_text(await fake.wait_reply(interaction))
    assert case.fill(case.says, values) in text
    if case.settled is not None:
        assert case.settled(await service.settings(room)), text


async def test_dashboard_gives_an_admin_an_ephemeral_link_and_refuses_a_member(fake, service):
    from bot.adapters.discord_bot._dashboard import DiscordPlatform
    from bot.dashboard import DashboardLinks
    from bot.dashboard.auth import Signer

    signer = Signer("discord-test-signing-key-0123")
    links = DashboardLinks(signer, "http://127.0.0.1:9")
    admin_id, member_id = fake.guild.users["admin"]["id"], fake.guild.users["member"]["id"]
    async with running_bot(fake, service, dashboard=links) as bot:
        admin = await fake.wait_reply(await fake.slash("dashboard", [], user="admin"))
        member = await fake.wait_reply(await fake.slash("dashboard", [], user="member"))
        platform = DiscordPlatform(bot)
        rights = [await platform.is_admin(fake.guild.id, user) for user in (admin_id, member_id, "404")]
    assert admin["flags"] & EPHEMERAL and member["flags"] & EPHEMERAL
    link = admin["content"].split("dashboard of this chat: ", 1)[1].split()[0]
    grant = signer.open_link(link.split("t=", 1)[1])
    assert (grant.chat, grant.user_id) == (chat(fake), admin_id)
    assert "Manage Server" in member["content"] and "http" not in member["content"]
    assert rights == [True, False, False]


async def test_classify_explain_adds_the_words_behind_the_score(fake, service):
    from bot.core.report import escape_discord, explanation_line

    async with running_bot(fake, service):
        asked = await fake.wait_reply(
            await fake.slash("classify", [option("text", TOXIC_TEXT), option("explain", True, 5)])
        )
        plain = await fake.wait_reply(await fake.slash("classify", [option("text", TOXIC_TEXT)]))
    result = await service.classify(TOXIC_TEXT, chat=chat(fake))
    expected = await service.explain(TOXIC_TEXT, result)
    assert expected is not None and escape_discord(explanation_line(expected)) in embed_text(asked)
    assert "why" not in embed_text(plain)
