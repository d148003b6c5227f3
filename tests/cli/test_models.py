"""`python -m bot models`: every model with where its files would come from, as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bot.config import REPO_ROOT


def run_bot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "BOT_MODELS_FILE"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=120,
        check=False,
    )


def test_models_lists_each_model_with_its_status(tiny_models, tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "default: tiny\nmodels:\n"
        f"  tiny:\n    task: multi_label\n    source: {{path: {tiny_models.multi_label_dir}}}\n"
        "    runtime: tensorflow\n"
        "  later:\n    task: multi_label\n    source: {path: not-built-yet}\n    runtime: onnx\n"
        "  remote:\n    display_name: From the hub\n    task: single_label\n    source: {hub: o/n, revision: v2}\n"
        "    runtime: tensorflow\n",
        encoding="utf-8",
    )

    result = run_bot("models", "--models-file", str(path), env={"HF_HOME": str(tmp_path / "hf")})

    assert result.returncode == 0, result.stderr
    rows = {
        line.split()[1] if line.startswith("*") else line.split()[0]: line for line in result.stdout.splitlines()[1:4]
    }
    assert rows["tiny"].startswith("*") and rows["tiny"].endswith("bundled")
    assert rows["later"].endswith("missing")
    assert rows["remote"].endswith("download") and "o/n@v2" in rows["remote"] and "From the hub" in rows["remote"]
    assert "needs network access once" in result.stdout


def test_models_json_gives_one_object_per_model(tiny_models) -> None:
    result = run_bot("models", "--json", "--models-file", str(tiny_models.models_yaml))

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["name"], r["task"], r["status"], r["default"]) for r in records] == [
        ("tiny-toxic", "multi_label", "bundled", True),
        ("tiny-sentiment", "single_label", "bundled", False),
    ]


def test_models_file_comes_from_bot_models_file_when_no_option_is_given(tiny_models) -> None:
    result = run_bot("models", "--json", env={"BOT_MODELS_FILE": str(tiny_models.models_yaml)})

    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["name"] for line in result.stdout.splitlines()] == ["tiny-toxic", "tiny-sentiment"]


def test_shipped_models_file_lists_the_default_and_the_three_hub_models() -> None:
    result = run_bot("models", "--json")

    assert result.returncode == 0, result.stderr
    records = {record["name"]: record for record in map(json.loads, result.stdout.splitlines())}
    assert list(records) == ["toxic-minilm", "toxicity-1-epoch", "toxicity-8-epochs", "sst2-sentiment"]
    assert records["toxic-minilm"]["default"] and records["toxic-minilm"]["status"] in ("bundled", "missing")
    assert all(records[name]["status"] in ("cached", "download") for name in list(records)[1:])


def test_invalid_models_file_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("default: a\nmodels:\n  a:\n    task: multi_label\n    runtime: onnx\n", encoding="utf-8")

    result = run_bot("models", "--models-file", str(path))

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: model 'a': field 'source': is required: {{path: FOLDER}} or {{hub: OWNER/NAME, revision: REV}}"
    ]


def test_a_model_folder_with_a_broken_config_or_cut_weights_is_listed_as_corrupt(tiny_models, tmp_path: Path) -> None:
    broken_config = tmp_path / "broken-config"
    cut_weights = tmp_path / "cut-weights"
    shutil.copytree(tiny_models.multi_label_dir, broken_config)
    shutil.copytree(tiny_models.multi_label_dir, cut_weights)
    (broken_config / "config.json").write_text("{not json", encoding="utf-8")
    (cut_weights / "tf_model.h5").write_bytes(b"garbage, not HDF5")
    path = tmp_path / "models.yaml"
    entries = "".join(
        f"  {name}:\n    task: multi_label\n    source: {{path: {folder}}}\n    runtime: tensorflow\n"
        for name, folder in (("good", tiny_models.multi_label_dir), ("config", broken_config), ("cut", cut_weights))
    )
    path.write_text(f"default: good\nmodels:\n{entries}", encoding="utf-8")

    result = run_bot("models", "--models-file", str(path), "--json")

    assert result.returncode == 0, result.stderr
    status = {row["name"]: row["status"] for row in map(json.loads, result.stdout.splitlines())}
    assert status == {"good": "bundled", "config": "corrupt", "cut": "corrupt"}
