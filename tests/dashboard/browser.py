"""Headless Chromium (Debian's ``chromium`` package) driven by Playwright, and where the screenshots go.

Playwright never downloads a browser here: it launches the system's ``/usr/bin/chromium``. Screenshots land in
``test-output/dashboard/`` (ignored by git) so a person can look at every page after a run.
"""

from __future__ import annotations

from pathlib import Path

from tests.ops.helpers import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "test-output" / "dashboard"


def screenshot_path(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
