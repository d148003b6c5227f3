"""The conversion cache: a TF or hub model with runtime onnx is converted once, reused, and rebuilt when damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bot.core.backends.onnx import default_cache_root, load
from bot.core.backends.onnx_cache import MANIFEST, CacheKey, OnnxCache, default_converter
from bot.core.backends.onnx_export import FP32_FILE, INT8_FILE, export_folder
from bot.core.errors import ModelLoadError
from bot.core.registry import HubSource, LocalSource, ModelSpec
from bot.core.types import Task

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["you are so stupid", "had a wonderful weekend at the park"]


class CountingConverter:
    """Records every conversion; delegates to the real tf2onnx converter or copies an exported folder."""

    def __init__(self, exported: Path | None = None, *, broken_first: int = 0) -> None:
        self.exported = exported
        self.calls: list[tuple[Path, str]] = []
        self.broken_first = broken_first  # write an unloadable graph on the first N calls

    def __call__(self, tf_dir: Path, out_dir: Path, quantization: str) -> None:
        self.calls.append((tf_dir, quantization))
        graph = FP32_FILE if quantization == "fp32" else INT8_FILE
        if self.exported is None:
            default_converter(tf_dir, out_dir, quantization)
        else:
            for name in (graph, "tokenizer.json", "config.json"):
                shutil.copyfile(self.exported / name, out_dir / name)
        if len(self.calls) <= self.broken_first:
            (out_dir / graph).write_bytes(b"\x08\x07not a graph")


def toxic_spec(source: LocalSource | HubSource) -> ModelSpec:
    return ModelSpec(name="toxic", task=Task.MULTI_LABEL, source=source, runtime="onnx", max_length=64)


@pytest.fixture(scope="module")
def exported(tiny_models, tmp_path_factory) -> Path:
    """The tiny toxic model exported once (fp32 + int8), copied by the cheap converter."""
    out = tmp_path_factory.mktemp("exported") / "tiny-toxic"
    export_folder(tiny_models.multi_label_dir, out)
    return out


@pytest.fixture(scope="module")
def warm_cache(tiny_models, tmp_path_factory) -> tuple[Path, CountingConverter, np.ndarray]:
    """A bot cache dir after a first load of the TF folder with runtime onnx (the real tf2onnx conversion)."""
    cache_dir = tmp_path_factory.mktemp("bot-cache")
    converter = CountingConverter()
    spec = toxic_spec(LocalSource(path=tiny_models.multi_label_dir))
    first = load(spec, cache=OnnxCache(default_cache_root(cache_dir), converter=converter))
    return cache_dir, converter, first.predict(TEXTS).probabilities


def test_tf_folder_is_converted_once_and_reused_after_a_restart(tiny_models, warm_cache):
    cache_dir, converter, first_scores = warm_cache
    spec = toxic_spec(LocalSource(path=tiny_models.multi_label_dir))

    again = load(spec, cache=OnnxCache(default_cache_root(cache_dir), converter=converter))

    assert converter.calls == [(tiny_models.multi_label_dir, "fp32")]
    assert again.graph.parent.parent == cache_dir / "onnx"
    np.testing.assert_allclose(again.predict(TEXTS).probabilities, first_scores)


def test_later_load_in_a_fresh_process_never_imports_tensorflow(tiny_models, warm_cache, tmp_path):
    cache_dir, converter, first_scores = warm_cache
    models_yaml = tmp_path / "models.yaml"
    source = tiny_models.multi_label_dir
    models_yaml.write_text(
        f"default: toxic\nmodels:\n  toxic: {{task: multi_label, runtime: onnx, source: {{path: {source}}}}}\n",
        encoding="utf-8",
    )
    script = textwrap.dedent(
        f"""
        import sys
        from bot.core.backends.base import load_backend
        from bot.core.registry import load_registry

        spec = load_registry({str(models_yaml)!r}).get("toxic")
        backend = load_backend(spec, cache_dir={str(cache_dir)!r})
        print(backend.predict({TEXTS!r}).probabilities.round(5).tolist())
        print("tensorflow" in sys.modules, "transformers" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr
    scores, imported = result.stdout.splitlines()[-2:]
    assert imported == "False False"
    np.testing.assert_allclose(np.array(json.loads(scores)), first_scores, atol=1e-5)
    assert len(converter.calls) == 1


def test_fp32_and_int8_are_separate_entries(tiny_models, exported, tmp_path):
    converter = CountingConverter(exported)
    cache = OnnxCache(tmp_path, converter=converter)
    spec = toxic_spec(LocalSource(path=tiny_models.multi_label_dir))

    fp32 = load(spec, cache=cache, quantization="fp32")
    int8 = load(spec, cache=cache, quantization="int8")
    load(spec, cache=cache, quantization="int8")

    assert [quantization for _, quantization in converter.calls] == ["fp32", "int8"]
    assert (fp32.graph.name, int8.graph.name) == (FP32_FILE, INT8_FILE)
    assert fp32.graph.parent != int8.graph.parent


def _flip_a_byte(entry: Path) -> None:
    graph = entry / FP32_FILE
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))


CORRUPTIONS = {
    "flipped byte in the graph": _flip_a_byte,
    "truncated graph": lambda entry: (entry / FP32_FILE).write_bytes((entry / FP32_FILE).read_bytes()[:100]),
    "missing tokenizer": lambda entry: (entry / "tokenizer.json").unlink(),
    "garbage manifest": lambda entry: (entry / MANIFEST).write_text("{not json"),
    "missing manifest": lambda entry: (entry / MANIFEST).unlink(),
    "manifest of another key": lambda entry: (entry / MANIFEST).write_text(
        json.dumps({**json.loads((entry / MANIFEST).read_text()), "key": {"source": "x"}})
    ),
}


@pytest.mark.parametrize("damage", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_damaged_entry_is_detected_and_rebuilt(damage, tiny_models, exported, tmp_path):
    converter = CountingConverter(exported)
    cache = OnnxCache(tmp_path, converter=converter)
    spec = toxic_spec(LocalSource(path=tiny_models.multi_label_dir))
    expected = load(spec, cache=cache, quantization="fp32").predict(TEXTS).probabilities

    damage(next(tmp_path.glob("tiny-toxic-fp32-*")))
    rebuilt = load(spec, cache=cache, quantization="fp32")

    assert len(converter.calls) == 2
    np.testing.assert_allclose(rebuilt.predict(TEXTS).probabilities, expected)
    assert [path.name for path in tmp_path.iterdir()] == [rebuilt.graph.parent.name]  # no leftovers


def test_entry_that_onnxruntime_rejects_is_converted_again(tiny_models, exported, tmp_path):
    converter = CountingConverter(exported, broken_first=1)  # checksums match, but the graph is not ONNX

    backend = load(
        toxic_spec(LocalSource(path=tiny_models.multi_label_dir)), cache=OnnxCache(tmp_path, converter=converter)
    )

    assert len(converter.calls) == 2
    assert backend.predict(TEXTS).probabilities.shape == (2, 6)


def test_conversion_that_keeps_failing_is_a_clear_error(tiny_models, exported, tmp_path):
    converter = CountingConverter(exported, broken_first=99)

    with pytest.raises(ModelLoadError, match=r"the converted model .* does not load"):
        load(toxic_spec(LocalSource(path=tiny_models.multi_label_dir)), cache=OnnxCache(tmp_path, converter=converter))
    assert len(converter.calls) == 2


def test_failed_conversion_leaves_nothing_behind(tiny_models, tmp_path):
    def failing(tf_dir: Path, out_dir: Path, quantization: str) -> None:
        (out_dir / FP32_FILE).write_bytes(b"half written")
        raise RuntimeError("tf2onnx failed")

    with pytest.raises(RuntimeError, match="tf2onnx failed"):
        load(toxic_spec(LocalSource(path=tiny_models.multi_label_dir)), cache=OnnxCache(tmp_path, converter=failing))
    assert list(tmp_path.iterdir()) == []


def test_changed_tf_folder_is_converted_again(tiny_models, exported, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_models.multi_label_dir, folder)
    converter = CountingConverter(exported)
    cache = OnnxCache(tmp_path / "cache", converter=converter)
    spec = toxic_spec(LocalSource(path=folder))

    load(spec, cache=cache)
    weights = folder / "tf_model.h5"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # retrained in place
    load(spec, cache=cache)

    assert len(converter.calls) == 2


def test_hub_model_loads_offline_from_its_cache_entry(tiny_models, exported, tmp_path):
    converter = CountingConverter(exported)
    cache = OnnxCache(tmp_path, converter=converter)
    key = CacheKey("hub:someone/tiny-toxic", "v1", "fp32")
    cache.get_or_build(key, lambda: tiny_models.multi_label_dir)  # as a first, online load would have

    backend = load(toxic_spec(HubSource(hub="someone/tiny-toxic", revision="v1")), cache=cache)

    assert len(converter.calls) == 1
    assert backend.graph.parent == cache.path(key)
    with pytest.raises(ModelLoadError, match="cannot fetch someone/tiny-toxic@v2"):  # not cached, and offline
        load(toxic_spec(HubSource(hub="someone/tiny-toxic", revision="v2")), cache=cache)
    assert len(converter.calls) == 1


def test_cache_key_names_differ_by_source_revision_and_quantization():
    keys = [
        CacheKey("hub:owner/model", "main", "fp32"),
        CacheKey("hub:owner/model", "main", "int8"),
        CacheKey("hub:owner/model", "abc123", "fp32"),
        CacheKey("hub:other/model", "main", "fp32"),
    ]

    assert len({key.folder_name for key in keys}) == 4
    assert keys[0].folder_name == CacheKey("hub:owner/model", "main", "fp32").folder_name
    assert keys[0].folder_name.startswith("model-fp32-")
    with pytest.raises(ValueError, match="quantization"):
        CacheKey("hub:owner/model", "main", "int4")
