"""One YAML per recipe, overridable from the command line with ``key=value``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.core.labels import TOXICITY_LABELS


class ConfigError(ValueError):
    """A recipe that cannot be used; the message names the file and the field."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Recipe name, used in reports and the models.yaml entry.")
    base_model: str = Field(description="Hub id or local folder of the pretrained encoder.")
    base_model_revision: str | None = None
    base_model_sha256: str | None = Field(default=None, description="Checked against the base weights file.")
    labels: tuple[str, ...] = TOXICITY_LABELS
    text_column: str = "comment_text"
    max_length: int = Field(default=128, ge=8, le=512)
    truncation: Literal["head", "head_tail"] = "head"
    head_share: float = Field(default=0.75, gt=0, le=1, description="head_tail: share of tokens kept from the start.")
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    lr_schedule: Literal["constant", "linear"] = "linear"
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    epochs: int = Field(default=3, ge=1)
    weighting: Literal["none", "original", "sqrt"] = Field(
        default="sqrt",
        description="Positive weight per label: original = N / (6 x positives); sqrt = sqrt(negatives / positives).",
    )
    val_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    seed: int = 42
    bucket_chunk: int = Field(default=1600, ge=0, description="Rows sorted by length per chunk; 0 pads to max_length.")
    early_stopping_patience: int = Field(default=2, ge=1)
    reduce_lr_patience: int = Field(default=1, ge=1)
    reduce_lr_factor: float = Field(default=0.1, gt=0, lt=1)
    min_lr: float = Field(default=1e-6, ge=0)
    source_weighting: Literal["natural", "temperature"] = Field(
        default="natural",
        description="Loss weight of each source: natural (every row 1) or temperature (source share ~ rows ** T).",
    )
    source_temperature: float = Field(default=0.5, ge=0, le=1)
    freeze_embeddings: bool = Field(default=False, description="Keep the encoder's embedding layer fixed.")
    languages: tuple[str, ...] = Field(default=("en",), description="ISO 639-1 codes of the training text.")
    version: str | None = Field(default=None, description="Model version written to the export and models.yaml.")
    output_dir: Path = Path("runs/default")
    mixed_precision: Literal["off", "auto", "mixed_float16", "mixed_bfloat16"] = Field(
        default="off", description="auto: bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX), else off."
    )
    xla: bool = False
    push_to_hub: str | None = Field(default=None, description="Hub repository to push every epoch to (off by default).")
    max_train_rows: int | None = Field(default=None, ge=1, description="Use only this many training rows (smoke runs).")

    @property
    def base_model_path(self) -> str:
        """The base as transformers takes it: ``pkg://package/folder`` is a folder inside an installed package."""
        if not self.base_model.startswith("pkg://"):
            return self.base_model
        import importlib.util

        package, _, inner = self.base_model.removeprefix("pkg://").partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"base_model {self.base_model}: package {package!r} is not installed (see README)")
        return str(Path(next(iter(spec.submodule_search_locations))) / inner)

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if not labels or len(set(labels)) != len(labels):
            raise ValueError("labels must be a non-empty list without repeats")
        return labels


def _parse_override(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not key=value")
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def load_config(path: Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a recipe and apply ``key=value`` overrides (values parsed as YAML)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: recipe file not found") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a mapping of fields")
    data.update(dict(_parse_override(item) for item in overrides or []))
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"{path}: {problems}") from error


def save_config(config: TrainConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
