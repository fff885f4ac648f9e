"""`GET /v1/me` identities (core-api.md 3.1): an account-level key reports exactly one account,
an organization-level key reports its organization instead."""

from __future__ import annotations

from authpi.directory.api.me import identity_of
from authpi.web.principal import Principal


def test_account_level_key_reports_one_account_with_sorted_scopes():
    principal = Principal(
        type="api_key",
        account_id="acc_a",
        org_id="org_a",
        scopes=frozenset({"webhooks:manage", "issuers.users:read"}),
        key_id="key_1",
        issuer_id="i_x",
    )
    identity = identity_of(principal)
    assert [(a.account_id, a.org_id, a.scopes) for a in identity.accounts] == [
        ("acc_a", "org_a", ["issuers.users:read", "webhooks:manage"])
    ]
    assert identity.organizations == [] and identity.user_id is None


def test_organization_level_key_reports_its_organization_only():
    principal = Principal(
        type="api_key",
        account_id="acc_a",
        org_id="org_customer",
        scopes=frozenset({"projects:write"}),
        level="organization",
        key_id="key_2",
    )
    identity = identity_of(principal)
    assert identity.accounts == []
    assert [(o.org_id, o.scopes) for o in identity.organizations] == [
        ("org_customer", ["projects:write"])
    ]
