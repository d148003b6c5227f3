"""The six Jigsaw toxicity labels, in the order the original models use."""

TOXICITY_LABELS: tuple[str, ...] = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
