"""One way to write a duration, everywhere: "45 s", "10 min", "24 h", "2 d"; and the one parser of what admins type."""

from __future__ import annotations

import re

from bot.core.errors import InvalidSettingError

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$")


def format_duration(seconds: int) -> str:
    """The largest whole unit: 600 -> "10 min", 86400 -> "24 h" (up to two days), 172800 -> "2 d", 90 -> "90 s"."""
    seconds = int(seconds)
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def parse_duration(text: str) -> int:
    """ "90", "90s", "10m", "10 min", "24h", "2d" -> seconds (a bare number is seconds)."""
    match = _DURATION.match(text.lower())
    unit = match.group(2) if match else ""
    if match is None or unit not in ("", *_UNITS):
        raise InvalidSettingError(f"'{text}' is not a duration (examples: 90s, 10min, 24h, 2d)")
    return int(match.group(1)) * _UNITS.get(unit, 1)
