"""`python -m bot classify "text"`: the per-label table of one text, or of every line of stdin (batched)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from bot.cli._common import (
    EXIT_MODEL_UNAVAILABLE,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    add_models_file_option,
    import_tensorflow_quietly,
    load_cli_settings,
    open_registry,
    write_stdout,
)
from bot.core.text import clean_text

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.registry import Registry
    from bot.core.types import Classification

STDIN_CHUNK = 256  # lines scored per round, so a long input streams out and memory stays flat


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "classify",
        help="score text with a model and print the per-label table",
        description="Score text with a model from models.yaml. With no TEXT, reads one message per line from stdin "
        "and scores the lines in batches.",
    )
    parser.add_argument("text", nargs="*", metavar="TEXT", help="the message (words are joined with spaces)")
    parser.add_argument("--model", "-m", metavar="NAME", help="a model name from `python -m bot models`")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per message")
    output.add_argument("--raw", action="store_true", help="label -> score only, like the demo's raw output")
    add_models_file_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.app import quiet_libraries

    quiet_libraries()
    settings = load_cli_settings()
    registry = open_registry(args.models_file or settings.models_file)
    if args.text:
        texts: Iterable[str] = [clean_text(" ".join(args.text))]  # argv may hold undecodable bytes (surrogates)
    else:
        if sys.stdin is None or sys.stdin.isatty():
            raise CliError("no text: pass it as an argument, or pipe one message per line on stdin", EXIT_USAGE)
        lines = _stdin_lines()
        first = next(lines, None)
        if first is None:
            raise CliError("no text on stdin: pipe one message per line", EXIT_USAGE)
        texts = itertools.chain([first], lines)
    single = bool(args.text)
    if _runtime_of(registry, args.model) == "tensorflow":
        import_tensorflow_quietly()
    output = "json" if args.json else "raw" if args.raw else "text"
    asyncio.run(_classify_all(registry, settings, texts, args.model, output, single))
    return EXIT_OK


async def _classify_all(
    registry: Registry, settings: Settings, texts: Iterable[str], model: str | None, output: str, single: bool
) -> int:
    from bot.app import build_classifier
    from bot.core.errors import InvalidInputError, ModelLoadError, UnknownModelError

    classifier = build_classifier(settings, registry)
    count = 0
    try:
        for chunk in _chunks(texts, STDIN_CHUNK):
            # one call per line, all at once: the classifier batches them into few forward passes
            results = await asyncio.gather(*(classifier.classify([text], model=model) for text in chunk))
            rendered = [
                _render(classification, text, output, single, first=count == 0 and index == 0)
                for index, (text, (classification,)) in enumerate(zip(chunk, results, strict=True))
            ]
            count += len(chunk)
            if not write_stdout("\n".join(rendered)):
                break
    except UnknownModelError as error:
        raise CliError(f"{error}", EXIT_USAGE) from None
    except InvalidInputError as error:
        raise CliError(f"invalid input: {error}", EXIT_USAGE) from None
    except ModelLoadError as error:
        raise CliError(f"{error}{_alternatives(registry, error.name)}", EXIT_MODEL_UNAVAILABLE) from None
    finally:
        await classifier.aclose()
    return count


def _render(c: Classification, text: str, output: str, single: bool, *, first: bool) -> str:
    from bot.core.report import as_json, render_raw, render_text

    if output == "json":
        return json.dumps(as_json(c, text), ensure_ascii=False)
    if output == "raw":
        return render_raw(c) if single else json.dumps(c.as_dict(), ensure_ascii=False)
    if single:
        return render_text(c)
    quoted = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return ("" if first else "\n") + f"> {quoted[:117] + '...' if len(quoted) > 120 else quoted}\n{render_text(c)}"


def _alternatives(registry: Registry, failed: str) -> str:
    """A hint naming the models that can be used right now, or how to get one."""
    usable = [
        name for name in registry.names() if name != failed and registry.availability(name) in ("bundled", "cached")
    ]
    if usable:
        return f". Available now: {', '.join(usable)} (use --model NAME)"
    hub = [name for name in registry.names() if name != failed and registry.availability(name) == "download"]
    if hub and registry.availability(failed) == "missing":
        return (
            f". No other model is available offline; with network access, `--model {hub[0]}` downloads one "
            "to the Hugging Face cache once (`python -m bot models` lists them all)"
        )
    return ""


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as UTF-8 whatever the locale; invalid bytes become U+FFFD, so the output is valid UTF-8 too."""
    source = getattr(sys.stdin, "buffer", None)
    raw_lines = iter(source) if source is not None else (line.encode("utf-8", "replace") for line in sys.stdin)
    for raw in raw_lines:
        text = clean_text(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        if text.strip():
            yield text


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _runtime_of(registry: Registry, model: str | None) -> str | None:
    spec = registry.specs.get(model or registry.default)
    return spec.runtime if spec is not None else None
