"""Tiny TensorFlow models built on the fly, for tests and benchmarks (nothing is downloaded).

``build_tiny_models(folder)`` writes two transformers TF models (BERT, 2 layers, hidden 32) with a WordPiece tokenizer
trained with ``tokenizers`` on generated chat lines, and a models.yaml listing them:

- ``tiny-toxic``: multi_label over the six toxicity labels (the default); briefly trained so that insults and threats
  score clearly higher than friendly lines;
- ``tiny-sentiment``: single_label NEGATIVE / POSITIVE, random weights.

From a shell (for subprocess tests and benchmarks): ``python -m tests.tiny_models FOLDER`` prints the models.yaml path.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported anywhere

import random
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.core.labels import TOXICITY_LABELS

SENTIMENT_LABELS = ("NEGATIVE", "POSITIVE")
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_SUBJECTS = ["you", "he", "she", "they", "your friend", "this guy", "my brother", "the admin", "everyone here"]
_FRIENDLY = [
    "hello there, how was your weekend",
    "had a wonderful weekend at the park",
    "enjoyed the beautiful weather today",
    "thanks for the help with the code",
    "see you at the meeting tomorrow",
    "what a lovely picture of the mountains",
    "good morning everyone, coffee is ready",
    "the game last night was great fun",
]
_TOXIC = {  # phrase -> labels it carries (toxic is implied)
    "are so stupid": ("insult",),
    "are an idiot": ("insult",),
    "are a stupid idiot": ("insult", "severe_toxic"),
    "will find and kill you": ("threat",),
    "should die, i will kill them": ("threat", "severe_toxic"),
    "give a damn fuck about it": ("obscene",),
    "hate those people, they are vermin": ("identity_hate",),
}


@dataclass(frozen=True)
class TinyModels:
    """Paths of the built models and of the models.yaml that lists them."""

    folder: Path
    multi_label_dir: Path
    single_label_dir: Path
    models_yaml: Path


def generate_corpus(count: int = 400, seed: int = 7) -> list[tuple[str, tuple[str, ...]]]:
    """Generated chat lines with their toxicity labels (empty for friendly lines)."""
    rng = random.Random(seed)
    rows: list[tuple[str, tuple[str, ...]]] = []
    toxic_items = list(_TOXIC.items())
    for index in range(count):
        if index % 2:
            rows.append((f"{rng.choice(_FRIENDLY)} {rng.choice(['!', '.', ':)', ''])}".strip(), ()))
        else:
            phrase, labels = rng.choice(toxic_items)
            rows.append((f"{rng.choice(_SUBJECTS)} {phrase}", ("toxic", *labels)))
    return rows


def _train_tokenizer(corpus: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )


def _build_model(tokenizer, labels: tuple[str, ...], problem_type: str, seed: int):
    import tensorflow as tf
    from transformers import BertConfig, TFBertForSequenceClassification

    tf.keras.utils.set_random_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
        problem_type=problem_type,
    )
    model = TFBertForSequenceClassification(config)
    model(model.dummy_inputs, training=False)
    return model


def _fit_toxicity(model, tokenizer, rows: list[tuple[str, tuple[str, ...]]]) -> None:
    """A few seconds of training, so the tiny toxic model tells insults from greetings."""
    import numpy as np
    import tensorflow as tf

    texts = [text for text, _ in rows]
    targets = np.array([[label in labels for label in TOXICITY_LABELS] for _, labels in rows], dtype=np.float32)
    encoded = tokenizer(texts, padding=True, return_tensors="np")
    inputs = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    model.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss=tf.keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(inputs, targets, batch_size=32, epochs=6, shuffle=True, verbose=0)


def build_tiny_models(folder: str | Path, *, train: bool = True) -> TinyModels:
    """Build both tiny models and a models.yaml under ``folder`` (created if needed) and return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = generate_corpus()
    tokenizer = _train_tokenizer([text for text, _ in rows])

    multi_dir, single_dir = folder / "tiny-toxic", folder / "tiny-sentiment"
    toxic = _build_model(tokenizer, TOXICITY_LABELS, "multi_label_classification", seed=1)
    if train:
        _fit_toxicity(toxic, tokenizer, rows)
    toxic.save_pretrained(multi_dir)
    tokenizer.save_pretrained(multi_dir)
    sentiment = _build_model(tokenizer, SENTIMENT_LABELS, "single_label_classification", seed=2)
    sentiment.save_pretrained(single_dir)
    tokenizer.save_pretrained(single_dir)

    models_yaml = folder / "models.yaml"
    models_yaml.write_text(
        "default: tiny-toxic\n"
        "models:\n"
        "  tiny-toxic:\n"
        "    display_name: Tiny toxicity (test)\n"
        "    task: multi_label\n"
        f"    source: {{path: {multi_dir.name}}}\n"
        "    runtime: tensorflow\n"
        "    max_length: 64\n"
        "    thresholds: {toxic: 0.5, insult: 0.5, threat: 0.5}\n"
        "  tiny-sentiment:\n"
        "    display_name: Tiny sentiment (test)\n"
        "    task: single_label\n"
        f"    source: {{path: {single_dir.name}}}\n"
        "    runtime: tensorflow\n"
        "    max_length: 64\n",
        encoding="utf-8",
    )
    return TinyModels(folder=folder, multi_label_dir=multi_dir, single_label_dir=single_dir, models_yaml=models_yaml)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.tiny_models FOLDER")
    print(build_tiny_models(sys.argv[1]).models_yaml)
