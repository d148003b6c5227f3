"""Model choice: members cannot make the bot load models, /model tests a model first, a broken model falls back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.classifier import Classifier
from bot.core.errors import InvalidSettingError, PermissionDenied
from bot.core.moderation import ModerationService
from bot.core.records import Action
from bot.core.registry import ModelSpec, load_registry
from bot.core.types import Actor, ChatRef, Message
from bot.storage import Storage
from tests.fakes.scripted_backend import MODELS_YAML, scripted_loader

pytestmark = pytest.mark.asyncio

CHAT = ChatRef("telegram", "-100")
ADMIN = Actor("admin-1", is_admin=True)
MEMBER = Actor("member-1")
BROKEN = "  scripted-broken:\n    task: multi_label\n    source: {hub: tests/broken}\n    runtime: onnx\n"


class Loader:
    """The scripted backend; ``broken`` names models whose files are unreadable. Counts loads per model."""

    def __init__(self) -> None:
        self.broken = {"scripted-broken"}
        self.loads: list[str] = []

    def __call__(self, spec: ModelSpec, *, cache_dir: object = None) -> object:
        self.loads.append(spec.name)
        if spec.name in self.broken:
            raise OSError("model.onnx: unexpected end of file")
        return scripted_loader(spec)


@pytest_asyncio.fixture
async def loader() -> Loader:
    return Loader()


@pytest_asyncio.fixture
async def service(tmp_path: Path, loader: Loader) -> AsyncIterator[ModerationService]:
    path = tmp_path / "models.yaml"
    path.write_text(MODELS_YAML + BROKEN, encoding="utf-8")
    registry = load_registry(path)
    classifier = Classifier(registry, loader=loader, max_wait_ms=1, retry_after_s=0)
    async with await Storage.open(tmp_path / "bot.sqlite3") as storage:
        yield ModerationService(classifier, storage, registry)
    await classifier.aclose()


async def test_a_member_cannot_make_the_bot_load_another_model_but_an_admin_can(
    service: ModerationService, loader: Loader
) -> None:
    await service.classify("hello", chat=CHAT, actor=MEMBER)  # the chat's model (the default) is loaded
    with pytest.raises(PermissionDenied, match="only admins can load another model; ready now: scripted-toxic"):
        await service.classify("hello", chat=CHAT, model="scripted-sentiment", actor=MEMBER)
    assert "scripted-sentiment" not in loader.loads
    await service.classify("hello", chat=CHAT, model="scripted-sentiment", actor=ADMIN)
    result = await service.classify("hello", chat=CHAT, model="scripted-sentiment", actor=MEMBER)  # loaded now
    assert result.model == "scripted-sentiment" and loader.loads.count("scripted-sentiment") == 1


async def test_model_loads_and_tests_the_model_before_the_chat_switches(service: ModerationService) -> None:
    with pytest.raises(InvalidSettingError, match="model scripted-broken cannot be used, the chat keeps its model"):
        await service.set_model(CHAT, ADMIN, "scripted-broken")
    assert (await service.settings(CHAT)).model is None
    assert (await service.set_model(CHAT, ADMIN, "scripted-sentiment")).model == "scripted-sentiment"


async def test_a_chat_whose_model_breaks_falls_back_to_the_default_and_admins_are_told_once(
    service: ModerationService, loader: Loader
) -> None:
    loader.broken.clear()
    await service.set_model(CHAT, ADMIN, "scripted-broken")
    await service._classifier.aclose()  # type: ignore[attr-defined]  # a restart: the model must load again
    loader.broken.add("scripted-broken")  # ... and its files went bad meanwhile
    first = await service.handle(Message(CHAT, "1", MEMBER, "you are stupid"))
    second = await service.handle(Message(CHAT, "2", MEMBER, "you are stupid"))
    assert first.decision.action is Action.WARN and first.classification.model == "scripted-toxic"
    assert first.notice is not None and "scripted-broken" in first.notice and "scripted-toxic" in first.notice
    assert second.notice is None and second.decision.action is Action.WARN
    assert (await service.settings(CHAT)).model is None
    audit = await service._storage.audit_log(CHAT)  # type: ignore[attr-defined]
    assert any(entry.actor_id == "bot" and entry.setting == "model" for entry in audit)


async def test_a_vanishing_threshold_is_refused_in_one_line(service: ModerationService) -> None:
    with pytest.raises(
        InvalidSettingError, match=r"^a threshold must be above 0 \(at least 1e-06\) and at most 1, got 1e-300$"
    ):
        await service.set_threshold(CHAT, ADMIN, "insult", 1e-300)
    assert (await service.set_threshold(CHAT, ADMIN, "insult", 0.001)).thresholds["insult"] == {
        "flag": 0.001,
        "act": 0.001,
    }
