"""The exported-model folder contract: thresholds in both forms, their precedence, the config section, truncation."""

from __future__ import annotations

import json
import math

import pytest

from bot.core.model_folder import (
    DEFAULT_THRESHOLD,
    MODERATION_KEY,
    FolderConfig,
    LabelThresholds,
    cap_text,
    parse_folder_config,
    parse_thresholds,
    read_folder_config,
    resolve_thresholds,
    truncate_tokens,
    write_moderation,
)


def test_parse_thresholds_accepts_the_old_and_the_new_form() -> None:
    parsed = parse_thresholds({"toxic": 0.8, "threat": {"flag": 0.4, "act": 0.9}, "insult": 1}, "models.yaml")

    assert parsed == {
        "toxic": LabelThresholds(0.8, 0.8),
        "threat": LabelThresholds(flag=0.4, act=0.9),
        "insult": LabelThresholds(1.0, 1.0),
    }


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"toxic": 0.0}, "'toxic'"),
        ({"toxic": 1.5}, "'toxic'"),
        ({"toxic": -0.1}, "'toxic'"),
        ({"toxic": math.nan}, "'toxic'"),
        ({"toxic": "high"}, "'toxic'"),
        ({"toxic": True}, "'toxic'"),
        ({"threat": {"flag": 0.4}}, "'threat'"),
        ({"threat": {"flag": 0.4, "act": 0.9, "warn": 0.5}}, "'threat'"),
        ({"threat": {"flag": 0.4, "act": 2}}, "'threat' act"),
    ],
)
def test_parse_thresholds_rejects_bad_values_naming_where_and_the_label(raw, needle) -> None:
    with pytest.raises(ValueError, match=r"models\.yaml toxic-minilm") as caught:
        parse_thresholds(raw, "models.yaml toxic-minilm")
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_resolve_thresholds_per_label_and_per_point() -> None:
    labels = ("toxic", "threat", "insult", "obscene")
    folder = {
        "toxic": LabelThresholds(0.6, 0.7),
        "threat": LabelThresholds(0.3, 0.8),
        "insult": LabelThresholds(0.2, 0.3),
    }
    models_yaml = {"toxic": LabelThresholds(0.65, 0.75)}
    chat = {"toxic": {"act": 0.95}, "threat": {"flag": 0.1, "act": 0.2}, "obscene": 0.55}

    resolved = resolve_thresholds(labels, chat, models_yaml, folder)

    assert resolved["toxic"] == LabelThresholds(flag=0.65, act=0.95)  # chat act, models.yaml flag
    assert resolved["threat"] == LabelThresholds(flag=0.1, act=0.2)  # chat both
    assert resolved["insult"] == LabelThresholds(flag=0.2, act=0.3)  # the folder's own
    assert resolved["obscene"] == LabelThresholds(0.55, 0.55)  # an old stored bare number means both
    assert resolve_thresholds(("severe_toxic",), {}, {}, {}) == {
        "severe_toxic": LabelThresholds(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD)
    }


def test_folder_config_reads_the_moderation_section() -> None:
    config = {
        MODERATION_KEY: {
            "thresholds": {"toxic": 0.79, "threat": {"flag": 0.5, "act": 0.8}},
            "languages": ["en"],
            "version": 2,
            "max_length": 128,
            "truncation": "head_tail",
            "head_share": 0.5,
            "threshold_rule": "max F1",  # provenance keys are allowed
        }
    }

    folder = parse_folder_config(config, "config.json")

    assert folder.thresholds == {"toxic": LabelThresholds(0.79, 0.79), "threat": LabelThresholds(0.5, 0.8)}
    assert (folder.languages, folder.version, folder.max_length) == (("en",), "2", 128)
    assert (folder.truncation, folder.head_share) == ("head_tail", 0.5)
    assert parse_folder_config({"id2label": {}}, "config.json") == FolderConfig()


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        ({"languages": "en"}, "languages"),
        ({"languages": ["english"]}, "languages"),
        ({"truncation": "middle"}, "truncation"),
        ({"head_share": 0}, "head_share"),
        ({"max_length": "long"}, "max_length"),
        ({"thresholds": {"toxic": 3}}, "'toxic'"),
    ],
)
def test_folder_config_errors_name_the_file_and_the_field(section, needle) -> None:
    with pytest.raises(ValueError, match=r"models/x/config\.json") as caught:
        parse_folder_config({MODERATION_KEY: section}, "models/x/config.json")
    assert needle in str(caught.value)


def test_write_moderation_round_trips_and_refuses_what_the_bot_would_refuse(tmp_path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"id2label": {"0": "toxic"}}))

    write_moderation(config_file, {"thresholds": {"toxic": 0.7}, "languages": ["en"], "truncation": "head_tail"})

    assert read_folder_config(tmp_path).thresholds == {"toxic": LabelThresholds(0.7, 0.7)}
    assert json.loads(config_file.read_text())["id2label"] == {"0": "toxic"}
    with pytest.raises(ValueError, match="truncation"):
        write_moderation(config_file, {"truncation": "tail"})
    assert read_folder_config(tmp_path).truncation == "head_tail"  # the bad write changed nothing


def test_truncate_tokens_keeps_head_or_head_and_tail() -> None:
    body = list(range(100))

    assert truncate_tokens(body, 10) == list(range(10))
    assert truncate_tokens(body, 10, "head_tail", 0.75) == [0, 1, 2, 3, 4, 5, 6, 97, 98, 99]
    assert truncate_tokens(body[:8], 10, "head_tail") == body[:8]
    assert truncate_tokens(body, 1, "head_tail") == [0]
    with pytest.raises(ValueError, match="truncation"):
        truncate_tokens(body, 10, "tail")


def test_cap_text_keeps_the_end_for_head_tail() -> None:
    text = "start " + "x" * 10_000 + " the end"

    assert cap_text(text, 8) == text[: 8 * 32]
    capped = cap_text(text, 8, "head_tail", 0.75)
    assert capped.startswith("start ") and capped.endswith(" the end") and len(capped) <= 8 * 32 + 1
    assert cap_text("short", 8, "head_tail") == "short"
