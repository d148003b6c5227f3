"""`python -m training train`: the corrected reproduction of the original fine-tune."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.config import TrainConfig, save_config
from training.data import DataError, Encoded, bucketed_batches, encode, iterate_batches, padding_share
from training.losses import UNKNOWN, make_weighted_bce, positive_weights
from training.sources import load_corpus, source_summary, source_weights, split_corpus

log = logging.getLogger(__name__)


def cpu_has_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (else TensorFlow emulates it, slower than float32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(setting: str, gpu: bool) -> str:
    if setting != "auto":
        return setting
    if gpu:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "off"


def setup_devices(config: TrainConfig):
    """GPU memory growth, device report, mixed precision; returns the distribution strategy."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    log.info("TensorFlow %s sees %d GPU(s): %s", tf.__version__, len(gpus), [gpu.name for gpu in gpus] or "CPU only")
    policy = resolve_precision(config.mixed_precision, bool(gpus))
    if policy != "off":
        import tf_keras

        tf_keras.mixed_precision.set_global_policy(policy)
    log.info("mixed precision: %s", policy)
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


class CountingBatches:
    """Yields training batches ``(features, labels, row weights)`` and counts the examples and real tokens."""

    def __init__(self, data: Encoded, weights: np.ndarray, config: TrainConfig, pad_id: int, start_epoch: int) -> None:
        self.data, self.weights, self.config, self.pad_id = data, weights, config, pad_id
        self.epoch = start_epoch
        self.examples = self.tokens = 0

    def __call__(self):
        seed = self.config.seed + self.epoch
        self.epoch += 1
        pad_to = None if self.config.bucket_chunk else self.config.max_length
        for features, labels, rows in iterate_batches(
            self.data,
            self.config.batch_size,
            pad_id=self.pad_id,
            chunk=self.config.bucket_chunk,
            seed=seed,
            pad_to=pad_to,
            with_rows=True,
        ):
            self.examples += len(labels)
            self.tokens += int(features["attention_mask"].sum())
            yield features, np.nan_to_num(labels, nan=UNKNOWN), self.weights[rows]

    def counts(self) -> tuple[int, int]:
        return self.examples, self.tokens


def prepare_data(
    config: TrainConfig, data_paths: Sequence[Path], tokenizer
) -> tuple[Encoded, Encoded, np.ndarray, np.ndarray, np.ndarray, dict]:
    """Tokenise every source, split each one (seeded), weight the rows; returns train, validation and row facts."""
    corpus = load_corpus(data_paths, config.labels, config.text_column)
    started = time.perf_counter()
    encoded = Encoded(
        encode(corpus.texts, tokenizer, config.max_length, config.truncation, config.head_share), corpus.labels
    )
    tokenise_s = time.perf_counter() - started
    train_idx, val_idx = split_corpus(corpus, config.val_fraction, config.seed)
    if config.max_train_rows:
        train_idx = np.sort(np.random.default_rng(config.seed).permutation(train_idx)[: config.max_train_rows])
    train, val = encoded.subset(train_idx), encoded.subset(val_idx)
    train_sources, val_sources = corpus.sources[train_idx], corpus.sources[val_idx]
    row_weights = source_weights(train_sources, config.source_weighting, config.source_temperature)
    lengths = train.lengths
    rng = np.random.default_rng(config.seed)
    weight_of = {name: float(row_weights[train_sources == name][0]) for name in sorted(set(train_sources.tolist()))}
    stats = {
        "rows": len(corpus.texts),
        "train_rows": len(train_idx),
        "validation_rows": len(val_idx),
        "sources": source_summary(corpus, config.labels),
        "source_row_weight": {name: round(weight, 3) for name, weight in weight_of.items()},
        "tokenise_seconds": round(tokenise_s, 2),
        "mean_tokens": float(lengths.mean()),
        "share_truncated": float((lengths >= config.max_length).mean()),
        "positives_train": dict(zip(config.labels, np.nansum(train.labels, axis=0).astype(int).tolist(), strict=True)),
        "positives_validation": dict(
            zip(config.labels, np.nansum(val.labels, axis=0).astype(int).tolist(), strict=True)
        ),
        "padding_share_pad_to_512": padding_share(
            np.minimum(lengths, 512), bucketed_batches(lengths, config.batch_size, 0, rng), pad_to=512
        ),
        "padding_share_bucketed": padding_share(
            lengths, bucketed_batches(lengths, config.batch_size, config.bucket_chunk, rng)
        ),
    }
    return train, val, train_sources, val_sources, row_weights, stats


def freeze_embeddings(model) -> None:
    """Keep the word/position embeddings fixed: a third of MiniLM's weights, with the most to lose on small data."""
    encoder = getattr(model, model.base_model_prefix)
    encoder.embeddings.trainable = False


def train(config: TrainConfig, data_paths: Sequence[Path], resume: bool = False) -> dict:
    """Fine-tune, keeping the best epoch by validation mean ROC-AUC in ``output_dir/best``; ``resume`` continues."""
    import tensorflow as tf
    import tf_keras as keras

    from training.callbacks import EpochCheckpoint, SaveBest, Throughput, ValidationAUC
    from training.model import build_model

    out = Path(config.output_dir)
    has_checkpoint = (out / "checkpoints" / "checkpoint").exists()
    if has_checkpoint and not resume:
        raise DataError(f"{out}: holds a run's checkpoints; pass --resume to continue it, or another output_dir")
    if resume and not has_checkpoint:
        log.warning("--resume: no checkpoint in %s yet, starting from the base model", out)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "train_config.yaml")
    strategy = setup_devices(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model, tokenizer = build_model(config)
        if config.freeze_embeddings:
            freeze_embeddings(model)
    train_data, val_data, _, val_sources, row_weights, stats = prepare_data(config, data_paths, tokenizer)
    weights = positive_weights(train_data.labels, config.weighting)
    stats["positive_weights"] = dict(zip(config.labels, weights.round(3).tolist(), strict=True))
    log.info("data: %s", json.dumps(stats))
    (out / "data_stats.json").write_text(json.dumps(stats, indent=2))

    steps_per_epoch = -(-len(train_data.labels) // config.batch_size)
    with strategy.scope():
        if config.lr_schedule == "linear":
            from transformers import create_optimizer

            optimizer, _ = create_optimizer(
                init_lr=config.learning_rate,
                num_train_steps=steps_per_epoch * config.epochs,
                num_warmup_steps=config.warmup_steps,
                weight_decay_rate=config.weight_decay,
            )
        else:
            optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
        model.compile(
            optimizer=optimizer,
            loss=make_weighted_bce(weights),
            jit_compile=config.xla,
        )
    epoch_variable = tf.Variable(0, dtype=tf.int64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch_variable)
    manager = tf.train.CheckpointManager(checkpoint, out / "checkpoints", max_to_keep=2)
    if manager.latest_checkpoint:
        model(model.dummy_inputs, training=False)
        checkpoint.restore(manager.latest_checkpoint)
    # The optimizer's step count, not a separate counter, says how much training the checkpoint holds.
    initial_epoch = int(optimizer.iterations.numpy()) // steps_per_epoch
    if manager.latest_checkpoint:
        log.info("resuming from %s after epoch %d", manager.latest_checkpoint, initial_epoch)

    pad_id = tokenizer.pad_token_id
    batches = CountingBatches(train_data, row_weights, config, pad_id, initial_epoch)
    signature = (
        {"input_ids": tf.TensorSpec((None, None), tf.int32), "attention_mask": tf.TensorSpec((None, None), tf.int32)},
        tf.TensorSpec((None, len(config.labels)), tf.float32),
        tf.TensorSpec((None,), tf.float32),
    )
    # repeat(): the generator runs once per epoch (reshuffling); without it the second epoch would get no batches.
    train_ds = tf.data.Dataset.from_generator(batches, output_signature=signature).repeat().prefetch(tf.data.AUTOTUNE)

    def validation_batches():
        return iterate_batches(val_data, 64, pad_id=pad_id, chunk=1, seed=None, with_rows=True)

    validation = ValidationAUC(validation_batches, config.labels, val_sources, out / "validation_history.jsonl")
    throughput = Throughput(batches.counts)
    callbacks = [
        validation,  # first: the callbacks below monitor what it adds to the logs
        throughput,
        SaveBest(out / "best", tokenizer, validation),
        EpochCheckpoint(manager, epoch_variable),
        keras.callbacks.EarlyStopping(monitor="val_mean_auc", mode="max", patience=config.early_stopping_patience),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
    ]
    if config.lr_schedule == "constant":  # a schedule owns the learning rate otherwise
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_mean_auc",
                mode="max",
                factor=config.reduce_lr_factor,
                patience=config.reduce_lr_patience,
                min_lr=config.min_lr,
            )
        )
    if config.push_to_hub:
        from transformers import PushToHubCallback

        callbacks.append(
            PushToHubCallback(output_dir=str(out / "hub"), tokenizer=tokenizer, hub_model_id=config.push_to_hub)
        )

    started = time.perf_counter()
    if initial_epoch < config.epochs:
        model.fit(
            train_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=2,
        )
    keras.mixed_precision.set_global_policy("float32")  # models built later in this process (export) are float32
    best_metrics = out / "best" / "metrics.json"
    summary = {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "epochs_run": int(optimizer.iterations.numpy()) // steps_per_epoch - initial_epoch,
        "best": json.loads(best_metrics.read_text()) if best_metrics.exists() else {},
        **throughput.summary,
        **{k: stats[k] for k in stats if k.startswith("padding_share")},
    }
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2))
    log.info("done: %s", json.dumps(summary))
    return summary
