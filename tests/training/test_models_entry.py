"""Writing an exported model into models.yaml: other entries and comments survive, the result is a valid registry."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.registry import load_registry
from training.models_entry import EntryError, build_entry, merge_entry, relative_source, write_entry

REPO_MODELS_YAML = Path(__file__).resolve().parents[2] / "models.yaml"
THRESHOLDS = {
    "toxic": 0.61234,
    "severe_toxic": 0.2,
    "obscene": 0.5,
    "threat": 0.3,
    "insult": 0.45,
    "identity_hate": 0.4,
}


@pytest.fixture
def models_yaml(tmp_path: Path) -> Path:
    return Path(shutil.copyfile(REPO_MODELS_YAML, tmp_path / "models.yaml"))


def _entry(models_yaml: Path, folder: str = "models/new-model") -> dict:
    return build_entry(
        display_name="New model",
        source_path=relative_source(models_yaml.parent / folder, models_yaml),
        max_length=96,
        thresholds=THRESHOLDS,
    )


def test_a_new_entry_is_appended_and_nothing_else_changes(models_yaml):
    before = models_yaml.read_text(encoding="utf-8")
    assert write_entry(models_yaml, "new-model", _entry(models_yaml)) == "added"

    after = models_yaml.read_text(encoding="utf-8")
    assert after.startswith(before.rstrip("\n"))  # every original line and comment, in place
    registry = load_registry(models_yaml)
    spec = registry.get("new-model")
    assert (spec.runtime, spec.max_length, spec.display_name) == ("onnx", 96, "New model")
    assert spec.source.path == (models_yaml.parent / "models/new-model").resolve()
    assert spec.thresholds["toxic"].act == 0.6123 and spec.thresholds["threat"].flag == 0.3
    assert registry.names()[:-1] == load_registry(REPO_MODELS_YAML).names()


def test_replacing_an_entry_keeps_its_display_name_comments_and_neighbours(models_yaml):
    original = load_registry(models_yaml)
    entry = merge_entry(models_yaml, "toxic-minilm", _entry(models_yaml, "models/toxic-minilm"))
    assert write_entry(models_yaml, "toxic-minilm", entry) == "replaced"

    text = models_yaml.read_text(encoding="utf-8")
    assert "# The models the bot can serve." in text and "# used by chats that chose nothing" in text
    assert text.count("toxic-minilm:") == 1
    registry = load_registry(models_yaml)
    spec = registry.get("toxic-minilm")
    assert spec.display_name == original.get("toxic-minilm").display_name  # kept
    assert (spec.max_length, spec.thresholds["insult"].act) == (96, 0.45)
    assert registry.names() == original.names()
    for name in ("toxicity-1-epoch", "toxicity-8-epochs", "sst2-sentiment"):
        assert registry.get(name) == original.get(name)


def test_an_invalid_entry_leaves_the_file_untouched(models_yaml):
    before = models_yaml.read_bytes()
    bad = {**_entry(models_yaml), "thresholds": {"toxic": 1.5}}
    with pytest.raises(EntryError, match="left unchanged"):
        write_entry(models_yaml, "new-model", bad)
    assert models_yaml.read_bytes() == before


def test_a_missing_models_yaml_is_created_with_the_entry_as_default(tmp_path):
    models_yaml = tmp_path / "models.yaml"
    write_entry(models_yaml, "only", _entry(models_yaml))
    registry = load_registry(models_yaml)
    assert registry.default == "only" and registry.names() == ("only",)
