"""`GET /v1/me` (core-api.md 3.1): who the Core API considers the caller to be. Every valid
credential may ask, with no scope; the SDKs resolve their account from it, so an account-level
API key reports exactly one `accounts` entry, a user token one per account membership. A direct
read (authpi.web.reads): the gateway answers it before litestar's router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec
from litestar import Response, get

from authpi.web.envelopes import One
from authpi.web.opts import DIRECT_READ
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.reads import Answer, DirectRead


class AccountAccess(msgspec.Struct, frozen=True):
    account_id: str
    org_id: str
    scopes: list[str]


class OrganizationAccess(msgspec.Struct, frozen=True):
    org_id: str
    scopes: list[str]


class CallerIdentity(msgspec.Struct, frozen=True):
    type: Literal["api_key", "user", "personal_token"]
    key_id: str | None
    user_id: str | None
    issuer_id: str | None
    accounts: list[AccountAccess]
    organizations: list[OrganizationAccess]


def identity_of(principal: Principal) -> CallerIdentity:
    account_level = principal.level == "account"
    return CallerIdentity(
        type=principal.type,
        key_id=principal.key_id,
        user_id=principal.user_id,
        issuer_id=principal.issuer_id,
        # One entry per account it may act on (a user token: one per membership).
        accounts=[
            AccountAccess(a.account_id, a.org_id, sorted(a.scopes)) for a in principal.accounts()
        ],
        organizations=[]
        if account_level
        else [OrganizationAccess(principal.org_id, sorted(principal.scopes))],
    )


async def me_answer(principal: Principal, _: Mapping[str, str]) -> Answer:
    return Answer(One(identity_of(principal)))


@get(
    "/v1/me",
    operation_id="getCallerIdentity",
    summary="Get Caller Identity",
    tags=["Me"],
    opt={DIRECT_READ: DirectRead(me_answer)},
)
async def get_me(principal: InjectedPrincipal) -> Response[One[CallerIdentity]]:
    return (await me_answer(principal, {})).response()
