"""Shared fixtures: tiny TensorFlow models built once per session, and the registry that lists them."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow: Keras 3 objects break transformers' TF
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest

from bot.core.registry import Registry, load_registry
from tests.tiny_models import TinyModels, build_tiny_models


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    """``tiny-toxic`` (6-label multi_label, default) and ``tiny-sentiment`` (2-label single_label) + models.yaml."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def registry(tiny_models: TinyModels) -> Registry:
    return load_registry(tiny_models.models_yaml)
