"""Fixtures for the gateway's integration tests: the running platform's parts, an SDK client with
the platform's own key (`admin`), and `serve` to run extra Core API apps (built by the platform's
gateway) on real loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from authpi_admin import AuthPIAdmin

from authpi.platform.testing.tenants import part


@contextlib.asynccontextmanager
async def serving(app) -> AsyncIterator[str]:
    """Serve an ASGI app on a free loopback port for the duration of the block."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def directory(platform):
    return part(platform, "directory")


@pytest.fixture
def gateway(platform):
    return part(platform, "gateway")


@pytest.fixture
def serve():
    return serving


@pytest.fixture
async def admin(platform) -> AsyncIterator[AuthPIAdmin]:
    """The SDK with the platform's own all-scopes key, on its account."""
    key = (platform.api_key_id, platform.api_key_secret)
    client = AuthPIAdmin(
        api_key=key, account_id=platform.account_id, base_url=platform.api_url, retries=False
    )
    yield client
    await client.close()
