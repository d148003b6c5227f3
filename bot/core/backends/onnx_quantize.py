"""Make an fp32 ONNX transformer graph fast and deterministic: static (calibrated) int8 quantisation.

Why static: dynamic quantisation computes each activation's scale over the whole batch at run time, so a message's
scores depend on what else is in its batch (differences up to 0.24 measured). Static quantisation fixes every scale
at export time from calibration texts (training data only), so a row's result depends on that row alone.

``MatMul`` nodes are quantised (uint8 activations x int8 per-channel weights, the fast VNNI path of onnxruntime) and
the embedding ``Gather`` (int8 tables: 23 MB instead of 59 MB for MiniLM); the attention-mask ``Add``, ``Softmax``,
layer norms and GELU stay fp32, so padding keeps contributing exactly zero. Measured on the v2 MiniLM checkpoint (8,847
validation rows): ROC-AUC -0.0007 plain, -0.0009 prevalence-weighted against fp32, at 2.0x fp32's messages per
CPU-second; keeping the GELU-fed FFN projections in fp32 (``gelu_fed_matmuls`` as ``exclude``) loses nothing
(-0.00005 / +0.00004) but runs at 1.4x fp32.
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
BATCH_TOLERANCE = 1e-4  # |logit difference| alone vs in a batch above which an exported graph is refused
CALIBRATION_BATCH = 16
# Calibration when no training texts are given (a hub model converted by the bot's ONNX cache): generic chat of every
# length and tone. Training texts calibrate better: ``python -m training export --int8`` always uses them.
GENERIC_CALIBRATION = (
    "hello everyone, how was your weekend?",
    "thanks for the help with the code, it works now",
    "see you at the meeting tomorrow at 10",
    "lol that game last night was insane 😂😂",
    "can someone explain how the new update works? my settings are gone",
    "what a lovely picture of the mountains!",
    "I disagree with this decision and I think the mods should reconsider it.",
    "you are so stupid, nobody wants you here",
    "shut up you idiot",
    "this is the worst fucking server I have ever joined",
    "I will find you and make you regret this",
    "go back to where you came from",
    "people like you should not be allowed to vote",
    "damn that was close, gg everyone",
    "kill it in the exam tomorrow!! you got this",
    "check out https://example.com/article?id=42 for the details",
    "@user no way, that's a fake story and you know it",
    "BUY CHEAP FOLLOWERS NOW!!! limited offer, DM me",
    "ok",
    "???",
    "The article cites three sources, but two of them are blogs; could someone find a peer-reviewed one before we "
    "keep this paragraph? Otherwise I suggest we remove the claim until it is properly sourced.",
    "I've been a member here for years and I have never seen a thread this toxic. Please, everyone, take a breath. "
    "We can disagree about politics without calling each other names or threatening anyone.",
    "honestly you are a pathetic loser and everyone laughs at you behind your back, just leave and never come back",
    "Welcome to the server! Read the rules in #rules, pick your roles in #roles and say hi in #general.",
    "i hate mondays so much",
    "why are you like this",
    "stop spamming the channel or you will be banned",
    "that's a really good point, I hadn't thought about it that way",
    "you people are all the same, disgusting",
    "merci beaucoup, à demain !",
    "¿alguien sabe cuándo empieza el torneo?",
    "this movie was sick, the ending killed me",
)
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
    op_types: Sequence[str] = ("MatMul", "Gather"),
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
        op_types_to_quantize=list(op_types),
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


def check_batch_independence(path: Path, rows: Sequence[Sequence[int]], *, pad_id: int = 0) -> float:
    """``batch_dependence`` of the graph at ``path`` on up to 48 of ``rows``; raises ValueError above the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = batch_dependence(session, list(rows[:48]), pad_id=pad_id, trials=8)
    if worst > BATCH_TOLERANCE:
        raise ValueError(f"{path}: a text's logits change by {worst:.2e} with its batch mates (> {BATCH_TOLERANCE})")
    return worst


def gelu_fed_matmuls(path: Path) -> list[str]:
    """``MatMul`` nodes whose input is a GELU output (the FFN output projections of a BERT-like graph).

    GELU outputs have a long positive tail, so one static uint8 scale for them is coarse for the bulk of the values:
    these are the layers static int8 is most sensitive to. Found by structure (an ``Erf`` or ``Gelu`` at most four
    nodes up), not by name.
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    producers = {output: node for node in graph.node for output in node.output}

    def gelu_above(name: str, depth: int) -> bool:
        node = producers.get(name)
        if node is None or depth == 0:
            return False
        if node.op_type in ("Erf", "Gelu", "FastGelu", "BiasGelu"):
            return True
        return any(gelu_above(parent, depth - 1) for parent in node.input)

    return [node.name for node in graph.node if node.op_type == "MatMul" and gelu_above(node.input[0], 4)]


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
