"""models.yaml -> ModelSpec: the shipped file, validation errors that name file/model/field, availability."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from bot.core.errors import RegistryError, UnknownModelError
from bot.core.model_folder import LabelThresholds
from bot.core.registry import Availability, HubSource, LocalSource, load_registry
from bot.core.types import Task

VALID_ENTRY = "    task: multi_label\n    source: {path: m}\n    runtime: tensorflow\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    return caught.value


def test_shipped_models_yaml_lists_the_bundled_default_and_the_three_original_hub_models() -> None:
    registry = load_registry(REPO_ROOT / "models.yaml")

    assert registry.default == "toxic-minilm"
    assert registry.names() == ("toxic-minilm", "toxicity-1-epoch", "toxicity-8-epochs", "sst2-sentiment")
    bundled = registry.get("toxic-minilm")
    assert bundled.runtime == "onnx" and bundled.is_toxicity
    assert bundled.source == LocalSource(path=REPO_ROOT / "models" / "toxic-minilm")
    hubs = {name: registry.get(name).source for name in registry.names()[1:]}
    assert hubs == {
        "toxicity-1-epoch": HubSource(hub="RobCaamano/toxicity", revision="main"),
        "toxicity-8-epochs": HubSource(hub="RobCaamano/toxicity_update", revision="main"),
        "sst2-sentiment": HubSource(hub="distilbert-base-uncased-finetuned-sst-2-english", revision="main"),
    }
    assert registry.get("sst2-sentiment").task is Task.SINGLE_LABEL
    assert not registry.get("sst2-sentiment").is_toxicity
    assert all(registry.get(name).runtime == "tensorflow" for name in hubs)


def test_bundled_model_without_files_is_reported_missing(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, f"default: a\nmodels:\n  a:\n{VALID_ENTRY}"))

    assert registry.availability("a") is Availability.MISSING


def test_local_folder_with_config_and_weights_is_bundled(tiny_models, registry) -> None:
    assert registry.availability("tiny-toxic") is Availability.BUNDLED
    assert registry.get("tiny-toxic").source == LocalSource(path=tiny_models.multi_label_dir.resolve())


def test_hub_model_is_download_until_it_is_in_the_hf_cache_then_cached(tmp_path: Path) -> None:
    entry = "    task: multi_label\n    source: {hub: owner/name, revision: main}\n    runtime: tensorflow\n"
    registry = load_registry(write(tmp_path, f"default: h\nmodels:\n  h:\n{entry}"))
    cache = tmp_path / "hub-cache"
    assert registry.availability("h", cache_dir=cache) is Availability.DOWNLOAD

    # the Hugging Face cache layout: refs/<revision> holds the commit, snapshots/<commit>/ the files
    repo = cache / "models--owner--name"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert registry.availability("h", cache_dir=cache) is Availability.DOWNLOAD  # config alone is not a model
    (snapshot / "tf_model.h5").write_bytes(b"weights")
    assert registry.availability("h", cache_dir=cache) is Availability.CACHED


def test_relative_paths_resolve_against_the_yaml_folder_not_the_working_directory(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, f"default: a\nmodels:\n  a:\n{VALID_ENTRY}"))

    assert registry.get("a").source == LocalSource(path=(tmp_path / "m").resolve())


def test_defaults_display_name_revision_max_length_and_thresholds(tmp_path: Path) -> None:
    text = (
        "default: a\nmodels:\n  a:\n    task: multi_label\n    source: {hub: o/n}\n    runtime: onnx\n"
        "    thresholds: {insult: 0.8}\n"
    )
    spec = load_registry(write(tmp_path, text)).get("a")

    assert spec.display_name == "a"
    assert spec.source == HubSource(hub="o/n", revision="main")
    assert spec.max_length == 512
    assert spec.threshold("insult") == 0.8
    assert spec.threshold("toxic") == 0.5
    assert (spec.version, spec.languages) == (None, ())


def test_thresholds_take_both_forms_with_version_and_languages(tmp_path: Path) -> None:
    text = (
        "default: a\nmodels:\n  a:\n    task: multi_label\n    source: {hub: o/n}\n    runtime: onnx\n"
        "    version: 2\n    languages: [en]\n"
        "    thresholds: {insult: 0.8, threat: {flag: 0.3, act: 0.9}}\n"
    )
    spec = load_registry(write(tmp_path, text)).get("a")

    assert spec.thresholds == {"insult": LabelThresholds(0.8, 0.8), "threat": LabelThresholds(0.3, 0.9)}
    assert (spec.version, spec.languages) == ("2", ("en",))
    assert spec.threshold("threat") == 0.3  # the summary's "toxic" is the flag point


def test_unknown_model_name_raises_unknown_model_error_listing_known_ones(registry) -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'nope'.*tiny-toxic"):
        registry.get("nope")


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "default: a\nmodels: [unclosed\n")

    error = error_of(path)
    assert str(path) in str(error)
    assert "invalid YAML" in str(error)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    error = error_of(tmp_path / "absent.yaml")
    assert "absent.yaml" in str(error)


def test_unknown_field_names_file_model_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, f"default: a\nmodels:\n  a:\n{VALID_ENTRY}    colour: blue\n")

    error = error_of(path)
    assert (error.file, error.model, error.field) == (str(path), "a", "colour")
    assert str(path) in str(error) and "model 'a'" in str(error) and "field 'colour'" in str(error)


def test_missing_source_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "default: a\nmodels:\n  a:\n    task: multi_label\n    runtime: tensorflow\n")

    error = error_of(path)
    assert (error.model, error.field) == ("a", "source")
    assert "required" in str(error)


@pytest.mark.parametrize("source", ["{}", "{path: x, hub: y/z}", "just-a-string"])
def test_source_must_be_exactly_one_of_path_or_hub(tmp_path: Path, source: str) -> None:
    path = write(
        tmp_path, f"default: a\nmodels:\n  a:\n    task: multi_label\n    source: {source}\n    runtime: tensorflow\n"
    )
    assert error_of(path).field == "source"


def test_duplicate_model_name_is_an_error_not_a_silent_overwrite(tmp_path: Path) -> None:
    path = write(tmp_path, f"default: a\nmodels:\n  a:\n{VALID_ENTRY}  a:\n{VALID_ENTRY}")

    error = error_of(path)
    assert "duplicate key 'a'" in str(error)
    assert str(path) in str(error)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("    task: multi_label\n    source: {path: m}\n    runtime: pytorch\n", "runtime"),
        ("    task: regression\n    source: {path: m}\n    runtime: onnx\n", "task"),
        (f"{VALID_ENTRY}    max_length: 0\n", "max_length"),
        (f"{VALID_ENTRY}    thresholds: {{toxic: 1.5}}\n", "thresholds"),
        (f"{VALID_ENTRY}    thresholds: {{toxic: {{flag: 0.5}}}}\n", "thresholds"),
        (f"{VALID_ENTRY}    thresholds: {{toxic: {{flag: 0.5, act: 0}}}}\n", "thresholds"),
        (f"{VALID_ENTRY}    languages: [English]\n", "languages"),
        (f"{VALID_ENTRY}    labels: [a, b]\n    thresholds: {{c: 0.4}}\n", None),
        ("    source: {path: m}\n    runtime: onnx\n", "task"),
    ],
)
def test_invalid_values_name_the_model_and_field(tmp_path: Path, entry: str, field: str | None) -> None:
    error = error_of(write(tmp_path, f"default: a\nmodels:\n  a:\n{entry}"))

    assert error.model == "a"
    assert error.field == field


def test_default_must_be_one_of_the_models(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, f"default: b\nmodels:\n  a:\n{VALID_ENTRY}"))
    assert error.field == "default" and "'b'" in str(error)


@pytest.mark.parametrize("text", ["", "models: {}\n", "- a\n- b\n", f"defaults: a\nmodels:\n  a:\n{VALID_ENTRY}"])
def test_documents_without_default_and_models_are_rejected(tmp_path: Path, text: str) -> None:
    error_of(write(tmp_path, text))


def test_model_names_must_be_simple_lowercase_words(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, f"default: Bad Name\nmodels:\n  Bad Name:\n{VALID_ENTRY}"))
    assert (error.model, error.field) == ("Bad Name", "name")
