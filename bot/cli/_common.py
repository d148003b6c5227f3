"""What the sub-commands share: exit codes, one-line errors, the settings, the registry, stdout, quiet imports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.registry import Registry

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_MODEL_UNAVAILABLE = 3


class CliError(Exception):
    """A failure the user can fix: printed as one line on stderr, with its exit code, never a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_models_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="models.yaml to use (default: $BOT_MODELS_FILE, else the repository's models.yaml)",
    )


def open_registry(models_file: Path | None) -> Registry:
    """The registry from ``--models-file``, else the settings' file; a bad file is a usage error (exit 2)."""
    from bot.core.errors import RegistryError
    from bot.core.registry import load_registry

    if models_file is None:
        models_file = load_cli_settings().models_file
    try:
        return load_registry(models_file)
    except RegistryError as error:
        raise CliError(str(error), EXIT_USAGE) from None


def write_stdout(text: str) -> bool:
    """Print ``text``; False when the reader went away (``| head``), which is not an error."""
    try:
        print(text, flush=True)
        return True
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the interpreter's final flush stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return False


def load_cli_settings() -> Settings:
    """The environment's settings; an invalid value is a usage error (exit 2) naming the variable."""
    from pydantic import ValidationError

    from bot.config import load_settings

    try:
        return load_settings()
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CliError(f"invalid setting {where}: {first['msg']}", EXIT_USAGE) from None


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with fd 2 silenced: its CUDA probe writes to stderr whatever the log level.

    Only the CLI does this (single-threaded at this point); if the import fails, what it wrote is shown after all.
    """
    import tempfile

    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs its failure here, not at import
        except Exception:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
