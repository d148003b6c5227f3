"""`python -m training train`: the corrected reproduction of the original fine-tune."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from training.config import TrainConfig, save_config
from training.data import (
    Encoded,
    bucketed_batches,
    encode,
    iterate_batches,
    label_matrix,
    load_jigsaw,
    padding_share,
    stratified_split,
)
from training.losses import make_weighted_bce, positive_weights

log = logging.getLogger(__name__)


def setup_devices(config: TrainConfig):
    """GPU memory growth, device report, mixed precision; returns the distribution strategy."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    log.info("TensorFlow %s sees %d GPU(s): %s", tf.__version__, len(gpus), [gpu.name for gpu in gpus] or "CPU only")
    if config.mixed_precision != "off":
        import tf_keras

        tf_keras.mixed_precision.set_global_policy(config.mixed_precision)
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


class CountingBatches:
    """Yields training batches and counts the examples and real tokens handed out."""

    def __init__(self, data: Encoded, config: TrainConfig, pad_id: int, start_epoch: int) -> None:
        self.data, self.config, self.pad_id = data, config, pad_id
        self.epoch = start_epoch
        self.examples = self.tokens = 0

    def __call__(self):
        seed = self.config.seed + self.epoch
        self.epoch += 1
        pad_to = None if self.config.bucket_chunk else self.config.max_length
        for features, labels in iterate_batches(
            self.data,
            self.config.batch_size,
            pad_id=self.pad_id,
            chunk=self.config.bucket_chunk,
            seed=seed,
            pad_to=pad_to,
        ):
            self.examples += len(labels)
            self.tokens += int(features["attention_mask"].sum())
            yield features, labels

    def counts(self) -> tuple[int, int]:
        return self.examples, self.tokens


def prepare_data(config: TrainConfig, csv_path: Path, tokenizer) -> tuple[Encoded, Encoded, dict]:
    dataset = load_jigsaw(csv_path, config.labels, config.text_column)
    labels = label_matrix(dataset, config.labels)
    started = time.perf_counter()
    encoded = Encoded(
        encode(dataset[config.text_column], tokenizer, config.max_length, config.truncation, config.head_share), labels
    )
    tokenise_s = time.perf_counter() - started
    train_idx, val_idx = stratified_split(labels, config.val_fraction, config.seed)
    if config.max_train_rows:
        train_idx = np.random.default_rng(config.seed).permutation(train_idx)[: config.max_train_rows]
    train, val = encoded.subset(train_idx), encoded.subset(val_idx)
    lengths = train.lengths
    rng = np.random.default_rng(config.seed)
    stats = {
        "rows": len(labels),
        "train_rows": len(train_idx),
        "validation_rows": len(val_idx),
        "tokenise_seconds": round(tokenise_s, 2),
        "mean_tokens": float(lengths.mean()),
        "share_truncated": float((lengths >= config.max_length).mean()),
        "positives_train": dict(zip(config.labels, train.labels.sum(axis=0).astype(int).tolist(), strict=True)),
        "positives_validation": dict(zip(config.labels, val.labels.sum(axis=0).astype(int).tolist(), strict=True)),
        "padding_share_pad_to_512": padding_share(
            np.minimum(lengths, 512), bucketed_batches(lengths, config.batch_size, 0, rng), pad_to=512
        ),
        "padding_share_dynamic_unbucketed": padding_share(
            lengths, bucketed_batches(lengths, config.batch_size, 0, rng)
        ),
        "padding_share_bucketed": padding_share(
            lengths, bucketed_batches(lengths, config.batch_size, config.bucket_chunk, rng)
        ),
    }
    return train, val, stats


def train(config: TrainConfig, csv_path: Path) -> dict:
    """Fine-tune, keeping the best epoch by validation mean ROC-AUC in ``output_dir/best``; resumable."""
    import tensorflow as tf
    import tf_keras as keras

    from training.callbacks import EpochCheckpoint, SaveBest, Throughput, ValidationAUC
    from training.model import build_model

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "train_config.yaml")
    strategy = setup_devices(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model, tokenizer = build_model(config)
    train_data, val_data, stats = prepare_data(config, csv_path, tokenizer)
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
            # the model outputs logits: p = 0.5 is logit 0
            metrics=[keras.metrics.Precision(thresholds=0.0), keras.metrics.Recall(thresholds=0.0)],
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
    batches = CountingBatches(train_data, config, pad_id, initial_epoch)
    signature = (
        {"input_ids": tf.TensorSpec((None, None), tf.int32), "attention_mask": tf.TensorSpec((None, None), tf.int32)},
        tf.TensorSpec((None, len(config.labels)), tf.float32),
    )
    # repeat(): the generator runs once per epoch (reshuffling); without it the second epoch would get no batches.
    train_ds = tf.data.Dataset.from_generator(batches, output_signature=signature).repeat().prefetch(tf.data.AUTOTUNE)

    def validation_batches():
        return iterate_batches(val_data, 64, pad_id=pad_id, chunk=1, seed=None)

    validation = ValidationAUC(validation_batches, config.labels)
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
