"""Make an fp32 ONNX transformer graph fast and deterministic: static (calibrated) int8 quantisation.

Why static: dynamic quantisation computes each activation's scale over the whole batch at run time, so a message's
scores depend on what else is in its batch (differences up to 0.24 measured). Static quantisation fixes every scale
at export time from calibration texts (training data only), so a row's result depends on that row alone.

Only ``MatMul`` nodes are quantised (uint8 activations x int8 per-channel weights, the fast VNNI path of onnxruntime);
the attention-mask ``Add``, ``Softmax``, layer norms and GELU stay fp32, so padding keeps contributing exactly zero.
onnxruntime.quantization is imported inside the functions (export-time only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.backends.base import pad_rows

log = logging.getLogger(__name__)
CALIBRATION_BATCH = 16
DEFAULT_CALIBRATION_METHOD = "minmax"
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def calibration_reader(
    rows: Sequence[Sequence[int]], *, pad_id: int = 0, token_type_ids: bool = False, width: int | None = None
) -> Any:
    """An onnxruntime ``CalibrationDataReader`` over tokenised texts, in length-sorted padded batches.

    ``width`` pads every batch to one length (the histogram calibrators stack all batches into one array).
    """
    from onnxruntime.quantization import CalibrationDataReader

    order = np.argsort([len(row) for row in rows], kind="stable")
    starts = range(0, len(rows), CALIBRATION_BATCH)
    batches = [[rows[i] for i in order[start : start + CALIBRATION_BATCH]] for start in starts]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds: Iterator[dict[str, np.ndarray]] = iter(())
            self.rewind()

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

        def rewind(self) -> None:
            self._feeds = (feeds(batch) for batch in batches)

    def feeds(batch: list[Sequence[int]]) -> dict[str, np.ndarray]:
        ids, mask = pad_rows(batch, pad_id, width)
        out = {"input_ids": ids, "attention_mask": mask}
        if token_type_ids:
            out["token_type_ids"] = np.zeros_like(ids)
        return out

    return Reader()


def quantize_static_int8(
    fp32_path: Path,
    out_path: Path,
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int = 0,
    method: str = DEFAULT_CALIBRATION_METHOD,
    per_channel: bool = True,
    exclude: Sequence[str] = (),
) -> Path:
    """Write a statically quantised (QDQ) copy of ``fp32_path``, calibrated on the token ``rows`` (training texts).

    ``exclude`` names nodes kept in fp32 (sensitive layers). Returns ``out_path``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, not {method!r}")
    if not rows:
        raise ValueError("static quantisation needs calibration texts")
    inputs = {item.name for item in onnx.load(str(fp32_path), load_external_data=False).graph.input}
    extra: dict[str, Any] = {}
    if method == "percentile":
        extra["CalibPercentile"] = 99.999
    quantize_static(
        str(fp32_path),
        str(out_path),
        calibration_reader(
            rows,
            pad_id=pad_id,
            token_type_ids="token_type_ids" in inputs,
            width=None if method == "minmax" else max(len(row) for row in rows),
        ),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=per_channel,
        activation_type=QuantType.QUInt8,  # u8 x s8 is onnxruntime's fast integer path on x86
        weight_type=QuantType.QInt8,
        nodes_to_exclude=list(exclude),
        calibrate_method={
            "minmax": CalibrationMethod.MinMax,
            "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy,
        }[method],
        extra_options=extra,
    )
    return Path(out_path)


def matmul_nodes(path: Path) -> list[str]:
    """Names of the ``MatMul`` nodes of a graph, in graph order (to choose ``exclude`` from)."""
    import onnx

    return [node.name for node in onnx.load(str(path), load_external_data=False).graph.node if node.op_type == "MatMul"]


def batch_dependence(
    session: Any, rows: Sequence[Sequence[int]], *, pad_id: int = 0, trials: int = 40, seed: int = 0
) -> float:
    """Largest |logit difference| of a row scored alone and inside random batches (sizes 1-64, random mates).

    0 for a graph whose results depend on each row alone. ``session`` is an onnxruntime ``InferenceSession``.
    """
    names = {item.name for item in session.get_inputs()}

    def run(batch: Sequence[Sequence[int]]) -> np.ndarray:
        ids, mask = pad_rows(batch, pad_id)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return session.run(None, feeds)[0]

    alone = np.concatenate([run([row]) for row in rows])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
        size = int(rng.integers(1, min(64, len(rows)) + 1))
        chosen = rng.choice(len(rows), size=size, replace=False)
        worst = max(worst, float(np.abs(run([rows[i] for i in chosen]) - alone[chosen]).max()))
    return worst
