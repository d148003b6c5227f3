"""The exported-model folder: the one contract between ``training/`` (which writes it) and the bot (which serves it).

A folder holds ``tokenizer.json``, ``config.json`` and one or both ONNX graphs (``model.onnx`` fp32,
``model.int8.onnx`` int8), or TensorFlow weights. ``config.json`` carries, under ``moderation``, what the bot must know
to serve the model the way it was trained: ``thresholds`` (label -> number, or label -> ``{flag, act}``),
``languages``, ``version``, ``max_length``, ``truncation`` (``head`` | ``head_tail``) and ``head_share``.

Thresholds resolve per label and per operating point: chat override > models.yaml > the folder's own > 0.5.
Nothing here imports TensorFlow, onnxruntime or tokenizers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "config.json"
TF_WEIGHTS_FILE = "tf_model.h5"
SAFETENSORS_FILE = "model.safetensors"
GRAPH_FILES = {"fp32": FP32_FILE, "int8": INT8_FILE}
MODERATION_KEY = "moderation"  # the config.json key of this contract

DEFAULT_THRESHOLD = 0.5
TRUNCATIONS = ("head", "head_tail")
DEFAULT_HEAD_SHARE = 0.75
# Characters kept per allowed token before tokenising: only bounds the tokenizer's work on a huge message.
CHARS_PER_TOKEN_CAP = 32
POINTS = ("flag", "act")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")


@dataclass(frozen=True, slots=True)
class LabelThresholds:
    """The two operating points of a label: flag for review at ``flag``, act automatically at ``act``."""

    flag: float
    act: float


@dataclass(frozen=True, slots=True)
class FolderConfig:
    """The ``moderation`` section of a folder's config.json, validated. Empty for a model exported elsewhere."""

    thresholds: Mapping[str, LabelThresholds] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    version: str | None = None
    max_length: int | None = None
    truncation: str = "head"
    head_share: float = DEFAULT_HEAD_SHARE


def _threshold(value: object, where: str, label: str, point: str | None = None) -> float:
    name = f"'{label}'" + (f" {point}" if point else "")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: threshold of {name} must be a number in (0, 1], not {value!r}")
    number = float(value)
    if math.isnan(number) or not 0.0 < number <= 1.0:
        raise ValueError(f"{where}: threshold of {name} must be in (0, 1], not {value!r}")
    return number


def parse_thresholds(raw: Mapping[str, object], where: str) -> dict[str, LabelThresholds]:
    """``{label: x}`` (both points at x) or ``{label: {flag: x, act: y}}``; raises ValueError naming ``where``."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: thresholds must map labels to numbers or {{flag, act}}, not {raw!r}")
    parsed: dict[str, LabelThresholds] = {}
    for label, value in raw.items():
        if isinstance(value, Mapping):
            unknown = sorted(set(map(str, value)) - set(POINTS))
            missing = [point for point in POINTS if point not in value]
            if unknown or missing:
                problem = f"unknown keys {unknown}" if unknown else f"missing {missing}"
                raise ValueError(f"{where}: threshold of '{label}' needs exactly flag and act ({problem})")
            parsed[str(label)] = LabelThresholds(
                flag=_threshold(value["flag"], where, str(label), "flag"),
                act=_threshold(value["act"], where, str(label), "act"),
            )
        else:
            number = _threshold(value, where, str(label))
            parsed[str(label)] = LabelThresholds(flag=number, act=number)
    return parsed


def resolve_thresholds(
    labels: Sequence[str],
    chat: Mapping[str, Mapping[str, float]],
    models_yaml: Mapping[str, LabelThresholds],
    folder: Mapping[str, LabelThresholds],
) -> dict[str, LabelThresholds]:
    """Per label and per point: the chat's override > models.yaml > the folder's own > ``DEFAULT_THRESHOLD``.

    A chat override may name one point only; a bare number in it (the old stored form) means both.
    """
    resolved: dict[str, LabelThresholds] = {}
    for label in labels:
        override = chat.get(label) or {}
        if not isinstance(override, Mapping):
            override = dict.fromkeys(POINTS, override)
        points = []
        for point in POINTS:
            value = override.get(point)
            if value is None and label in models_yaml:
                value = getattr(models_yaml[label], point)
            if value is None and label in folder:
                value = getattr(folder[label], point)
            points.append(float(DEFAULT_THRESHOLD if value is None else value))
        resolved[label] = LabelThresholds(*points)
    return resolved


def parse_folder_config(config: Mapping[str, Any], where: str) -> FolderConfig:
    """Validate the ``moderation`` section of a parsed config.json (``where`` names the file in errors)."""
    section = config.get(MODERATION_KEY) or {}
    if not isinstance(section, Mapping):
        raise ValueError(f"{where}: '{MODERATION_KEY}' must be a mapping")
    languages = section.get("languages") or ()
    listed = isinstance(languages, Sequence) and not isinstance(languages, str)
    if not listed or not all(isinstance(code, str) and _LANGUAGE_CODE.match(code) for code in languages):
        raise ValueError(f"{where}: languages must be a list of ISO 639-1 codes such as [en], not {languages!r}")
    truncation = section.get("truncation") or "head"
    if truncation not in TRUNCATIONS:
        raise ValueError(f"{where}: truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    head_share = section.get("head_share", DEFAULT_HEAD_SHARE)
    if isinstance(head_share, bool) or not isinstance(head_share, int | float) or not 0.0 < head_share <= 1.0:
        raise ValueError(f"{where}: head_share must be a number in (0, 1], not {head_share!r}")
    max_length = section.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8):
        raise ValueError(f"{where}: max_length must be an integer >= 8, not {max_length!r}")
    version = section.get("version")
    return FolderConfig(
        thresholds=parse_thresholds(section.get("thresholds") or {}, f"{where} {MODERATION_KEY}.thresholds"),
        languages=tuple(languages),
        version=None if version is None else str(version),
        max_length=max_length,
        truncation=truncation,
        head_share=float(head_share),
    )


def read_folder_config(folder: Path) -> FolderConfig:
    """The validated ``moderation`` section of ``folder/config.json`` (empty when the section is absent)."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error})") from error
    return parse_folder_config(config, str(path))


def write_moderation(config_file: Path, moderation: Mapping[str, Any]) -> None:
    """Put ``moderation`` into a config.json (checked first: an export never writes what the bot would refuse)."""
    config = json.loads(Path(config_file).read_text(encoding="utf-8"))
    config[MODERATION_KEY] = dict(moderation)
    parse_folder_config(config, str(config_file))
    Path(config_file).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def truncate_tokens(body: Sequence[int], budget: int, truncation: str = "head", head_share: float = 0.75) -> list[int]:
    """Cut the token ids of a text (special tokens excluded) to ``budget``.

    ``head`` keeps the start; ``head_tail`` keeps ``int(budget * head_share)`` tokens of the start and the rest from
    the end, where a long comment's verdict often sits. Training and both backends cut with this one function.
    """
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, not {truncation!r}")
    if len(body) <= budget:
        return list(body)
    if truncation == "head" or budget < 2:
        return list(body[:budget])
    head = max(1, int(budget * head_share))
    if head >= budget:
        return list(body[:budget])
    return [*body[:head], *body[len(body) - (budget - head) :]]


def cap_text(text: str, max_length: int, truncation: str = "head", head_share: float = 0.75) -> str:
    """Drop characters far beyond what ``max_length`` tokens can hold (a 1 MB message costs no more than a page).

    With ``head_tail`` the end of the text is kept too, so the tail tokens are the real tail.
    """
    limit = max_length * CHARS_PER_TOKEN_CAP
    if len(text) <= limit:
        return text
    if truncation != "head_tail":
        return text[:limit]
    head = int(limit * head_share)
    return text[:head] + " " + text[len(text) - (limit - head) :]
