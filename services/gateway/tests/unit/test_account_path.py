"""The `{account_id}` path check (core-api.md 1.2 rule 7)."""

from __future__ import annotations

import pytest

from authpi.errors import AccessDenied, NotFound
from authpi.gateway.edge.account_path import check_account_path
from authpi.web.principal import AccountAccess, Principal


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


USER = Principal(
    type="user",
    account_id="",
    org_id="",
    scopes=frozenset(),
    user_id="usr_1",
    memberships=(
        AccountAccess(account_id="acc_a", org_id="org_a", scopes=frozenset({"issuers:read"})),
        AccountAccess(account_id="acc_b", org_id="org_b", scopes=frozenset({"webhooks:read"})),
    ),
)


async def test_a_user_token_acts_on_each_membership_with_its_scopes():
    on_a = await check_account_path(USER, {"account_id": "acc_a"}, Accounts())
    on_b = await check_account_path(USER, {"account_id": "acc_b"}, Accounts())
    assert (on_a.account_id, on_a.org_id, on_a.scopes) == ("acc_a", "org_a", {"issuers:read"})
    assert on_a.may("issuers:read") and not on_a.may("webhooks:read")
    assert on_b.may("webhooks:read") and not on_b.may("issuers:read")
    assert on_a.user_id == "usr_1" and on_a.accounts() == USER.accounts()


async def test_a_user_token_outside_its_memberships_is_403_or_404():
    with pytest.raises(AccessDenied):
        await check_account_path(USER, {"account_id": "acc_c"}, Accounts("acc_c"))
    with pytest.raises(NotFound):
        await check_account_path(USER, {"account_id": "acc_d"}, Accounts("acc_c"))


async def test_an_unbound_user_token_may_what_one_of_its_memberships_may():
    unbound = await check_account_path(USER, {}, Accounts())
    assert unbound is USER
    assert unbound.may("issuers:read") and unbound.may("webhooks:read")
    assert not unbound.may("account:read")
    assert not Principal(type="user", account_id="", org_id="", scopes=frozenset()).may(
        "account:read"
    )
