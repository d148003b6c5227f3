"""`python -m bot health`: exit 0 when the database is writable and the default model loads, else one line and non-zero.

Docker's ``HEALTHCHECK`` runs it in the container beside the running bot. It opens its own database connection and
loads its own copy of the default model, so it proves what a restart would need, not only what the running process
holds. Exit codes: 0 healthy, 1 database unusable, 2 configuration error, 3 default model unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli._common import (
    EXIT_MODEL_UNAVAILABLE,
    EXIT_OK,
    CliError,
    import_tensorflow_quietly,
    load_cli_settings,
    open_registry,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.registry import Registry

EXIT_DATABASE = 1
DEFAULT_LOCK_TIMEOUT = 10.0
PROBE_TEXT = "health check"


@dataclass(frozen=True)
class Check:
    """The result of one check: ``ok`` with what was seen, or the reason it failed and the exit code that says so."""

    ok: bool
    detail: str
    exit_code: int = EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "health",
        help="check that the database is writable and the default model loads (Docker HEALTHCHECK)",
        description="Exit 0 and print one line when the database (BOT_DATABASE) is writable and the default model "
        "of models.yaml loads and scores a text; otherwise print one line on stderr and exit 1 (database), "
        "2 (configuration) or 3 (model).",
    )
    parser.add_argument("--no-model", action="store_true", help="check the database only (no model is loaded)")
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the running bot's writes to the database (default {DEFAULT_LOCK_TIMEOUT:g})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bot.app import quiet_libraries

    settings = load_cli_settings()
    quiet_libraries()
    registry = open_registry(settings.models_file)
    if not args.lock_timeout > 0:
        raise CliError("--lock-timeout must be a positive number of seconds")
    checks = asyncio.run(check_all(settings, registry, model=not args.no_model, lock_timeout=args.lock_timeout))
    failed = [check for check in checks if not check.ok]
    if failed:
        raise CliError("unhealthy: " + "; ".join(check.detail for check in failed), failed[0].exit_code)
    print("healthy: " + "; ".join(check.detail for check in checks))
    return EXIT_OK


async def check_all(
    settings: Settings, registry: Registry, *, model: bool = True, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> list[Check]:
    """The database check, then (unless ``model`` is False) the default model check."""
    checks = [await check_database(settings.database, lock_timeout=lock_timeout)]
    if model:
        checks.append(await check_default_model(settings, registry))
    return checks


async def check_database(target: str | Path, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> Check:
    """Open (and migrate) the database like the bot does, then check that it takes writes (changing nothing)."""
    from bot.core.errors import StorageError
    from bot.storage import Storage

    try:
        storage = await Storage.open(target, busy_timeout=min(lock_timeout, 5.0), lock_timeout=lock_timeout)
    except StorageError as error:
        return Check(False, f"database: {error}", EXIT_DATABASE)
    try:
        await storage.check_writable()
    except StorageError as error:
        return Check(False, f"database {storage.name} is not writable: {error}", EXIT_DATABASE)
    finally:
        await storage.close()
    return Check(True, f"database {storage.name} writable")


async def check_default_model(settings: Settings, registry: Registry) -> Check:
    """Load the default model as the bot would and score one short text with it."""
    from bot.app import build_classifier
    from bot.core.errors import BotError

    name = registry.default
    spec = registry.get(name)
    hint = ""
    if spec.runtime == "tensorflow":
        try:
            import_tensorflow_quietly()  # its CUDA probe writes to stderr before any log level applies
        except ImportError:  # loading the model below fails and says why; say what to do about it
            hint = (
                " (TensorFlow is not installed: use the `runtime` image, or pip install -r requirements-tensorflow.txt)"
            )
    classifier = build_classifier(settings, registry, max_batch=1)
    try:
        (result,) = await classifier.classify([PROBE_TEXT])
    except BotError as error:
        return Check(False, f"{error}{hint}", EXIT_MODEL_UNAVAILABLE)
    finally:
        await classifier.aclose()
    return Check(True, f"model {name} loaded ({spec.runtime}, {len(result.labels)} labels)")
