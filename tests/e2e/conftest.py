"""Fixtures the browser and webhook tests share."""

from __future__ import annotations

import pytest
import pytest_asyncio

from authpi.platform.testing.login import landing_server
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.webhooks import sdk, webhook_overrides


@pytest.fixture
async def site():
    """The application's pages on loopback: where the browser lands after the portal."""
    with landing_server() as landing:
        yield landing


@pytest_asyncio.fixture(scope="session")
async def hooks_platform(infra, tmp_path_factory):
    """An all-in-one platform of the webhook tests' own: http and loopback targets allowed (as
    `make run` allows them), retries one second apart."""
    async with running_platform(
        infra, tmp_path_factory.mktemp("hooks"), **webhook_overrides()
    ) as running:
        yield running


@pytest_asyncio.fixture
async def admin(hooks_platform):
    """The official admin SDK on the webhook platform's bootstrap account and key."""
    p = hooks_platform
    async with sdk(p.api_url, p.account_id, (p.api_key_id, p.api_key_secret)) as client:
        yield client
