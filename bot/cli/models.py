"""`python -m bot models`: the models in models.yaml and whether each can be loaded right now."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from bot.cli._common import EXIT_OK, add_models_file_option, open_registry, write_stdout

if TYPE_CHECKING:
    from bot.core.registry import ModelSpec, Registry

STATUS_HELP = {
    "bundled": "files on disk",
    "cached": "in the Hugging Face cache",
    "download": "needs network access once (then cached)",
    "missing": "files not there yet",
    "corrupt": "files there but unreadable (config.json or weights)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the models and whether each is available",
        description="List the models in models.yaml: bundled (on disk), cached (in the Hugging Face cache), "
        "download (needs network access once), missing or corrupt (files there but unreadable).",
    )
    add_models_file_option(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = open_registry(args.models_file)
    rows = [_row(registry, spec) for spec in registry.specs.values()]
    if args.json:
        write_stdout("\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
        return EXIT_OK
    columns = ("name", "display_name", "task", "runtime", "source", "status")
    table = [("", *(column.replace("_", " ") for column in columns))]
    table += [("*" if row["default"] else "", *(str(row[column]) for column in columns)) for row in rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.append(f"\n* default ({registry.default}) - models file: {registry.path}")
    lines += [f"{status}: {STATUS_HELP[status]}" for status in sorted({str(row["status"]) for row in rows})]
    write_stdout("\n".join(lines))
    return EXIT_OK


def _row(registry: Registry, spec: ModelSpec) -> dict[str, object]:
    from bot.core.registry import HubSource

    source = spec.source
    where = f"{source.hub}@{source.revision}" if isinstance(source, HubSource) else str(source.path)
    return {
        "name": spec.name,
        "display_name": spec.display_name,
        "task": str(spec.task),
        "runtime": spec.runtime,
        "source": where,
        "status": str(registry.availability(spec.name)),
        "default": spec.name == registry.default,
    }
