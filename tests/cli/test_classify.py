"""`python -m bot classify` as a user runs it: a subprocess, the tiny models, exit codes 0 / 2 / 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.config import REPO_ROOT
from bot.core.labels import TOXICITY_LABELS


def run_bot(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "BOT_MODELS_FILE"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=240,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def write_yaml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_classify_prints_the_six_label_table(tiny_models) -> None:
    result = run_bot(
        "classify", "--models-file", str(tiny_models.models_yaml), "--model", "tiny-toxic", "you are so stupid"
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = [
        line.split() for line in result.stdout.splitlines() if line.split()[:1] and line.split()[0] in TOXICITY_LABELS
    ]
    assert [row[0] for row in rows] == list(TOXICITY_LABELS)
    assert all(0.0 <= float(row[1]) <= 1.0 for row in rows)
    assert "Toxic: Yes - toxicity class: insult" in result.stdout


def test_stdin_lines_are_each_scored_and_match_the_model(tiny_models, tf_cli_reference) -> None:
    lines = ["you are so stupid", "", "hello there, how was your weekend", "I will find and kill you"]

    result = run_bot("classify", "--json", "--models-file", str(tiny_models.models_yaml), stdin="\n".join(lines) + "\n")

    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    texts = [line for line in lines if line]
    assert [record["text"] for record in records] == texts  # blank lines are not messages
    expected = tf_cli_reference(texts)
    scores = np.array([[record["scores"][label] for label in TOXICITY_LABELS] for record in records])
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert [record["summary"]["toxic"] for record in records] == [True, False, True]


def test_raw_output_of_a_sentiment_model_is_label_to_score(tiny_models) -> None:
    result = run_bot("classify", "--raw", "-m", "tiny-sentiment", "--models-file", str(tiny_models.models_yaml), "hi")

    assert result.returncode == 0, result.stderr
    raw = json.loads(result.stdout)
    assert list(raw) == ["NEGATIVE", "POSITIVE"]
    assert sum(raw.values()) == pytest.approx(1.0, abs=1e-5)


def test_unknown_model_exits_2_with_one_line(tiny_models) -> None:
    result = run_bot("classify", "--models-file", str(tiny_models.models_yaml), "--model", "nope", "hi")

    assert result.returncode == 2
    assert "unknown model 'nope'" in one_error_line(result)


def test_bundled_model_not_there_yet_exits_3_and_says_what_to_do(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "default: bundled\nmodels:\n  bundled:\n    task: multi_label\n"
        "    source: {path: models/absent}\n    runtime: onnx\n"
        "  remote:\n    task: multi_label\n    source: {hub: o/n}\n    runtime: tensorflow\n",
    )

    result = run_bot("classify", "--models-file", str(path), "you are so stupid")

    assert result.returncode == 3
    line = one_error_line(result)
    assert "model 'bundled' is unavailable" in line and "no model files" in line
    assert "--model remote" in line and "network access" in line


def test_hub_model_offline_and_not_cached_exits_3_and_says_how_to_get_it(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "default: remote\nmodels:\n  remote:\n    task: multi_label\n"
        "    source: {hub: bot-tests/not-cached, revision: main}\n    runtime: tensorflow\n",
    )

    result = run_bot("classify", "--models-file", str(path), "hi", env={"HF_HOME": str(tmp_path / "hf")})

    assert result.returncode == 3
    line = one_error_line(result)
    assert "bot-tests/not-cached@main is not in the Hugging Face cache" in line and "HF_HOME" in line


def test_invalid_models_file_exits_2_naming_file_model_and_field(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path,
        "default: a\nmodels:\n  a:\n    task: multi_label\n    source: {path: x}\n"
        "    runtime: onnx\n    colour: blue\n",
    )

    result = run_bot("classify", "--models-file", str(path), "hi")

    assert result.returncode == 2
    line = one_error_line(result)
    assert str(path) in line and "model 'a'" in line and "field 'colour'" in line


def test_missing_models_file_exits_2(tmp_path: Path) -> None:
    result = run_bot("classify", "--models-file", str(tmp_path / "none.yaml"), "hi")

    assert result.returncode == 2
    assert "none.yaml" in one_error_line(result)


def test_no_text_and_empty_stdin_exits_2(tiny_models) -> None:
    result = run_bot("classify", "--models-file", str(tiny_models.models_yaml), stdin="\n  \n")

    assert result.returncode == 2
    assert "no text" in one_error_line(result)


def test_invalid_setting_in_the_environment_exits_2(tiny_models) -> None:
    result = run_bot("classify", "--models-file", str(tiny_models.models_yaml), "hi", env={"BOT_MAX_BATCH": "lots"})

    assert result.returncode == 2
    assert "BOT_MAX_BATCH" in one_error_line(result)


@pytest.fixture(scope="module")
def tf_cli_reference(registry):
    """Scores of the tiny toxic model computed in this process, to compare with the subprocess's output."""
    from bot.core.backends import load_backend

    backend = load_backend(registry.get("tiny-toxic"))
    return lambda texts: backend.predict(texts).probabilities


@pytest.mark.parametrize("encoding", ["utf-8:strict", "utf-8:surrogateescape"])
def test_invalid_utf8_on_stdin_is_replaced_and_the_json_output_stays_valid_utf8(tiny_models, encoding: str) -> None:
    environment = {key: value for key, value in os.environ.items() if key != "BOT_MODELS_FILE"}
    environment |= {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": encoding}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--models-file", str(tiny_models.models_yaml), "--json"],
        input=b"you are so stupid \xff\xfe\nhello \xed\xa0\x80 there\n",  # a stray byte, an encoded lone surrogate
        capture_output=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    rows = [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]  # strict: raises if invalid
    assert [row["text"] for row in rows] == ["you are so stupid \ufffd\ufffd", "hello \ufffd\ufffd\ufffd there"]
