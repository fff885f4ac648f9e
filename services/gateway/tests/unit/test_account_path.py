"""The `{account_id}` path check (core-api.md 1.2 rule 7)."""

from __future__ import annotations

import pytest

from authpi.errors import AccessDenied, NotFound
from authpi.gateway.accounts import check_account_path
from authpi.web.principal import Principal


class Accounts:
    def __init__(self, *known: str) -> None:
        self.known = set(known)

    async def exists(self, account_id: str) -> bool:
        return account_id in self.known


ACCOUNT_KEY = Principal(type="api_key", account_id="acc_a", org_id="org_a", scopes=frozenset())
ORG_KEY = Principal(
    type="api_key",
    account_id="acc_a",
    org_id="org_customer",
    scopes=frozenset(),
    level="organization",
)


async def test_own_account_and_routes_without_one_pass():
    await check_account_path(ACCOUNT_KEY, {"account_id": "acc_a"}, Accounts())
    await check_account_path(ACCOUNT_KEY, {}, Accounts())


async def test_other_existing_account_is_403_and_unknown_is_404():
    with pytest.raises(AccessDenied):
        await check_account_path(ACCOUNT_KEY, {"account_id": "acc_b"}, Accounts("acc_b"))
    with pytest.raises(NotFound):
        await check_account_path(ACCOUNT_KEY, {"account_id": "acc_c"}, Accounts("acc_b"))


async def test_organization_level_key_stays_in_its_organization():
    own = {"account_id": "acc_a", "issuer_id": "i_1", "org_id": "org_customer"}
    await check_account_path(ORG_KEY, own, Accounts())
    for path in ({"account_id": "acc_a"}, {**own, "org_id": "org_other"}):
        with pytest.raises(AccessDenied):
            await check_account_path(ORG_KEY, path, Accounts())
