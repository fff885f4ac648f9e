"""Shared set-up of the token service's integration tests: the platform's admin SDK, the JWKS an
issuer serves, and issuers created through the Core API and waited for until the token service
publishes their three signing keys (it learns issuers from JetStream only). Session-scoped
factories, so module-scoped platforms of their own (a FixedClock) use them too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin

from authpi.testing.plugin import eventually

ALGS = ("ES256", "EdDSA", "RS256")


def _admin(platform: Any) -> AuthPIAdmin:
    return AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )


async def _jwks(platform: Any, issuer_id: str) -> dict:
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.get(f"{platform.idp_url}/{issuer_id}/jwks.json")
    return resp.json() if resp.status_code == 200 else {}


@pytest.fixture(scope="session")
def admin_of() -> Callable[[Any], AuthPIAdmin]:
    """The admin SDK with the platform's bootstrap key and account."""
    return _admin


@pytest.fixture(scope="session")
def jwks_of() -> Callable[[Any, str], Awaitable[dict]]:
    """The issuer's JWKS as served on the IdP port; {} while it is unknown."""
    return _jwks


@pytest.fixture(scope="session")
def issuer_with_keys() -> Callable[[Any, str], Awaitable[tuple[AuthPIAdmin, str]]]:
    """(admin SDK, issuer id) of a new issuer, once its JWKS has a key per algorithm."""

    async def make(platform: Any, name: str) -> tuple[AuthPIAdmin, str]:
        admin = _admin(platform)
        made = await admin.issuers.create({"name": name})

        async def has_keys() -> bool:
            return len((await _jwks(platform, made.id)).get("keys", [])) == len(ALGS)

        await eventually(has_keys)
        return admin, made.id

    return make
