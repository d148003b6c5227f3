"""The README is the one document an admin needs: it must keep naming every setting, every environment variable the
code reads, every models.yaml field, every command and Docker target, and the right Discord permission integer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import discord
import pytest

from bot.cli import build_parser
from bot.config import Settings
from bot.core.registry import HubSource, LocalSource, ModelSpec
from tests.ops.dockerfile import parse
from tests.ops.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
# The permissions the Discord adapter's actions and answers need (README, "Discord: inviting the bot"), as the README
# names them -> discord.py's flag.
DISCORD_PERMISSIONS = {
    "Add Reactions": "add_reactions",
    "View Channel": "view_channel",
    "Send Messages": "send_messages",
    "Manage Messages": "manage_messages",
    "Embed Links": "embed_links",
    "Read Message History": "read_message_history",
    "Moderate Members": "moderate_members",
}


def documented(name: str) -> bool:
    return f"`{name}`" in README


def environment_variables_read(folder: Path) -> set[str]:
    """Names passed as string literals to ``os.environ.get/setdefault/[...]`` and ``os.getenv`` under ``folder``."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            target = None
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                function = ast.unparse(node.func)
                if function in ("os.environ.get", "os.environ.setdefault", "os.getenv", "environ.get"):
                    target = node.args[0].value
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                target = node.slice.value if isinstance(node.slice, ast.Constant) else None
            if isinstance(target, str):
                names.add(target)
    return names


def test_every_setting_is_in_the_configuration_reference() -> None:
    missing = [field.alias for field in Settings.model_fields.values() if not documented(field.alias)]
    assert not missing, f"README lacks: {missing}"


@pytest.mark.parametrize("package", ["bot", "training"])
def test_every_environment_variable_the_code_reads_is_documented(package: str) -> None:
    names = environment_variables_read(REPO / package)
    assert names, "the scan found nothing: it is broken"
    missing = sorted(name for name in names if not documented(name))
    assert not missing, f"README lacks: {missing}"


def test_every_models_yaml_field_is_documented() -> None:
    fields = (set(ModelSpec.model_fields) - {"name"}) | {"default", "models"}
    fields |= {f"source.{name}" for name in (*LocalSource.model_fields, *HubSource.model_fields)}
    missing = sorted(name for name in fields if not documented(name) and f"`{name}`," not in README)
    assert not missing, f"README lacks: {missing}"


def test_every_command_and_docker_target_is_documented() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert not [name for name in commands if f"`{name}" not in README]
    stages = {stage.name for stage in parse((REPO / "Dockerfile").read_text(encoding="utf-8")).stages}
    for target in ("runtime-slim", "runtime", "train"):  # the public targets; the others are build steps
        assert target in stages and documented(target)


def test_the_discord_permission_integer_is_right() -> None:
    value = discord.Permissions(**dict.fromkeys(DISCORD_PERMISSIONS.values(), True)).value
    assert f"permissions={value}" in README
    assert f"**{value:,}**" in README
    for label, flag in DISCORD_PERMISSIONS.items():
        bit = getattr(discord.Permissions, flag).flag.bit_length() - 1
        assert re.search(rf"\| {label} \| {bit} \|", README), f"{label} (bit {bit}) missing from the table"


def test_the_leads_placeholders_are_there() -> None:
    assert "<!-- lead: quality table -->" in README
    assert "<!-- lead: throughput table -->" in README
