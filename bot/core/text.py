"""Text from the platforms made storable: what cannot be encoded as UTF-8 is replaced, once, at the boundary."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
# lone surrogates (JSON lets a client send "\ud800") cannot be encoded as UTF-8; NUL cuts strings in C libraries
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def clean_text(text: str) -> str:
    """``text`` with every unencodable code point (lone surrogates, NUL) replaced by U+FFFD; else unchanged."""
    return _UNSTORABLE.sub(REPLACEMENT, text)
