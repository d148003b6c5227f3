"""The ``onnx`` runtime: onnxruntime + a ``tokenizers`` fast tokenizer. Never imports TensorFlow or transformers.

Model folders follow ``bot.core.model_folder``: ``model.onnx`` (fp32) and/or ``model.int8.onnx`` (int8) beside
``tokenizer.json`` and ``config.json``. A ``runtime: onnx`` entry whose source is a TF folder or a hub repository is
converted once (this step imports TensorFlow) and kept in an ``OnnxCache``; later loads open the cached folder.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from bot.core.backends.base import (
    Prediction,
    TextEncoder,
    activate,
    pad_rows,
    resolve_labels,
    serving_max_length,
)
from bot.core.backends.onnx_cache import CacheKey, OnnxCache, folder_fingerprint
from bot.core.errors import ModelLoadError
from bot.core.model_folder import (
    CONFIG_FILE,
    FP32_FILE,
    INT8_FILE,
    TF_WEIGHTS_FILE,
    TOKENIZER_FILE,
    FolderConfig,
    parse_folder_config,
)
from bot.core.registry import HubSource, ModelSpec
from bot.core.types import Task

log = logging.getLogger(__name__)

# What a hub snapshot needs for conversion: config, tokenizer files and the TF weights.
HUB_PATTERNS = ("*.json", "*.txt", "*.model", TF_WEIGHTS_FILE)
# Padding slots one extra forward pass is worth when splitting a batch by length (see ``length_groups``).
DEFAULT_GROUP_OVERHEAD = 64
# Rows per forward pass at most, so a caller's huge batch cannot make one huge attention tensor.
MAX_PASS_ROWS = 64


def default_cache_root(cache_dir: str | Path | None) -> Path:
    """``<cache_dir>/onnx``; without a cache dir, under ``$XDG_CACHE_HOME`` (or ``~/.cache``)."""
    if cache_dir is None:
        cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "toxic-moderation-bot"
    return Path(cache_dir) / "onnx"


def session_options(threads: int | None = None, *, spinning: bool = False) -> ort.SessionOptions:
    """Options for a small CPU box: all cores on one operator at a time, full graph optimisation.

    Spinning threads is off by default: on 2 shared cores, busy-waiting workers steal time from the event loop and the
    tokenizer between batches for little latency gain.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return options


def length_groups(lengths: Sequence[int], overhead: int = DEFAULT_GROUP_OVERHEAD) -> list[np.ndarray]:
    """Split a batch into runs of similar length so one long text does not pad all the short ones.

    Minimises ``sum(rows * longest) + overhead * runs`` over contiguous runs of the length-sorted batch (exact, by
    dynamic programming). Returns index arrays into ``lengths``.
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    ordered = np.asarray(lengths, dtype=np.int64)[order]
    count = len(ordered)
    best = np.zeros(count + 1, dtype=np.int64)  # best[j]: cost of the first j sorted texts
    start = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        begins = np.arange(end)
        costs = best[:end] + overhead + (end - begins) * ordered[end - 1]
        start[end] = int(np.argmin(costs))
        best[end] = costs[start[end]]
    groups: list[np.ndarray] = []
    end = count
    while end > 0:
        groups.append(order[start[end] : end])
        end = int(start[end])
    return groups[::-1]


class OnnxBackend:
    """A loaded ONNX classifier. ``predict`` pads each length group to its own longest text."""

    def __init__(
        self,
        session: ort.InferenceSession,
        encoder: TextEncoder,
        *,
        task: Task,
        pad_id: int = 0,
        folder: FolderConfig | None = None,
        group_overhead: int = DEFAULT_GROUP_OVERHEAD,
        graph: Path | None = None,
    ) -> None:
        self.session = session
        self.graph = graph  # the file the session was opened from
        self.encoder = encoder
        self.task = task
        self.max_length = encoder.max_length
        self.pad_id = pad_id
        self.folder = folder or FolderConfig()
        self.group_overhead = group_overhead
        self.labels: tuple[str, ...] = ()
        self._inputs = {
            item.name: np.int32 if item.type == "tensor(int32)" else np.int64 for item in session.get_inputs()
        }
        missing = {"input_ids", "attention_mask"} - set(self._inputs)
        if missing:
            raise ValueError(f"the ONNX graph lacks the inputs {sorted(missing)} (has {sorted(self._inputs)})")
        self._output = session.get_outputs()[0].name

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits (n, outputs) and the truncation flags (n,) of ``texts``."""
        rows, truncated = self.encoder.encode(texts)
        return self.logits_of_rows(rows), truncated

    def logits_of_rows(self, rows: Sequence[Sequence[int]]) -> np.ndarray:
        """Raw logits of already tokenised rows, in order, run in groups of similar length."""
        lengths = [len(ids) for ids in rows]
        groups = length_groups(lengths, self.group_overhead) if len(rows) > 1 else [np.arange(len(rows))]
        logits: np.ndarray | None = None
        passes = [
            group[start : start + MAX_PASS_ROWS] for group in groups for start in range(0, len(group), MAX_PASS_ROWS)
        ]
        for chosen in passes:
            out = self._run([rows[index] for index in chosen])
            if logits is None:
                logits = np.empty((len(rows), out.shape[1]), dtype=np.float32)
            logits[chosen] = out
        assert logits is not None  # rows is never empty here
        return logits

    def predict(self, texts: Sequence[str]) -> Prediction:
        if not texts:
            return Prediction(np.zeros((0, len(self.labels)), np.float32), np.zeros(0, bool))
        logits, truncated = self.logits(texts)
        return Prediction(probabilities=activate(logits, self.task), truncated=truncated)

    def _run(self, rows: list[Sequence[int]]) -> np.ndarray:
        ids, mask = pad_rows(rows, self.pad_id)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        feeds = {name: value.astype(self._inputs[name], copy=False) for name, value in feeds.items()}
        (out,) = self.session.run([self._output], feeds)
        return np.asarray(out, dtype=np.float32)


def find_graph(folder: Path, quantization: str | None = None) -> Path | None:
    """The graph to serve from ``folder``: the asked quantisation, else int8 when present, else fp32."""
    names = {"int8": (INT8_FILE,), "fp32": (FP32_FILE,), None: (INT8_FILE, FP32_FILE)}[quantization]
    return next((folder / name for name in names if (folder / name).is_file()), None)


def open_folder(spec: ModelSpec, folder: Path, graph: Path, *, threads: int | None = None) -> OnnxBackend:
    """Open an ONNX model folder for ``spec``: session, tokenizer, labels (checked on a warm-up batch)."""
    for name in (TOKENIZER_FILE, CONFIG_FILE):
        if not (folder / name).is_file():
            raise ModelLoadError(spec.name, f"{folder} has {graph.name} but no {name}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except Exception as error:  # tokenizers raises plain Exception on bad files
        raise ModelLoadError(spec.name, f"cannot read the tokenizer or config in {folder}: {error}") from error
    try:
        moderation = parse_folder_config(config, str(folder / CONFIG_FILE))
    except ValueError as error:
        raise ModelLoadError(spec.name, str(error)) from error
    session = ort.InferenceSession(
        str(graph), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
    )
    max_length = serving_max_length(spec, moderation, config.get("max_position_embeddings"))
    backend = OnnxBackend(
        session,
        TextEncoder(tokenizer, max_length=max_length, folder=moderation),
        task=spec.task,
        pad_id=config.get("pad_token_id") or 0,
        folder=moderation,
        graph=graph,
    )
    warm, _ = backend.logits(["warm-up"])  # also allocates the arena before the first real message
    backend.labels = resolve_labels(spec, config.get("id2label"), warm.shape[1], moderation)
    log.info("loaded %s from %s (%s)", spec.name, graph, "int8" if graph.name == INT8_FILE else "fp32")
    return backend


def load(
    spec: ModelSpec,
    *,
    cache_dir: str | Path | None = None,
    cache: OnnxCache | None = None,
    threads: int | None = None,
    quantization: str | None = None,
) -> OnnxBackend:
    """Load ``spec`` (runtime ``onnx``): an ONNX folder directly, a TF folder or hub model through the cache.

    ``quantization`` ("fp32" | "int8") picks the graph; by default a folder's int8 graph when it has one, and fp32
    for conversions (int8 changes scores: opt in after measuring).
    """
    quantization = quantization or getattr(spec, "quantization", None)  # a models.yaml field, if the registry has it
    if quantization not in (None, "fp32", "int8"):
        raise ModelLoadError(spec.name, f"quantization must be fp32 or int8, not {quantization!r}")
    source = spec.source
    tf_dir: Callable[[], Path]
    if isinstance(source, HubSource):
        key = CacheKey(f"hub:{source.hub}", source.revision, quantization or "fp32")
        tf_dir = functools.partial(_download, spec, source, cache_dir)  # called only on a cache miss
    else:
        folder = source.path
        if not folder.is_dir():
            raise ModelLoadError(spec.name, f"no model folder at {folder}")
        graph = find_graph(folder, quantization)
        if graph is not None:
            try:
                return open_folder(spec, folder, graph, threads=threads)
            except ModelLoadError:
                raise
            except Exception as error:  # onnxruntime's errors are untyped
                raise ModelLoadError(spec.name, f"{graph} does not load: {error}") from error
        if not (folder / TF_WEIGHTS_FILE).is_file():
            raise ModelLoadError(spec.name, f"{folder} has neither {FP32_FILE}, {INT8_FILE} nor {TF_WEIGHTS_FILE}")
        key = CacheKey(f"path:{folder}", folder_fingerprint(folder), quantization or "fp32")
        tf_dir = functools.partial(Path, folder)

    cache = cache or OnnxCache(default_cache_root(cache_dir))
    for attempt in (1, 2):
        entry = cache.get_or_build(key, tf_dir)
        try:
            return open_folder(spec, entry, find_graph(entry, key.quantization) or entry / FP32_FILE, threads=threads)
        except ModelLoadError:
            raise
        except Exception as error:
            if attempt == 2:
                raise ModelLoadError(spec.name, f"the converted model in {entry} does not load: {error}") from error
            log.warning("cached conversion %s does not load (%s): converting again", entry, error)
            cache.evict(key)
    raise AssertionError("unreachable")


def _download(spec: ModelSpec, source: HubSource, cache_dir: str | Path | None) -> Path:
    """Fetch the TF snapshot into the Hugging Face cache (``cache_dir`` like the TF backend; network on first use)."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            source.hub, revision=source.revision, cache_dir=cache_dir, allow_patterns=list(HUB_PATTERNS)
        )
        return Path(folder)
    except Exception as error:  # offline, unknown repo, revision gone ...
        raise ModelLoadError(
            spec.name, f"cannot fetch {source.hub}@{source.revision} to convert it to ONNX: {error}"
        ) from error
