"""The TensorFlow backend gives the model's own scores: a direct transformers call + sigmoid / softmax."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bot.core.backends import load_backend
from bot.core.errors import ModelLoadError
from bot.core.labels import TOXICITY_LABELS
from bot.core.registry import HubSource, LocalSource, ModelSpec
from bot.core.types import Task
from tests.tiny_models import SENTIMENT_LABELS

TEXTS = ["you are so stupid", "hello there, how was your weekend", "I will find and kill you", "", "ok"]


def direct_logits(folder: Path, texts: list[str], max_length: int) -> np.ndarray:
    """The reference: transformers' own tokenizer and model call, no code of ours."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = TFAutoModelForSequenceClassification.from_pretrained(folder)
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="tf")
    return model(dict(encoded), training=False).logits.numpy()


def test_multi_label_scores_are_sigmoid_of_the_direct_model_call(tiny_models, tf_backends) -> None:
    backend = tf_backends["tiny-toxic"]
    expected = 1 / (1 + np.exp(-direct_logits(tiny_models.multi_label_dir, TEXTS, 64)))

    prediction = backend.predict(TEXTS)

    assert backend.labels == TOXICITY_LABELS
    assert prediction.probabilities.dtype == np.float32
    assert prediction.probabilities.shape == (len(TEXTS), 6)
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)
    assert prediction.truncated.tolist() == [False] * len(TEXTS)


def test_single_label_scores_are_softmax_of_the_direct_model_call(tiny_models, tf_backends) -> None:
    backend = tf_backends["tiny-sentiment"]
    logits = direct_logits(tiny_models.single_label_dir, TEXTS, 64)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    probabilities = backend.predict(TEXTS).probabilities

    assert backend.labels == SENTIMENT_LABELS
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


def test_tiny_toxic_model_tells_insults_and_threats_from_greetings(tf_backends) -> None:
    scores = tf_backends["tiny-toxic"].predict(["you are so stupid", "hello there", "I will find and kill you"])
    toxic, insult, threat = (TOXICITY_LABELS.index(label) for label in ("toxic", "insult", "threat"))

    assert scores.probabilities[0, toxic] > 0.5 > scores.probabilities[1, toxic]
    assert scores.probabilities[0, insult] > scores.probabilities[1, insult]
    assert scores.probabilities[2, threat] > scores.probabilities[1, threat]


def test_long_text_is_truncated_at_max_length_and_flagged(tiny_models, tf_backends) -> None:
    long_text = "you are so stupid and " * 40  # about 200 tokens against max_length 64
    texts = [long_text, "hello"]
    expected = 1 / (1 + np.exp(-direct_logits(tiny_models.multi_label_dir, texts, 64)))

    prediction = tf_backends["tiny-toxic"].predict(texts)

    assert prediction.truncated.tolist() == [True, False]
    np.testing.assert_allclose(prediction.probabilities, expected, atol=1e-5)


def test_scores_do_not_depend_on_the_other_texts_in_the_batch(tf_backends) -> None:
    backend = tf_backends["tiny-toxic"]
    alone = backend.predict(["you idiot"]).probabilities[0]
    padded = backend.predict(["you idiot", "a much longer message about the weekend at the park " * 3])

    np.testing.assert_allclose(padded.probabilities[0], alone, atol=1e-5)


def test_empty_batch_gives_empty_arrays(tf_backends) -> None:
    prediction = tf_backends["tiny-toxic"].predict([])
    assert prediction.probabilities.shape == (0, 6)
    assert prediction.truncated.shape == (0,)


def test_pytorch_format_safetensors_load_without_torch(tiny_models, tmp_path: Path, tf_backends) -> None:
    from safetensors.numpy import save_file
    from transformers import TFAutoModelForSequenceClassification
    from transformers.modeling_tf_pytorch_utils import TransposeType, convert_tf_weight_name_to_pt_weight_name

    # Write the tiny model as a PyTorch checkpoint would store it: PyTorch names, PyTorch weight layout.
    model = TFAutoModelForSequenceClassification.from_pretrained(tiny_models.multi_label_dir)
    state = {}
    for weight in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(weight.name, tf_weight_shape=weight.shape)
        array = weight.numpy()
        state[name] = np.ascontiguousarray(array.T if transpose is TransposeType.SIMPLE else array)
    folder = tmp_path / "pt-only"
    shutil.copytree(tiny_models.multi_label_dir, folder, ignore=shutil.ignore_patterns("tf_model.h5"))
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    spec = ModelSpec(
        name="pt-only", task=Task.MULTI_LABEL, source=LocalSource(path=folder), runtime="tensorflow", max_length=64
    )

    backend = load_backend(spec)

    np.testing.assert_allclose(
        backend.predict(TEXTS).probabilities, tf_backends["tiny-toxic"].predict(TEXTS).probabilities, atol=1e-5
    )


def test_labels_from_models_yaml_override_id2label_and_must_match_the_outputs(tiny_models) -> None:
    def spec(labels: tuple[str, ...]) -> ModelSpec:
        return ModelSpec(
            name="relabelled",
            task=Task.SINGLE_LABEL,
            labels=labels,
            runtime="tensorflow",
            source=LocalSource(path=tiny_models.single_label_dir),
        )

    assert load_backend(spec(("bad", "good"))).labels == ("bad", "good")
    with pytest.raises(ModelLoadError, match="3 labels but the model has 2 outputs"):
        load_backend(spec(("a", "b", "c")))


def test_missing_folder_is_a_clear_model_load_error(tmp_path: Path) -> None:
    spec = ModelSpec(
        name="gone", task=Task.MULTI_LABEL, source=LocalSource(path=tmp_path / "gone"), runtime="tensorflow"
    )

    with pytest.raises(ModelLoadError, match=r"model 'gone' is unavailable: no model files .* in "):
        load_backend(spec)


def test_corrupt_weights_are_a_model_load_error(tiny_models, tmp_path: Path) -> None:
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_models.multi_label_dir, folder)
    (folder / "tf_model.h5").write_bytes(b"not an HDF5 file")
    spec = ModelSpec(name="corrupt", task=Task.MULTI_LABEL, source=LocalSource(path=folder), runtime="tensorflow")

    with pytest.raises(ModelLoadError, match="model 'corrupt' is unavailable"):
        load_backend(spec)


def test_config_without_labels_is_a_model_load_error(tiny_models, tmp_path: Path) -> None:
    folder = tmp_path / "unlabelled"
    shutil.copytree(tiny_models.multi_label_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(index): f"LABEL_{index}" for index in range(5)}  # 5 names for 6 outputs
    (folder / "config.json").write_text(json.dumps(config))
    spec = ModelSpec(name="unlabelled", task=Task.MULTI_LABEL, source=LocalSource(path=folder), runtime="tensorflow")

    with pytest.raises(ModelLoadError, match="model 'unlabelled' is unavailable"):
        load_backend(spec)


def test_hub_model_not_in_the_cache_while_offline_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never touch the network in tests
    spec = ModelSpec(
        name="remote",
        task=Task.MULTI_LABEL,
        runtime="tensorflow",
        source=HubSource(hub="bot-tests/not-cached-anywhere", revision="v1"),
    )

    with pytest.raises(ModelLoadError) as caught:
        load_backend(spec)
    message = str(caught.value)
    assert "bot-tests/not-cached-anywhere@v1" in message
    assert "network access" in message and "HF_HOME" in message


def test_unknown_runtime_is_rejected_by_the_registry_schema() -> None:
    with pytest.raises(ValueError, match="runtime"):
        ModelSpec(name="x", task=Task.MULTI_LABEL, source=HubSource(hub="o/n"), runtime="pytorch")  # type: ignore[arg-type]
