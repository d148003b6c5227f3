"""models.yaml -> typed, validated model specs; errors name the file, the model and the field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.errors import RegistryError, UnknownModelError
from bot.core.model_folder import DEFAULT_THRESHOLD, LabelThresholds, parse_thresholds
from bot.core.types import Task

LANGUAGE_CODE = re.compile(r"^[a-z]{2}$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Files that show a model folder or a hub snapshot holds usable weights.
WEIGHT_FILES: tuple[str, ...] = (
    "model.onnx",
    "model.int8.onnx",
    "tf_model.h5",
    "model.safetensors",
    "pytorch_model.bin",
)


class LocalSource(BaseModel):
    """A model folder on disk; relative paths are resolved against the folder of models.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    path: Path


class HubSource(BaseModel):
    """A Hugging Face hub repository at a revision, loaded through the normal HF cache."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    hub: str = Field(min_length=1)
    revision: str = Field(default="main", min_length=1)


class ModelSpec(BaseModel):
    """One entry of models.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    display_name: str = ""
    task: Task
    source: LocalSource | HubSource
    runtime: Literal["onnx", "tensorflow"]
    max_length: int = Field(default=512, ge=8, le=8192)
    # label -> number (both points) or {flag, act}; parsed by the model folder's contract
    thresholds: dict[str, LabelThresholds] = Field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    version: str | None = None
    languages: tuple[str, ...] = ()  # ISO 639-1 codes the model was trained on; empty: no language gate
    # onnx only: the graph to serve or convert to; default: int8 when the folder ships it, else fp32
    quantization: Literal["fp32", "int8"] | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("thresholds", mode="before")
    @classmethod
    def _parse_thresholds(cls, value: Any) -> dict[str, LabelThresholds]:
        if value is None:
            return {}
        if isinstance(value, Mapping) and all(isinstance(item, LabelThresholds) for item in value.values()):
            return dict(value)
        return parse_thresholds(value, "thresholds")

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [code for code in value if not LANGUAGE_CODE.match(code)]
        if bad:
            raise ValueError(f"languages must be ISO 639-1 codes such as en, not {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _check_labels(self) -> ModelSpec:
        if self.labels is not None:
            if len(self.labels) < 1 or len(set(self.labels)) != len(self.labels):
                raise ValueError("labels must be a non-empty list without duplicates")
            unknown = sorted(set(self.thresholds) - set(self.labels))
            if unknown:
                raise ValueError(f"thresholds name labels the model does not have: {', '.join(unknown)}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _default_display_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("display_name") and data.get("name"):
            return {**data, "display_name": data["name"]}
        return data

    @property
    def is_toxicity(self) -> bool:
        """Multi-label models are toxicity models: the only ones a moderation policy may act on."""
        return self.task is Task.MULTI_LABEL

    def threshold(self, label: str) -> float:
        """The label's flag threshold in models.yaml (the point at which it is worth a look), else 0.5."""
        points = self.thresholds.get(label)
        return points.flag if points is not None else DEFAULT_THRESHOLD


class Availability(StrEnum):
    BUNDLED = "bundled"  # a local folder with weights
    CACHED = "cached"  # a hub model already in the Hugging Face cache
    DOWNLOAD = "download"  # a hub model that needs the network once
    MISSING = "missing"  # a local folder that is not there (yet)
    CORRUPT = "corrupt"  # a local folder whose config or weights cannot be read


@dataclass(frozen=True)
class Registry:
    """The models the bot can serve, in file order."""

    path: Path
    default: str
    specs: Mapping[str, ModelSpec]

    def get(self, name: str) -> ModelSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownModelError(name, tuple(self.specs)) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def availability(self, name: str, *, cache_dir: str | Path | None = None) -> Availability:
        """Where the model's files would come from right now, without touching the network."""
        source = self.get(name).source
        if isinstance(source, LocalSource):
            return folder_availability(source.path)
        return Availability.CACHED if hub_is_cached(source, cache_dir=cache_dir) else Availability.DOWNLOAD


def has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in WEIGHT_FILES)


def folder_availability(folder: Path) -> Availability:
    """BUNDLED when config.json parses and a weights file looks whole, CORRUPT when they are there but do not."""
    if not has_weights(folder):
        return Availability.MISSING
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return Availability.CORRUPT
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not isinstance(config, dict) or not any(_looks_whole(path) for path in weights):
        return Availability.CORRUPT
    return Availability.BUNDLED


_SIGNATURES = {".h5": b"\x89HDF\r\n\x1a\n", ".bin": b"PK\x03\x04", ".onnx": b"\x08"}  # ONNX: ir_version first


def _looks_whole(path: Path) -> bool:
    """A cheap check of a weights file's format header (and, for safetensors, its length); no loading."""
    try:
        with path.open("rb") as stream:
            head = stream.read(8)
            if path.suffix == ".safetensors":
                if len(head) < 8:
                    return False
                size = int.from_bytes(head, "little")
                header = json.loads(stream.read(size))
                ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
                return path.stat().st_size == 8 + size + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, MemoryError):
        return False
    signature = _SIGNATURES.get(path.suffix)
    return len(head) == 8 and (signature is None or head.startswith(signature))


def hub_is_cached(source: HubSource, *, cache_dir: str | Path | None = None) -> bool:
    """True when config.json and a weights file of this revision are in the HF cache."""
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        found = try_to_load_from_cache(source.hub, filename, cache_dir=cache_dir, revision=source.revision)
        return isinstance(found, str)

    return cached("config.json") and any(cached(name) for name in WEIGHT_FILES)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (a model name may appear only once)", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_registry(path: str | Path) -> Registry:
    """Read and validate models.yaml; raise RegistryError naming the file, the model and the field."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RegistryError(f"cannot read the file ({error.strerror or error})", file=file) from None
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise RegistryError(f"invalid YAML: {' '.join(str(error).split())}", file=file) from None
    return parse_registry(document, path)


def parse_registry(document: Any, path: Path) -> Registry:
    """Validate an already parsed models.yaml document (``path`` names it and anchors relative paths)."""
    file = str(path)
    if not isinstance(document, dict):
        raise RegistryError("expected a mapping with 'default' and 'models'", file=file)
    unknown = sorted(set(document) - {"default", "models"})
    if unknown:
        raise RegistryError("unknown top-level key (allowed: default, models)", file=file, field=str(unknown[0]))
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise RegistryError("must map model names to their settings", file=file, field="models")
    specs: dict[str, ModelSpec] = {}
    for name, entry in models.items():
        specs[str(name)] = _parse_spec(str(name), entry, path)
    default = document.get("default")
    if default is None:
        raise RegistryError("is required: the model chats use when they chose none", file=file, field="default")
    if default not in specs:
        raise RegistryError(f"names '{default}', which is not under 'models'", file=file, field="default")
    return Registry(path=path, default=str(default), specs=specs)


def _parse_spec(name: str, entry: Any, path: Path) -> ModelSpec:
    file = str(path)
    if not isinstance(entry, dict):
        raise RegistryError("expected a mapping of settings", file=file, model=name)
    if "name" in entry:
        raise RegistryError("is taken from the key under 'models'", file=file, model=name, field="name")
    source = entry.get("source")
    if not isinstance(source, dict) or len({"path", "hub"} & set(source)) != 1:
        shape = "{path: FOLDER} or {hub: OWNER/NAME, revision: REV}"
        message = f"is required: {shape}" if source is None else f"must be one of {shape}"
        raise RegistryError(message, file=file, model=name, field="source")
    try:
        spec = ModelSpec.model_validate({**entry, "name": name})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"] if not _is_union_tag(part)) or None
        raise RegistryError(first["msg"], file=file, model=name, field=field) from None
    if isinstance(spec.source, LocalSource) and not spec.source.path.is_absolute():
        resolved = LocalSource(path=(path.parent / spec.source.path).resolve())
        spec = spec.model_copy(update={"source": resolved})
    return spec


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the tried union member's class name into the error location
    return part in ("LocalSource", "HubSource")
