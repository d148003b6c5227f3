"""Fixtures of the storage tests: a fresh database per test, on each engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from bot.storage import Storage
from tests.databases import Database


@pytest_asyncio.fixture
async def storage(db: Database) -> AsyncIterator[Storage]:
    store = await db.open()
    try:
        yield store
    finally:
        await store.close()
