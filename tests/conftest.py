"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the exporter's client to use against the in-test simulator."""
    async with httpx.AsyncClient(timeout=30) as client:
        yield client
