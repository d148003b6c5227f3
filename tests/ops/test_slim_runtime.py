"""The runtime-slim image has only requirements-runtime.txt and what it pulls in. Emulated here: every installed
package outside that closure (TensorFlow, transformers, tf2onnx, datasets ...) is made unimportable, and the bot must
still check its health, chat on the console and import both platform adapters with an ONNX model."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.ops.helpers import REPO, bot_env
from tests.tiny_models import TinyModels

NEVER_IN_SLIM = ("tensorflow", "tf-keras", "keras", "transformers", "tf2onnx", "datasets", "onnx", "scikit-learn")
# Runs the bot with the imports of packages outside the slim closure failing, as they would in the image.
RUNNER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = set(json.loads(sys.argv.pop(1)))
    STARTUP = set(sys.modules)  # what site-packages' .pth hooks loaded before us, as they would in the image

    class NotInTheImage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not in the runtime-slim image)")
            return None

    sys.meta_path.insert(0, NotInTheImage())
    import bot.adapters.discord_bot, bot.adapters.telegram_bot  # noqa: E401  both platforms load without TF
    from bot.cli import main

    code = main(sys.argv[1:])
    leaked = sorted(name for name in set(sys.modules) - STARTUP if name.partition(".")[0] in BLOCKED)
    print("blocked modules imported:", leaked, file=sys.stderr)
    sys.exit(code)
    """
)


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements: Path) -> set[str]:
    """Distributions a ``pip install -r requirements`` brings, resolved from the installed packages' metadata."""
    wanted: list[tuple[str, frozenset[str]]] = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            wanted += [(name, frozenset()) for name in closure(requirements.parent / line[2:].strip())]
        elif line:
            requirement = Requirement(line)
            wanted.append((requirement.name, frozenset(requirement.extras)))
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        name, extras = wanted.pop()
        if (normalise(name), extras) in seen:
            continue
        seen.add((normalise(name), extras))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
                wanted.append((requirement.name, frozenset(requirement.extras)))
    return {name for name, _ in seen}


def blocked_modules(allowed: set[str]) -> list[str]:
    """Top-level modules of installed distributions that are not in ``allowed`` (shared namespaces stay importable)."""
    owners = metadata.packages_distributions()
    return sorted(
        module
        for module, dists in owners.items()
        if module != "bot" and not any(normalise(dist) in allowed for dist in dists)
    )


@pytest.fixture(scope="module")
def slim(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """(models.yaml whose default is the tiny toxicity model exported to ONNX, modules to block)."""
    from bot.core.backends.onnx_export import export_folder

    folder = tmp_path_factory.mktemp("slim")
    export_folder(tiny_models.multi_label_dir, folder / "tiny-toxic-onnx", fp32=False, int8=True)
    models = folder / "models.yaml"
    models.write_text(
        "default: tiny-toxic-onnx\nmodels:\n"
        f"  tiny-toxic-onnx: {{task: multi_label, runtime: onnx, source: {{path: {folder / 'tiny-toxic-onnx'}}}}}\n",
        encoding="utf-8",
    )
    return models, blocked_modules(closure(REPO / "requirements-runtime.txt"))


def run_slim(blocked: list[str], env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps(blocked), *args],
        input=stdin, capture_output=True, text=True, cwd=REPO, env=env, timeout=240, check=False,
    )  # fmt: skip


def test_the_slim_requirements_leave_out_the_tensorflow_stack() -> None:
    slim = closure(REPO / "requirements-runtime.txt")
    assert not slim & set(NEVER_IN_SLIM), sorted(slim & set(NEVER_IN_SLIM))
    assert {"onnxruntime", "tokenizers", "discord-py", "python-telegram-bot", "aiosqlite", "tornado"} <= slim


def test_health_passes_without_the_tensorflow_stack(slim: tuple[Path, list[str]], tmp_path: Path) -> None:
    models, blocked = slim
    assert {"tensorflow", "transformers", "tf2onnx", "datasets"} <= set(blocked)
    result = run_slim(blocked, bot_env(models, tmp_path / "bot.sqlite3"), "health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("healthy: ") and "model tiny-toxic-onnx loaded (onnx, 6 labels)" in result.stdout
    assert result.stderr.strip().endswith("blocked modules imported: []")


def test_the_console_chat_runs_without_the_tensorflow_stack(slim: tuple[Path, list[str]], tmp_path: Path) -> None:
    models, blocked = slim
    env = bot_env(models, tmp_path / "bot.sqlite3")
    result = run_slim(blocked, env, "console", stdin="/as member\nyou are so stupid\n/classify hello there\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    answer = out[out.index("> you are so stupid") + 1]
    assert answer.split(":")[0] in ("none", "flag", "delete", "warn", "timeout"), answer
    assert "model: tiny-toxic-onnx" in out
    assert "Traceback" not in result.stderr


def test_a_tensorflow_default_model_in_the_slim_image_is_one_line_saying_what_to_do(
    slim: tuple[Path, list[str]], tiny_models: TinyModels, tmp_path: Path
) -> None:
    _, blocked = slim
    result = run_slim(blocked, bot_env(tiny_models.models_yaml, tmp_path / "bot.sqlite3"), "health")
    assert result.returncode == 3
    error = result.stderr.splitlines()[0]
    assert error.startswith("error: unhealthy: model 'tiny-toxic' is unavailable: ")
    assert "use the `runtime` image" in error
    assert "Traceback" not in result.stderr
