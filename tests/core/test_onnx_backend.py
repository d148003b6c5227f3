"""The onnx backend: agrees with TensorFlow, pads by length group, flags truncation, never imports TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bot.core.backends.base import activate, load_backend
from bot.core.backends.onnx import length_groups, load
from bot.core.backends.onnx_export import FP32_FILE, INT8_FILE, export_folder, verify
from bot.core.errors import ModelLoadError
from bot.core.registry import LocalSource, ModelSpec, Registry
from bot.core.types import Task

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "you are so stupid",
    "had a wonderful weekend at the park",
    "",
    "I will find and kill you 🙂",
    "zalgo t̸̢e̴x̷t and \u202eright-to-left\u202c text with a NUL \x00 inside",
    "hello there, " * 80,  # longer than max_length: truncated
]


@pytest.fixture(scope="module")
def onnx_dirs(tiny_models, tmp_path_factory) -> dict[str, Path]:
    """Both tiny models exported once: ONNX folders with model.onnx and model.int8.onnx."""
    root = tmp_path_factory.mktemp("onnx")
    exported = {}
    for name, source in (("tiny-toxic", tiny_models.multi_label_dir), ("tiny-sentiment", tiny_models.single_label_dir)):
        export_folder(source, root / name)
        exported[name] = root / name
    return exported


def onnx_spec(registry: Registry, name: str, folder: Path, **update) -> ModelSpec:
    return registry.get(name).model_copy(update={"runtime": "onnx", "source": LocalSource(path=folder), **update})


def tf_probabilities(model_dir: Path, task: Task, texts: list[str], max_length: int) -> np.ndarray:
    """A direct transformers TF call on the same texts, one at a time (no padding at all)."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = TFAutoModelForSequenceClassification.from_pretrained(model_dir)
    rows = []
    for text in texts:
        batch = tokenizer([text], truncation=True, max_length=max_length, return_tensors="np")
        rows.append(model(**batch, training=False).logits.numpy()[0])
    return activate(np.stack(rows), task)


@pytest.mark.parametrize("name", ["tiny-toxic", "tiny-sentiment"])
def test_onnx_fp32_and_int8_agree_with_tensorflow(name, tiny_models, registry, onnx_dirs):
    spec = registry.get(name)
    model_dir = tiny_models.multi_label_dir if name == "tiny-toxic" else tiny_models.single_label_dir
    expected = tf_probabilities(model_dir, spec.task, TEXTS, spec.max_length)

    fp32 = load(onnx_spec(registry, name, onnx_dirs[name]), quantization="fp32")
    int8 = load(onnx_spec(registry, name, onnx_dirs[name]), quantization="int8")
    fp32_result, int8_result = fp32.predict(TEXTS), int8.predict(TEXTS)

    assert fp32.labels == int8.labels == tuple(spec.labels or fp32.labels)
    assert fp32_result.probabilities.shape == (len(TEXTS), len(fp32.labels))
    assert fp32_result.probabilities.dtype == np.float32
    assert np.abs(fp32_result.probabilities - expected).max() < 1e-5
    # hidden-32 models with wide weights are a worst case for 8 bits (MiniLM moves by < 0.01); real-model int8
    # quality is measured on data by bench/quality.py, not here
    int8_error = np.abs(int8_result.probabilities - expected)
    assert int8_error.max() < 0.3 and int8_error.mean() < 0.05
    assert verify(model_dir, onnx_dirs[name] / FP32_FILE, TEXTS, max_length=spec.max_length) < 1e-4


def test_labels_come_from_config_and_probabilities_follow_the_task(registry, onnx_dirs):
    toxic = load(onnx_spec(registry, "tiny-toxic", onnx_dirs["tiny-toxic"]))
    sentiment = load(onnx_spec(registry, "tiny-sentiment", onnx_dirs["tiny-sentiment"]))

    assert toxic.labels == ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
    assert sentiment.labels == ("NEGATIVE", "POSITIVE")
    np.testing.assert_allclose(sentiment.predict(TEXTS).probabilities.sum(axis=1), 1.0, rtol=1e-5)
    toxic_scores = toxic.predict(["you are so stupid", "had a wonderful weekend at the park"]).probabilities
    assert toxic_scores[0, 0] > toxic_scores[1, 0]  # the trained tiny model tells an insult from a greeting


def test_a_text_scores_the_same_alone_and_next_to_a_long_one(registry, onnx_dirs):
    backend = load(onnx_spec(registry, "tiny-toxic", onnx_dirs["tiny-toxic"]), quantization="fp32")
    batch = ["you are so stupid"] * 31 + ["hello there, " * 80]

    together = backend.predict(batch)
    alone = backend.predict(["you are so stupid"])

    np.testing.assert_allclose(together.probabilities[:31], np.repeat(alone.probabilities, 31, axis=0), atol=1e-6)
    assert together.truncated.tolist() == [False] * 31 + [True]


def test_a_batch_larger_than_one_forward_pass_is_split_and_kept_in_order(registry, onnx_dirs):
    backend = load(onnx_spec(registry, "tiny-toxic", onnx_dirs["tiny-toxic"]), quantization="fp32")
    texts = ["you are so stupid", "had a wonderful weekend at the park"] * 75

    result = backend.predict(texts)

    assert result.probabilities.shape == (150, 6)
    pair = backend.predict(texts[:2]).probabilities
    np.testing.assert_allclose(result.probabilities, np.tile(pair, (75, 1)), atol=1e-6)


def test_truncation_flags_and_empty_batch(registry, onnx_dirs):
    backend = load(onnx_spec(registry, "tiny-toxic", onnx_dirs["tiny-toxic"]))

    result = backend.predict([*TEXTS, "x" * 50_000])

    assert result.truncated.tolist() == [False] * 5 + [True, True]
    assert np.isfinite(result.probabilities).all()
    empty = backend.predict([])
    assert empty.probabilities.shape == (0, 6) and empty.truncated.shape == (0,)


def test_int8_is_preferred_when_both_graphs_are_present(registry, onnx_dirs):
    backend = load(onnx_spec(registry, "tiny-toxic", onnx_dirs["tiny-toxic"]))

    assert backend.graph.name == INT8_FILE


def test_length_groups_split_one_long_text_from_the_short_ones():
    groups = length_groups([12] * 31 + [128], overhead=64)

    assert sorted(map(len, groups)) == [1, 31]
    assert sorted(np.concatenate(groups).tolist()) == list(range(32))


def test_length_groups_keep_similar_lengths_together():
    lengths = [10, 12, 11, 13, 12, 10, 14, 12]

    groups = length_groups(lengths, overhead=64)

    assert len(groups) == 1 and sorted(groups[0].tolist()) == list(range(8))


def test_label_count_mismatch_is_a_clear_error(registry, onnx_dirs):
    spec = onnx_spec(registry, "tiny-sentiment", onnx_dirs["tiny-sentiment"], labels=("a", "b", "c"), thresholds={})

    with pytest.raises(ModelLoadError, match="3 labels but the model has 2 outputs"):
        load(spec)


def test_folder_without_tokenizer_is_a_clear_error(registry, onnx_dirs, tmp_path):
    (tmp_path / FP32_FILE).write_bytes((onnx_dirs["tiny-toxic"] / FP32_FILE).read_bytes())
    (tmp_path / "config.json").write_bytes((onnx_dirs["tiny-toxic"] / "config.json").read_bytes())

    with pytest.raises(ModelLoadError, match=r"no tokenizer\.json"):
        load_backend(onnx_spec(registry, "tiny-toxic", tmp_path))


def test_damaged_graph_in_a_model_folder_is_a_clear_error(registry, onnx_dirs, tmp_path):
    for name in ("tokenizer.json", "config.json"):
        (tmp_path / name).write_bytes((onnx_dirs["tiny-toxic"] / name).read_bytes())
    (tmp_path / FP32_FILE).write_bytes(b"not an onnx graph")

    with pytest.raises(ModelLoadError, match=r"model\.onnx does not load"):
        load_backend(onnx_spec(registry, "tiny-toxic", tmp_path))


def test_folder_without_any_graph_or_weights_is_a_clear_error(registry, tmp_path):
    (tmp_path / "config.json").write_text("{}")

    with pytest.raises(ModelLoadError, match=r"neither model\.onnx, model\.int8\.onnx nor tf_model\.h5"):
        load(onnx_spec(registry, "tiny-toxic", tmp_path))


def test_serving_onnx_models_never_imports_tensorflow(onnx_dirs, tmp_path):
    models_yaml = tmp_path / "models.yaml"
    models_yaml.write_text(
        "default: toxic\n"
        "models:\n"
        f"  toxic: {{task: multi_label, runtime: onnx, max_length: 64, source: {{path: {onnx_dirs['tiny-toxic']}}}}}\n"
        f"  sentiment: {{task: single_label, runtime: onnx, source: {{path: {onnx_dirs['tiny-sentiment']}}}}}\n",
        encoding="utf-8",
    )
    script = textwrap.dedent(
        f"""
        import sys
        from bot.core.backends.base import load_backend
        from bot.core.registry import load_registry

        registry = load_registry({str(models_yaml)!r})
        for name in registry.names():
            scores = load_backend(registry.get(name)).predict(["you are so stupid", "hello"]).probabilities
            assert scores.shape[0] == 2, scores.shape
        heavy = sorted(name for name in ("tensorflow", "transformers", "tf2onnx", "keras") if name in sys.modules)
        print("heavy:", ",".join(heavy) or "none")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: none"
