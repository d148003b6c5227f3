"""The models.yaml entry of an exported model: rendered in the file's style, spliced in without losing comments."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

MODELS_LINE = re.compile(r"^models:\s*(#.*)?$")
TOP_LEVEL = re.compile(r"^[^\s#]")


class EntryError(ValueError):
    """The entry or models.yaml is not valid; the message names the file."""


def relative_source(model_dir: Path, models_yaml: Path) -> str:
    """The folder as models.yaml should name it: relative to the yaml's folder, with forward slashes."""
    return Path(os.path.relpath(Path(model_dir).resolve(), Path(models_yaml).resolve().parent)).as_posix()


def _rounded(value: float | dict[str, float]) -> float | dict[str, float]:
    if isinstance(value, dict):
        return {point: round(float(cut), 4) for point, cut in value.items()}
    return round(float(value), 4)


def build_entry(
    *,
    display_name: str,
    source_path: str,
    max_length: int,
    thresholds: dict[str, float | dict[str, float]],
    task: str = "multi_label",
    version: str | None = None,
    languages: list[str] | tuple[str, ...] | None = None,
) -> dict:
    """A models.yaml entry; ``thresholds`` per label is one number (flag = act) or ``{flag: x, act: y}``."""
    entry: dict = {"display_name": display_name}
    if version:
        entry["version"] = str(version)
    entry |= {
        "task": task,
        "source": {"path": source_path},
        "runtime": "onnx",
        "max_length": int(max_length),
    }
    if languages:
        entry["languages"] = list(languages)
    entry["thresholds"] = {label: _rounded(value) for label, value in thresholds.items()}
    return entry


def render_entry(name: str, entry: dict, indent: int = 2) -> str:
    """``name:`` and its fields, nested mappings in flow style like the rest of models.yaml."""
    text = yaml.safe_dump({name: entry}, default_flow_style=None, sort_keys=False, width=1000, allow_unicode=True)
    return "".join(" " * indent + line for line in text.splitlines(keepends=True))


def existing_entry(models_yaml: Path, name: str) -> dict | None:
    if not Path(models_yaml).is_file():
        return None
    document = yaml.safe_load(Path(models_yaml).read_text(encoding="utf-8")) or {}
    models = document.get("models") if isinstance(document, dict) else None
    entry = models.get(name) if isinstance(models, dict) else None
    return dict(entry) if isinstance(entry, dict) else None


def merge_entry(models_yaml: Path, name: str, entry: dict) -> dict:
    """The new entry, keeping the display name and any extra fields of an entry already listed under ``name``."""
    old = existing_entry(models_yaml, name)
    if not old:
        return entry
    merged = {**old, **{key: value for key, value in entry.items() if key != "display_name"}}
    merged.setdefault("display_name", entry["display_name"])
    return merged


def write_entry(models_yaml: Path, name: str, entry: dict) -> str:
    """Add or replace ``name`` in models.yaml (other entries and comments untouched); returns "added" or "replaced".

    The new file is validated with the bot's registry before it replaces the old one.
    """
    models_yaml = Path(models_yaml)
    if models_yaml.is_file():
        text = models_yaml.read_text(encoding="utf-8")
        spliced = _splice(text, name, entry)
        if spliced is None:  # an unusual layout: fall back to a plain YAML round trip (comments are lost)
            document = yaml.safe_load(text) or {}
            action = "replaced" if name in (document.get("models") or {}) else "added"
            document.setdefault("models", {})[name] = entry
            new_text = yaml.safe_dump(document, default_flow_style=None, sort_keys=False, width=1000)
        else:
            new_text, action = spliced
    else:
        new_text, action = f"default: {name}\nmodels:\n{render_entry(name, entry)}", "added"
    _validate(new_text, models_yaml)
    tmp = models_yaml.with_name(f".{models_yaml.name}.{os.getpid()}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, models_yaml)
    return action


def _splice(text: str, name: str, entry: dict) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if MODELS_LINE.match(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if TOP_LEVEL.match(lines[i])), len(lines))
    keys = [(i, re.match(r"^(\s+)([^\s#][^:]*):", lines[i])) for i in range(start + 1, end)]
    keys = [(i, match) for i, match in keys if match]
    if not keys:
        return None
    indent = len(keys[0][1].group(1))
    siblings = [(i, match.group(2).strip().strip("'\"")) for i, match in keys if len(match.group(1)) == indent]
    block = render_entry(name, entry, indent)
    if not block.endswith("\n"):
        block += "\n"
    found = next((i for i, key in siblings if key == name), None)
    if found is None:
        last = max(i for i in range(start, end) if lines[i].strip())
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        return "".join([*lines[: last + 1], block, *lines[last + 1 :]]), "added"
    stop = next((i for i, _ in siblings if i > found), end)
    while stop - 1 > found and (not lines[stop - 1].strip() or lines[stop - 1].lstrip().startswith("#")):
        stop -= 1  # blank lines and the next entry's comments stay where they are
    return "".join([*lines[:found], block, *lines[stop:]]), "replaced"


def _validate(text: str, models_yaml: Path) -> None:
    from bot.core.errors import RegistryError
    from bot.core.registry import parse_registry

    try:
        parse_registry(yaml.safe_load(text), models_yaml)
    except (RegistryError, yaml.YAMLError) as error:
        raise EntryError(f"{models_yaml}: the updated file would not be valid, left unchanged: {error}") from error
