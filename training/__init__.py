"""TensorFlow fine-tuning of the toxicity models the bot serves (`python -m training train|evaluate|export`)."""

import os

# Keras 3 objects break transformers' TF `compile()`: this must be set before TensorFlow is first imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
