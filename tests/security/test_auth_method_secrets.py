"""Auth-method settings carry no secrets (platform.md 6.3, STYLE.md 4: events carry none). The
check once looked only into objects, so a secret inside a list was stored in the issuer's events.
Secrets at any depth, in objects and lists alike, are refused on create and update, and the
value is stored nowhere."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from authpi.platform.testing.plugin import RunningPlatform
from authpi.platform.testing.tenants import places_holding


@pytest.fixture
async def methods(platform: RunningPlatform) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    base = f"{platform.api_url}/v1/accounts/{platform.account_id}"
    auth = (platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as http:
        issuer = (await http.post("/issuers", json={"name": "secrets"})).json()["data"]["id"]
        yield http, f"/issuers/{issuer}/auth-methods"


def hidden(secret: str) -> list[dict[str, Any]]:
    """Settings hiding `secret` in lists, and in objects inside lists, at growing depth."""
    return [
        {"providers": [{"client_id": "web", "client_secret": secret}]},
        {"tenants": [[{"keys": [{"signing": {"private_key": secret}}]}]]},
        {"a": {"b": [1, "two", {"c": [{"d": {"e": [{"Password": secret}]}}]}]}},
    ]


@pytest.mark.parametrize("shape", range(3))
async def test_a_secret_nested_in_lists_is_refused_on_create(
    platform: RunningPlatform, pool: Any, methods: tuple[httpx.AsyncClient, str], shape: int
) -> None:
    http, path = methods
    secret = f"leak-{uuid.uuid4().hex}"
    body = {"type": "social", "provider": "github", "settings": hidden(secret)[shape]}
    answer = await http.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"][0]["message"].endswith("must not be a secret")
    assert await places_holding(platform, pool, secret) == []


@pytest.mark.parametrize("shape", range(3))
async def test_a_secret_nested_in_lists_is_refused_on_update(
    platform: RunningPlatform, pool: Any, methods: tuple[httpx.AsyncClient, str], shape: int
) -> None:
    http, path = methods
    created = await http.post(path, json={"type": "social", "provider": "google", "settings": {}})
    method_id = created.json()["data"]["id"]
    secret = f"leak-{uuid.uuid4().hex}"
    answer = await http.patch(f"{path}/{method_id}", json={"settings": hidden(secret)[shape]})
    assert answer.status_code == 422, answer.text
    assert await places_holding(platform, pool, secret) == []


async def test_settings_without_secrets_are_kept_as_given(
    methods: tuple[httpx.AsyncClient, str],
) -> None:
    http, path = methods
    settings = {"providers": [{"client_id": "web", "scopes": ["openid", "email"]}]}
    created = await http.post(
        path, json={"type": "social", "provider": "gitlab", "settings": settings}
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["settings"] == settings
