"""Which language a chat message is in, when that is clear enough to matter: the language gate of the policy.

A model trained on English text cannot read Spanish: its scores on Spanish are noise, so the policy never lets it act
on a message that is confidently in a language the model was not trained on (``languages`` in models.yaml). The
identifier is py3langid (langid.py's naive Bayes over byte n-grams, 142 languages, its model inside the package: no
download, ~4.5 MB). Short or mixed messages default to the model's language: ``foreign_language`` answers None unless
the message has at least ``MIN_LETTERS`` letters once links, mentions, hashtags and digits are gone, and the
identifier gives another language a probability of at least ``MIN_CONFIDENCE``. Both numbers were chosen with
``bench/language.py`` on English training texts and hand-written chat messages (see bench/README.md), never on an
evaluation set.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier as _Model

MIN_LETTERS = 15
MIN_CONFIDENCE = 0.8

# Not language: links, Discord/Telegram mentions and custom emoji, hashtags, digits.
_NOISE = re.compile(r"https?://\S+|www\.\S+|<a?:\w+:\d+>|<[@#&!]*\d+>|[@#]\w+|\d+")
_LETTER = re.compile(r"[^\W\d_]")
_NO_LANGUAGE = "zxx"  # py3langid's label for text without linguistic content
# Languages whose words are another's: an English model reads English-lexified Nigerian Pidgin, and py3langid also
# gives "pcm" to some informal English; the gate must not exempt such messages from an English model.
READ_AS: dict[str, str] = {"pcm": "en"}


def clean(text: str) -> str:
    """What the identifier reads: no links, mentions, hashtags or digits; lower case."""
    # lower case: shouted English ("SHUT UP YOU ...") otherwise looks less English to byte n-grams
    return " ".join(_NOISE.sub(" ", text).split()).lower()


def count_letters(text: str) -> int:
    return len(_LETTER.findall(text))


class LanguageIdentifier:
    """``foreign_language(text, expected)``: thread-safe; the model loads on first use (about 0.5 s) or on ``load``."""

    def __init__(self, *, min_letters: int = MIN_LETTERS, min_confidence: float = MIN_CONFIDENCE) -> None:
        if min_letters < 1 or not 0.5 <= min_confidence <= 1.0:
            raise ValueError("min_letters must be >= 1 and min_confidence within [0.5, 1]")
        self.min_letters = min_letters
        self.min_confidence = min_confidence
        self._model: _Model | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the model now (a service calls this at start so the first message does not wait)."""
        self._get()

    def _get(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    from py3langid.langid import MODEL_FILE
                    from py3langid.langid import LanguageIdentifier as Model

                    self._model = Model.from_model_file(MODEL_FILE, norm_probs=True)
                model = self._model
        return model

    def identify(self, text: str) -> tuple[str, float] | None:
        """The most likely language and its probability, or None when the text has too few letters to tell."""
        cleaned = clean(text)
        if count_letters(cleaned) < self.min_letters:
            return None
        language, probability = self._get().classify(cleaned)
        return str(language), float(probability)

    def foreign_language(self, text: str, expected: Collection[str]) -> str | None:
        """The code of another language when ``text`` is confidently not in one of ``expected``, else None.

        None also when the text is too short, mixed (no language reaches ``min_confidence``) or not language at all.
        """
        found = self.identify(text)
        if found is None:
            return None
        language, probability = found
        readable = language in expected or READ_AS.get(language) in expected
        if readable or language == _NO_LANGUAGE or probability < self.min_confidence:
            return None
        return language


@lru_cache(maxsize=256)
def language_name(code: str) -> str:
    """The English name of an ISO 639-1 or 639-3 code ("es": "Spanish"); an unknown code is returned as it is."""
    import pycountry

    key = "alpha_2" if len(code) == 2 else "alpha_3"
    found = pycountry.languages.get(**{key: code.lower()})
    return found.name if found is not None else code
