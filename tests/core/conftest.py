"""Fixtures for the core tests: the tiny models loaded once through the real TensorFlow backend."""

from __future__ import annotations

import pytest

from bot.core.backends import Backend, load_backend
from bot.core.registry import Registry


@pytest.fixture(scope="session")
def tf_backends(registry: Registry) -> dict[str, Backend]:
    """``tiny-toxic`` and ``tiny-sentiment`` loaded with ``load_backend`` (shared: loading costs seconds)."""
    return {name: load_backend(registry.get(name)) for name in registry.names()}
