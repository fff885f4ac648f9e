"""Account domains over HTTP (core-api.md 3.3, contract 4.6): list, add, remove, assign to an
issuer, unassign and verify. Every write answers the whole `Account` (its `domains` hold the
result) with the account's ETag, which is also what `If-Match` is compared with. The list is not
paged (contract 3.4): one page, `has_more: false`. Scopes `domains:read|write|delete`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.accounts import AccountDomain, AccountOut, account_response
from authpi.directory.domain import hosts
from authpi.directory.handlers.account_domains import AccountDomains
from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

DOMAINS = "/v1/accounts/{account_id:str}/domains"
DOMAIN = DOMAINS + "/{domain:str}"
TAGS = ["Domains"]
IssuerId = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


class AddDomainBody(msgspec.Struct, frozen=True, kw_only=True):
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]


class AssignDomainBody(msgspec.Struct, frozen=True, kw_only=True):
    issuer_id: IssuerId


def _new_host(value: str) -> str:
    try:
        return hosts.normalize(value)
    except hosts.BadHost as exc:
        problem = FieldProblem(field="host", code="invalid_value", message=f"host {exc}")
        raise Unprocessable(problem.message, reason="domain.bad_host", fields=[problem]) from None


def _path_host(value: str) -> str:
    """A path segment that cannot be a custom domain names none (404, never a 500)."""
    try:
        return hosts.normalize(value)
    except hosts.BadHost:
        raise NotFound("no such domain in this account", reason="domain.bad_path") from None


@get(DOMAINS, operation_id="listAccountDomains", summary="List Account Domains", tags=TAGS,
     guards=[require_scope("domains:read")])  # fmt: skip
async def list_domains(
    account_id: FromPath[str], domains: NamedDependency[AccountDomains]
) -> Page[AccountDomain]:
    async with domains.rt.pool.connection() as conn:
        rows = await domains.directory.account_queries.domains(conn, [account_id])
    return Page(data=[AccountDomain.of(r) for r in rows], has_more=False, next_cursor=None)


@post(DOMAINS, operation_id="addAccountDomain", summary="Add Account Domain", tags=TAGS,
      guards=[require_scope("domains:write")])  # fmt: skip
async def add_domain(
    account_id: FromPath[str], data: JSONBody[AddDomainBody], principal: InjectedPrincipal,
    domains: NamedDependency[AccountDomains],
) -> Response[One[AccountOut]]:  # fmt: skip
    await domains.add(account_id, _new_host(data.host), actor=principal.actor())
    return await account_response(domains.directory, account_id, status=201)


@delete(DOMAIN, operation_id="removeAccountDomain", summary="Remove Account Domain", tags=TAGS,
        guards=[require_scope("domains:delete")])  # fmt: skip
async def remove_domain(
    account_id: FromPath[str], domain: FromPath[str], principal: InjectedPrincipal,
    domains: NamedDependency[AccountDomains], if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    host = _path_host(domain)
    await domains.remove(account_id, host, actor=principal.actor(), if_match=if_match)
    return no_content()


@post(DOMAIN + "/assign", operation_id="assignAccountDomain", summary="Assign Domain to Issuer",
      tags=TAGS, guards=[require_scope("domains:write")], status_code=200)  # fmt: skip
async def assign_domain(
    account_id: FromPath[str], domain: FromPath[str], principal: InjectedPrincipal,
    domains: NamedDependency[AccountDomains], if_match: IfMatch = None,
    data: JSONBody[AssignDomainBody | None] = None,
) -> Response[One[AccountOut]]:  # fmt: skip
    host = _path_host(domain)
    if data is None:
        problem = FieldProblem(field="issuer_id", code="required", message="issuer_id is required")
        raise InvalidRequest(problem.message, reason="domain.no_issuer", fields=[problem])
    await domains.assign(
        account_id, host, data.issuer_id, actor=principal.actor(), if_match=if_match
    )
    return await account_response(domains.directory, account_id)


@post(DOMAIN + "/unassign", operation_id="unassignAccountDomain",
      summary="Unassign Domain from Issuer", tags=TAGS, guards=[require_scope("domains:write")],
      status_code=200)  # fmt: skip
async def unassign_domain(
    account_id: FromPath[str], domain: FromPath[str], principal: InjectedPrincipal,
    domains: NamedDependency[AccountDomains], if_match: IfMatch = None,
) -> Response[One[AccountOut]]:  # fmt: skip
    host = _path_host(domain)
    await domains.unassign(account_id, host, actor=principal.actor(), if_match=if_match)
    return await account_response(domains.directory, account_id)


@post(DOMAIN + "/verify", operation_id="verifyAccountDomain", summary="Verify Account Domain",
      tags=TAGS, guards=[require_scope("domains:write")], status_code=200)  # fmt: skip
async def verify_domain(
    account_id: FromPath[str], domain: FromPath[str], principal: InjectedPrincipal,
    domains: NamedDependency[AccountDomains], if_match: IfMatch = None,
) -> Response[One[AccountOut]]:  # fmt: skip
    host = _path_host(domain)
    await domains.verify(account_id, host, actor=principal.actor(), if_match=if_match)
    return await account_response(domains.directory, account_id)


def domains_router(domains: AccountDomains) -> Router:
    return Router(
        "/",
        route_handlers=[list_domains, add_domain, remove_domain, assign_domain, unassign_domain,
                        verify_domain],
        dependencies={"domains": provide(domains)},
    )  # fmt: skip
