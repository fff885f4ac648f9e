"""Fixtures the browser tests share."""

from __future__ import annotations

import pytest

from authpi.platform.testing.login import landing_server


@pytest.fixture
async def site():
    """The application's pages on loopback: where the browser lands after the portal."""
    with landing_server() as landing:
        yield landing
