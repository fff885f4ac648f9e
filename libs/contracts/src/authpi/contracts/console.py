"""AuthPI's own issuer (core-api.md 1.7): console users are members of the organization that
backs each account, and their access tokens are issued by this issuer. An account and its
backing organization share the same 25-character suffix."""

from __future__ import annotations

PLATFORM_ISSUER_ID = "i_authpi0000000000000000000"
PLATFORM_ACCOUNT = "_"  # the platform issuer belongs to no customer account


def account_of_org(org_id: str) -> str | None:
    return f"acc_{org_id[4:]}" if org_id.startswith("org_") and len(org_id) > 4 else None


def org_of_account(account_id: str) -> str | None:
    return (
        f"org_{account_id[4:]}" if account_id.startswith("acc_") and len(account_id) > 4 else None
    )
