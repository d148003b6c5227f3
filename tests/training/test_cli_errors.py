"""Bad input to `python -m training` ends with exit 2 and one line saying what is wrong, before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.conftest import COLUMNS, write_jigsaw_csv
from training.__main__ import main

REPO = Path(__file__).resolve().parents[2]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_train_with_a_missing_csv_exits_2(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope.csv"), f"output_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "nope.csv: no such CSV file" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_train_with_missing_label_columns_names_them(tmp_path, capsys):
    csv_path = write_jigsaw_csv(tmp_path / "rows.csv", rows=10, columns=[c for c in COLUMNS if c != "threat"])
    assert main(["train", "--data", str(csv_path), f"output_dir={tmp_path / 'run'}"]) == 2
    line = _one_line_error(capsys)
    assert "missing columns threat" in line and "has id, comment_text" in line


def test_train_with_an_unknown_config_field_exits_2(jigsaw_csv, capsys):
    assert main(["train", "--data", str(jigsaw_csv), "learning_rat=1e-4"]) == 2
    line = _one_line_error(capsys)
    assert "minilm.yaml" in line and "learning_rat" in line


def test_train_with_a_bad_value_names_the_field(jigsaw_csv, capsys):
    assert main(["train", "--data", str(jigsaw_csv), "weighting=cubic"]) == 2
    assert "weighting" in _one_line_error(capsys)


def test_evaluate_with_a_missing_csv_or_wrong_columns_exits_2(tiny_models, tmp_path, capsys):
    model = str(tiny_models.multi_label_dir)
    assert main(["evaluate", model, "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "e")]) == 2
    assert "no such CSV file" in _one_line_error(capsys)

    csv_path = write_jigsaw_csv(tmp_path / "rows.csv", rows=10, columns=["id", "toxic"])
    assert main(["evaluate", model, "--data", str(csv_path), "--out", str(tmp_path / "e")]) == 2
    assert "missing columns comment_text, severe_toxic" in _one_line_error(capsys)


def test_evaluate_of_a_folder_without_a_model_exits_2(tmp_path, jigsaw_csv, capsys):
    assert main(["evaluate", str(tmp_path), "--data", str(jigsaw_csv)]) == 2
    assert "no config.json" in _one_line_error(capsys)


def test_export_refuses_to_replace_a_folder_with_foreign_files(tiny_models, tmp_path, capsys):
    out = tmp_path / "models" / "tiny"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("keep me")
    code = main(["export", str(tiny_models.multi_label_dir), "--out", str(out), "--work", str(tmp_path / "w")])
    assert code == 2
    assert "notes.txt" in _one_line_error(capsys)
    assert (out / "notes.txt").read_text() == "keep me" and not (tmp_path / "w").exists()


def test_shipped_thresholds_need_the_validation_data(tiny_models, tmp_path, capsys):
    argv = ["export", str(tiny_models.multi_label_dir), "--out", str(tmp_path / "m"), "--thresholds-from", "shipped"]
    assert main([*argv, "--work", str(tmp_path / "w")]) == 2
    assert "needs --data" in _one_line_error(capsys)
    assert not (tmp_path / "w").exists() and not (tmp_path / "m").exists()


def test_the_process_exit_code_and_stderr_of_a_missing_csv(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "training", "train", "--data", str(tmp_path / "missing.csv")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.csv'}: no such CSV file or folder"]


@pytest.mark.parametrize("argv", [["evaluate"], ["export", "somewhere"], ["unknown-command"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
