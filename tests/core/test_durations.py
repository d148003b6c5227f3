"""One duration format everywhere, and the one parser of what admins type."""

from __future__ import annotations

import pytest

from bot.core.durations import format_duration, parse_duration
from bot.core.errors import InvalidSettingError


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(45, "45 s"), (90, "90 s"), (600, "10 min"), (3600, "1 h"), (86400, "24 h"), (172800, "2 d"), (90000, "25 h")],
)
def test_a_duration_is_written_in_its_largest_whole_unit(seconds: int, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("10 min", 600), ("24h", 86400), ("2d", 172800), (" 3H ", 10800)],
)
def test_what_admins_type_is_read_as_seconds(typed: str, seconds: int) -> None:
    assert parse_duration(typed) == seconds


@pytest.mark.parametrize("typed", ["", "ten", "10 weeks", "-5m", "1.5h"])
def test_anything_else_is_a_one_line_error_with_examples(typed: str) -> None:
    with pytest.raises(InvalidSettingError, match="is not a duration"):
        parse_duration(typed)


def test_what_is_written_reads_back() -> None:
    for seconds in (45, 600, 3600, 86400, 172800):
        assert parse_duration(format_duration(seconds).replace(" ", "")) == seconds
