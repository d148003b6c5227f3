"""Shared fixtures: tiny TensorFlow models built once per session, and the registry that lists them."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow: Keras 3 objects break transformers' TF
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.core.registry import Registry, load_registry
from tests.databases import ENGINES, Database, database
from tests.tiny_models import TinyModels, build_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """``tiny-toxic`` (6-label multi_label, default) and ``tiny-sentiment`` (2-label single_label) + models.yaml."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def registry(tiny_models: TinyModels) -> Registry:
    return load_registry(tiny_models.models_yaml)


@pytest_asyncio.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database on each engine: SQLite, and PostgreSQL in a schema of its own (see tests/databases.py)."""
    async with database(request.param, tmp_path) as fresh:
        yield fresh
