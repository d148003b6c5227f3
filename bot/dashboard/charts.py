"""The dashboard's charts as SVG, drawn server-side with matplotlib (its object API: no global state, thread-safe).

``actions``: events per day by action (stacked bars); ``labels``: events per day by label over its threshold;
``false_alarms``: the share of reviewed events admins marked "not toxic", per day.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from typing import Any

from bot.core.records import DailyCounts

DAY_SECONDS = 86400  # days are UTC days, as the storage counts them
NAMES = ("actions", "labels", "false_alarms")
TITLES = {
    "actions": "Events per day by action",
    "labels": "Events per day by label",
    "false_alarms": "Reviews marked not toxic (share of reviews)",
}
ACTION_COLOURS = {"flag": "#d4a017", "warn": "#e67e22", "delete": "#c0392b", "timeout": "#7b241c"}


def render(name: str, counts: DailyCounts, *, now: float | None = None, days: int = 30) -> str:
    """The chart ``name`` of the last ``days`` days as an SVG document."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    last = int((now if now is not None else time.time()) // DAY_SECONDS)
    day_numbers = list(range(last - days + 1, last + 1))
    dates = [time.strftime("%m-%d", time.gmtime(day * DAY_SECONDS)) for day in day_numbers]
    xs = list(range(len(day_numbers)))
    figure = Figure(figsize=(8, 2.8), dpi=96)
    axes = figure.subplots()
    if name == "actions":
        _stacked(axes, xs, day_numbers, counts.actions, ACTION_COLOURS)
        axes.set_ylabel("events")
    elif name == "labels":
        series = _series(day_numbers, counts.labels)
        for label, values in sorted(series.items()):
            axes.plot(xs, values, marker="o", markersize=2.5, linewidth=1.4, label=label)
        axes.set_ylabel("events")
    elif name == "false_alarms":
        by_day = {day: (confirmed, rejected) for day, confirmed, rejected in counts.reviews}
        shares = [
            (by_day[day][1] / sum(by_day[day]) * 100) if day in by_day and sum(by_day[day]) else float("nan")
            for day in day_numbers
        ]
        axes.plot(xs, shares, marker="o", markersize=3, linewidth=1.4, color="#2e86c1", label="not toxic")
        axes.set_ylim(0, 100)
        axes.set_ylabel("% of reviews")
    else:
        raise ValueError(f"no chart called {name!r}")
    axes.set_title(TITLES[name], fontsize=10, loc="left")
    shown = xs[::-1][::5][::-1]  # every fifth day, ending today
    axes.set_xticks(shown, [dates[x] for x in shown])
    axes.set_xlim(-0.7, len(xs) - 0.3)
    axes.tick_params(axis="x", labelsize=8)
    axes.tick_params(axis="y", labelsize=8)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, frameon=False, loc="upper left")
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _series(day_numbers: list[int], rows: list[tuple[int, str, int]]) -> dict[str, list[int]]:
    index = {day: position for position, day in enumerate(day_numbers)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(day_numbers))
    for day, key, count in rows:
        if day in index:
            series[key][index[day]] += count
    return series


def _stacked(
    axes: Any, xs: list[int], day_numbers: list[int], rows: list[tuple[int, str, int]], colours: dict[str, str]
) -> None:
    series = _series(day_numbers, rows)
    bottom = [0] * len(day_numbers)
    for key in sorted(series, key=lambda k: list(colours).index(k) if k in colours else len(colours)):
        values = series[key]
        axes.bar(xs, values, bottom=bottom, label=key, color=colours.get(key), width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
