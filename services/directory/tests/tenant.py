"""The tenant of the directory's API tests: an account and a key to call the Core API with,
through the admin SDK or plain httpx (for malformed input). A test module that works below one
collection of the account subclasses `Tenant` with that collection's path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import httpx
from authpi_admin import AuthPIAdmin

from authpi.contracts.base import Actor
from authpi.contracts.scopes import ALL_SCOPES
from authpi.platform.testing.tenants import basic, bootstrap_key

ADMIN = Actor(type="system")

T = TypeVar("T", bound="Tenant")


def admin_for(platform, key_id: str, secret: str, account_id: str | None = None) -> AuthPIAdmin:
    """An SDK client with the key, of the platform's account unless another is named."""
    return AuthPIAdmin(
        api_key=(key_id, secret),
        account_id=account_id or platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )


class Tenant:
    """An account and a key of it (all scopes, unless the test says otherwise)."""

    def __init__(self, platform, account_id: str, key: tuple[str, str]) -> None:
        self.platform = platform
        self.account_id = account_id
        self.key = key
        self.path = f"/v1/accounts/{account_id}"

    @property
    def key_id(self) -> str:
        return self.key[0]

    @property
    def secret(self) -> str:
        return self.key[1]

    def sdk(self, key: tuple[str, str] | None = None) -> AuthPIAdmin:
        return admin_for(self.platform, *(key or self.key), self.account_id)

    def http(self, key: tuple[str, str] | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.platform.api_url, headers=basic(*(key or self.key)), timeout=30
        )

    async def send_raw(self, method: str, path: str, raw: bytes) -> httpx.Response:
        """`raw` sent as is for a JSON body (malformed input)."""
        async with self.http() as http:
            return await http.request(
                method, path, content=raw, headers={"Content-Type": "application/json"}
            )


def platform_tenant(platform, kind: type[T] = Tenant) -> T:
    """The platform's account with its bootstrap key: public APIs only, so a test using it also
    runs against the distributed run."""
    return kind(platform, platform.account_id, bootstrap_key(platform))


async def new_tenant(
    platform,
    directory,
    name: str = "tenant",
    *,
    scopes: Sequence[str] = ALL_SCOPES,
    kind: type[T] = Tenant,
) -> T:
    """An account of its own, made in-process (no Core API route creates accounts), with a key
    holding `scopes`."""
    account_id = await directory.create_account(name, actor=ADMIN)
    key = await directory.create_api_key(account_id, "admin", list(scopes), actor=ADMIN)
    return kind(platform, account_id, (key.key_id, key.secret))
