"""Accounts (core-api.md 3.2, contract 4.2 and `Account` in 5.3): list the caller's accounts, get
and update one. Billing is not part of a self-hosted build: `billing_mode` is "none"."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Response, Router, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.text import check_storable
from authpi.directory.domain.account import UpdateAccount
from authpi.directory.handlers import PLATFORM_ISSUER_ID, Directory
from authpi.directory.queries_accounts import AccountRow
from authpi.errors import FieldProblem, NotFound, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Url = Annotated[str, msgspec.Meta(max_length=2048)]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class AccountOrganization(msgspec.Struct, frozen=True, kw_only=True):
    """The account's backing organization (an `Organization`, core-api.md 3.12)."""

    id: str
    issuer_id: str
    status: str
    name: str | None
    description: str | None
    logo_url: str | None
    org_type: str
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class AccountOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    organization: AccountOrganization
    owner_user_id: str | None
    domains: list[dict[str, Any]]
    features: dict[str, Any]
    limits: dict[str, Any]
    billing_mode: str
    balance_usd: int = msgspec.field(name="balance_\u03bcusd")
    credits_run_out: bool
    payment_methods: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: AccountRow) -> AccountOut:
        org = AccountOrganization(
            id=row.org_id,
            issuer_id=PLATFORM_ISSUER_ID,
            status="active",
            name=row.name,
            description=row.description,
            logo_url=row.logo_url,
            org_type="business",
            metadata={},
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        return cls(
            id=row.id,
            organization=org,
            owner_user_id=row.owner_user_id,
            domains=[],
            features={},
            limits={},
            billing_mode="none",
            balance_usd=0,
            credits_run_out=False,
            payment_methods=[],
            metadata=row.metadata,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class UpdateAccountBody(msgspec.Struct, frozen=True, kw_only=True):
    """PATCH body (all optional). `domains` edits belong to the domain routes (3.3)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    logo_url: Url | msgspec.UnsetType | None = msgspec.UNSET
    owner_user_id: UserId | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET


async def _read(directory: Directory, account_id: str) -> AccountRow:
    async with directory.rt.pool.connection() as conn:
        row = await directory.account_queries.account(conn, account_id)
    if row is None:
        raise NotFound("no such account", reason="account.not_found")
    return row


@get(
    "/v1/accounts",
    operation_id="listAccounts",
    summary="List Accounts",
    tags=["Accounts"],
    guards=[require_scope("account:read")],
)
async def list_accounts(
    principal: InjectedPrincipal, page: InjectedPage, directory: NamedDependency[Directory]
) -> Page[AccountOut]:
    # An account-level credential reaches exactly one account: its own (core-api.md 3.2).
    ids = [principal.account_id] if principal.level == "account" else []
    async with directory.rt.pool.connection() as conn:
        rows = await directory.account_queries.accounts(
            conn, ids, page.after_time_id("accounts"), page.fetch_limit
        )
    listed = paginate(rows, page, "accounts", lambda r: (r.created_at, r.id))
    return Page(
        data=[AccountOut.of(r) for r in listed.data],
        has_more=listed.has_more,
        next_cursor=listed.next_cursor,
    )


@get(
    "/v1/accounts/{account_id:str}",
    operation_id="getAccount",
    summary="Get Account",
    tags=["Accounts"],
    guards=[require_scope("account:read")],
)
async def get_account(
    account_id: FromPath[str], directory: NamedDependency[Directory]
) -> Response[One[AccountOut]]:
    row = await _read(directory, account_id)
    return one(AccountOut.of(row), etag=etag_of(row.created_at, row.updated_at))


@patch(
    "/v1/accounts/{account_id:str}",
    operation_id="updateAccount",
    summary="Update Account",
    tags=["Accounts"],
    guards=[require_scope("account:write")],
)
async def update_account(
    account_id: FromPath[str],
    data: JSONBody[UpdateAccountBody],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
) -> Response[One[AccountOut]]:
    check_storable(data)
    if isinstance(data.metadata, dict):
        check_metadata(data.metadata)
    if isinstance(data.logo_url, str):
        _check_url(data.logo_url)
    cmd = UpdateAccount(
        account_id=account_id,
        now=0,
        name=data.name,
        description=data.description,
        logo_url=data.logo_url,
        owner_user_id=data.owner_user_id,
        metadata=data.metadata,
        if_match=if_match,
    )
    await directory.update_account(cmd, principal.actor())
    row = await _read(directory, account_id)
    return one(AccountOut.of(row), etag=etag_of(row.created_at, row.updated_at))


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("https", "http") or not parts.netloc:
        problem = FieldProblem(
            field="logo_url", code="invalid_value", message="logo_url must be an absolute URL"
        )
        raise Unprocessable(problem.message, reason="account.logo_url", fields=[problem])


def accounts_router(directory: Directory) -> Router:
    return Router(
        "/",
        route_handlers=[list_accounts, get_account, update_account],
        dependencies={"directory": provide(directory)},
    )
