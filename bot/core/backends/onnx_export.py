"""Turn a TensorFlow ``save_pretrained`` folder into an ONNX model folder (fp32 via tf2onnx, int8 via ORT).

The ONNX model folder (``bot.core.model_folder`` owns the names; what the ``onnx`` backend loads):

- ``model.onnx``: fp32 graph; ``model.int8.onnx``: int8 graph (static quantisation, ``onnx_quantize``). Either or both.
- ``tokenizer.json`` (a ``tokenizers`` fast tokenizer) and ``config.json`` (``id2label``, ``pad_token_id``).
- Graph inputs ``input_ids`` and ``attention_mask`` (int64, ``(batch, sequence)``), output ``logits``
  (float32, ``(batch, labels)``); sigmoid / softmax are applied by the backend, not in the graph.

TensorFlow, transformers, tf2onnx and onnxruntime.quantization are imported inside the functions that need them, so
importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from bot.core.model_folder import CONFIG_FILE, FP32_FILE, INT8_FILE, TOKENIZER_FILE

log = logging.getLogger(__name__)
# copied beside the graph when present: the backend needs only the first two
RUNTIME_FILES = (TOKENIZER_FILE, CONFIG_FILE, "tokenizer_config.json", "special_tokens_map.json")
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 17


class OnnxExportError(RuntimeError):
    """Conversion or quantisation failed, or the written graph does not load in onnxruntime."""


def export_onnx(model_dir: Path, out_path: Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Convert the TF sequence classifier in ``model_dir`` to an fp32 ONNX graph at ``out_path``; return ``out_path``.

    The file appears atomically (written beside, then renamed) and is checked to load in onnxruntime.
    Imports TensorFlow.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf
    import tf2onnx
    from transformers import TFAutoModelForSequenceClassification

    with _erf_gelu():  # TF 2.21's exact GELU uses Erfc, which tf2onnx writes but onnxruntime rejects
        try:
            model = TFAutoModelForSequenceClassification.from_pretrained(str(model_dir))
        except (OSError, ValueError) as error:
            raise OnnxExportError(f"{model_dir}: not a TensorFlow sequence classifier: {error}") from error

    signature = [tf.TensorSpec((None, None), tf.int64, name=name) for name in INPUT_NAMES]

    @tf.function(input_signature=signature)
    def logits(input_ids, attention_mask):
        return {OUTPUT_NAME: model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits}

    with _atomic_path(out_path) as tmp:
        tf2onnx.convert.from_function(logits, input_signature=signature, opset=opset, output_path=str(tmp))
        _check_loads(tmp)
    return out_path


def quantize_int8(
    fp32_path: Path, out_path: Path, folder: Path, texts: Sequence[str] | None = None, *, max_length: int = 128
) -> Path:
    """Write a statically quantised copy of ``fp32_path`` to ``out_path``, calibrated on ``texts``; return it.

    ``folder`` holds the tokenizer.json and config.json the texts are tokenised with (as the backend will). Without
    ``texts``: generic chat lines (a converted hub model; training texts calibrate better). The written graph is checked
    to give a text the same scores alone and in a batch. No TensorFlow. Accuracy: measure it (``verify``, evaluate).
    """
    from tokenizers import Tokenizer

    from bot.core.backends.base import TextEncoder
    from bot.core.backends.onnx_quantize import GENERIC_CALIBRATION, check_batch_independence, quantize_static_int8
    from bot.core.model_folder import read_folder_config

    fp32_path, out_path, folder = Path(fp32_path), Path(out_path), Path(folder)
    if not fp32_path.is_file():
        raise OnnxExportError(f"{fp32_path}: no such ONNX file")
    if texts is None:
        log.warning(
            "calibrating int8 of %s on generic chat lines: pass training texts for the best accuracy", fp32_path
        )
        texts = GENERIC_CALIBRATION
    config = read_folder_config(folder)
    encoder = TextEncoder(
        Tokenizer.from_file(str(folder / TOKENIZER_FILE)), max_length=config.max_length or max_length, folder=config
    )
    rows, _ = encoder.encode([text for text in texts if text.strip()])
    pad_id = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("pad_token_id") or 0
    with _atomic_path(out_path) as tmp:
        quantize_static_int8(fp32_path, tmp, rows, pad_id=pad_id)
        _check_loads(tmp)
        try:
            check_batch_independence(tmp, rows, pad_id=pad_id)
        except ValueError as error:
            raise OnnxExportError(str(error)) from error
    return out_path


def write_runtime_files(model_dir: Path, out_dir: Path) -> None:
    """Copy the tokenizer and config the backend needs; build ``tokenizer.json`` from a slow tokenizer if missing."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (model_dir / CONFIG_FILE).is_file():
        raise OnnxExportError(f"{model_dir}: no {CONFIG_FILE}")
    for name in RUNTIME_FILES:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out_dir / name)
    if not (out_dir / TOKENIZER_FILE).is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        if not tokenizer.is_fast:
            raise OnnxExportError(f"{model_dir}: the tokenizer has no fast version to write {TOKENIZER_FILE}")
        tokenizer.backend_tokenizer.save(str(out_dir / TOKENIZER_FILE))


def export_folder(
    model_dir: Path,
    out_dir: Path,
    *,
    fp32: bool = True,
    int8: bool = True,
    opset: int = DEFAULT_OPSET,
    calibration_texts: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Write a complete ONNX model folder from a TF folder; return ``{"fp32": path, "int8": path}`` for what was kept.

    With ``fp32=False`` the fp32 graph is only an intermediate step and is not kept. int8 is static, calibrated on
    ``calibration_texts`` (training texts; see ``quantize_int8``).
    """
    if not (fp32 or int8):
        raise ValueError("export_folder needs fp32, int8 or both")
    out_dir = Path(out_dir)
    write_runtime_files(model_dir, out_dir)
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(dir=out_dir) as scratch:
        fp32_path = out_dir / FP32_FILE if fp32 else Path(scratch) / FP32_FILE
        export_onnx(model_dir, fp32_path, opset=opset)
        if fp32:
            written["fp32"] = fp32_path
        if int8:
            written["int8"] = quantize_int8(fp32_path, out_dir / INT8_FILE, out_dir, calibration_texts)
    return written


def verify(tf_dir: Path, onnx_path: Path, texts: Sequence[str], *, max_length: int = 128) -> float:
    """Largest absolute logit difference between the TF model and the ONNX graph on ``texts``. Imports TensorFlow."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import onnxruntime as ort
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    if not texts:
        raise ValueError("verify needs at least one text")
    tokenizer = AutoTokenizer.from_pretrained(str(tf_dir), use_fast=True)
    model = TFAutoModelForSequenceClassification.from_pretrained(str(tf_dir))
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="np")
    feeds = {name: batch[name].astype(np.int64) for name in INPUT_NAMES}
    expected = model(**feeds, training=False).logits.numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], feeds)
    return float(np.max(np.abs(expected - actual)))


@contextlib.contextmanager
def _erf_gelu() -> Iterator[None]:
    """Build models with an erf-based exact GELU (same function, ops tf2onnx can convert); restore afterwards."""
    import tensorflow as tf
    from transformers import activations_tf

    def gelu(x):
        x = tf.convert_to_tensor(x)
        return 0.5 * x * (1.0 + tf.math.erf(x / tf.cast(np.sqrt(2.0), x.dtype)))

    original = activations_tf.ACT2FN["gelu"]
    activations_tf.ACT2FN["gelu"] = gelu
    try:
        yield
    finally:
        activations_tf.ACT2FN["gelu"] = original


@contextlib.contextmanager
def _atomic_path(out_path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out_path``; rename it into place only if the block succeeds."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_loads(path: Path) -> None:
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise OnnxExportError(f"the ONNX graph written for {path.name} does not load: {error}") from error
