"""Accounts (core-api.md 3.2, contract 4.2 and `Account` in 5.3): list the caller's accounts, get
and update one (including the `primary` flag of its domains). The billing fields (platform.md
5.2) come from the billing service's events (reactions/billing.py): `balance_μusd`,
`payment_methods` (removed ones keep their record), `credits_run_out` (balance at or below 0) and
`billing_mode`, derived: `gated` when billing is enforced for the deployment (every method of
this build is prepaid), else `ungated` (OP-9)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Response, Router, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.scopes import grants
from authpi.directory.api.pages import rendered
from authpi.directory.domain import hosts
from authpi.directory.domain.account_domains import CLAIM_TTL_MS, challenge_name, challenge_token
from authpi.directory.domain.commands.account import DomainEdit, UpdateAccount
from authpi.directory.handlers.accounts import Directory
from authpi.directory.queries.accounts import AccountBilling, AccountRow, DomainRow
from authpi.errors import FieldProblem, NotFound, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Url = Annotated[str, msgspec.Meta(max_length=2048)]
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Host = Annotated[str, msgspec.Meta(min_length=1, max_length=253)]


class DomainChallenge(msgspec.Struct, frozen=True, kw_only=True):
    """How to verify a domain: publish a TXT record `name` with `value`, then call verify, before
    `expires_at` (the unverified claim lapses then, and another account may take the host)."""

    type: str
    name: str
    value: str
    expires_at: int


class AccountDomain(msgspec.Struct, frozen=True, kw_only=True):
    """The `AccountDomain` model (core-api.md 3.3). This build has no edge provider: the `cf_*`
    fields are always null. The spec defines no challenge field and recommends "a CNAME to the
    portal host or a TXT challenge"; resolving to us proves nothing about who owns a host, so
    this build verifies by TXT challenge and adds `verification` (null once verified) after the
    documented fields: clients that do not know it ignore it."""

    host: str
    verified: bool
    primary: bool
    added_at: int
    assigned_issuer_id: str | None
    assigned_at: int | None
    cf_custom_hostname_id: str | None = None
    cf_status: str | None = None
    verification: DomainChallenge | None = None

    @classmethod
    def of(cls, row: DomainRow) -> AccountDomain:
        challenge = None
        if not row.verified:
            challenge = DomainChallenge(
                type="dns-txt", name=challenge_name(row.host),
                value=challenge_token(row.account_id, row.host),
                expires_at=row.added_at + CLAIM_TTL_MS,
            )  # fmt: skip
        return cls(
            host=row.host, verified=row.verified, primary=row.primary, added_at=row.added_at,
            assigned_issuer_id=row.assigned_issuer_id, assigned_at=row.assigned_at,
            verification=challenge,
        )  # fmt: skip


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
    domains: list[AccountDomain]
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
    def of(
        cls, row: AccountRow, domains: list[DomainRow], billing: AccountBilling, mode: str
    ) -> AccountOut:
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
            domains=[AccountDomain.of(d) for d in domains if d.account_id == row.id],
            features={},
            limits={},
            billing_mode=mode,
            balance_usd=billing.balance,
            credits_run_out=billing.balance <= 0,
            payment_methods=billing.payment_methods,
            metadata=row.metadata,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class DomainEditBody(msgspec.Struct, frozen=True, kw_only=True):
    host: Host
    primary: bool


class UpdateAccountBody(msgspec.Struct, frozen=True, kw_only=True):
    """PATCH body (all optional). `domains` only edits the `primary` flag of existing domains;
    adding and removing them belongs to the domain routes (core-api.md 3.2, 3.3)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    logo_url: Url | msgspec.UnsetType | None = msgspec.UNSET
    owner_user_id: UserId | msgspec.UnsetType = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    domains: Annotated[list[DomainEditBody], msgspec.Meta(max_length=20)] | msgspec.UnsetType = (
        msgspec.UNSET
    )


async def account_response(
    directory: Directory, account_id: str, status: int = 200
) -> Response[One[AccountOut]]:
    """The account with its domains, as every account and domain route answers it. The row is
    read first: a write landing between the two reads pairs newer domains with the older ETag,
    which then fails a later If-Match (412) rather than matching state it never showed."""
    async with directory.rt.pool.connection() as conn:
        row = await directory.account_queries.account(conn, account_id)
        domains = await directory.account_queries.domains(conn, [account_id])
        billing = await directory.account_queries.billing(conn, [account_id])
    if row is None:
        raise NotFound("no such account", reason="account.not_found")
    out = AccountOut.of(row, domains, billing[account_id], billing_mode(directory))
    return one(out, etag=etag_of(row.created_at, row.updated_at), status=status)


def billing_mode(directory: Directory) -> str:
    return "gated" if directory.rt.settings.billing_enforcement else "ungated"


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
    # An account-level credential reaches exactly one account: its own (core-api.md 3.2); a
    # user token each account whose membership may read it.
    ids = [a.account_id for a in principal.accounts() if grants(a.scopes, "account:read")]
    async with directory.rt.pool.connection() as conn:
        rows = await directory.account_queries.accounts(
            conn, ids, page.after_time_id("accounts"), page.fetch_limit
        )
        domains = await directory.account_queries.domains(conn, [r.id for r in rows])
        billing = await directory.account_queries.billing(conn, [r.id for r in rows])
    listed = paginate(rows, page, "accounts", lambda r: (r.created_at, r.id))
    mode = billing_mode(directory)
    return rendered(listed, lambda r: AccountOut.of(r, domains, billing[r.id], mode))


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
    return await account_response(directory, account_id)


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
        domains=_domain_edits(data.domains),
        if_match=if_match,
    )
    await directory.update_account(cmd, principal.actor())
    return await account_response(directory, account_id)


def _domain_edits(
    edits: list[DomainEditBody] | msgspec.UnsetType,
) -> list[DomainEdit] | msgspec.UnsetType:
    """Hosts are compared in their stored form (core-api.md 3.3); one that cannot be a domain
    names none of the account's (422 from the decider)."""
    if isinstance(edits, msgspec.UnsetType):
        return edits
    return [DomainEdit(host=_stored_form(e.host), primary=e.primary) for e in edits]


def _stored_form(host: str) -> str:
    try:
        return hosts.normalize(host)
    except hosts.BadHost:
        return host


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
