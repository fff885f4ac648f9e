"""Organization SSO over HTTP (core-api.md 3.16, contract 4.30): add an SSO domain (answers the
TXT record to publish), verify it through DNS, remove it (a JSON object, never 204: the SDK
needs one), rotate the SSO client secret (shown once). Scopes `issuers.organizations.sso:write`
(and `:delete` for the removal, like every DELETE route)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, post
from litestar.di import NamedDependency
from litestar.params import FromPath, RawBody

from authpi.directory.api.organization_common import ORG, org_ref
from authpi.directory.handlers.org_sso import AddedDomain, OrganizationSso, Verification
from authpi.errors import FieldProblem, NotFound, Unprocessable
from authpi.web.body import decode_json
from authpi.web.envelopes import One, one
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

DOMAINS = ORG + "/sso/domains"
DOMAIN = DOMAINS + "/{domain:str}"
WRITE = [require_scope("issuers.organizations.sso:write")]
DELETE = [require_scope("issuers.organizations.sso:delete")]
TAGS = ["Organization SSO"]
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})+$")


class AddDomainBody(msgspec.Struct, frozen=True, kw_only=True):
    domain: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class RemovedDomain(msgspec.Struct, frozen=True, kw_only=True):
    domain: str
    deleted: bool


class RotatedSecret(msgspec.Struct, frozen=True, kw_only=True):
    secret: str


def normalise(domain: str, field: str | None) -> str:
    """An email domain as stored: lower case, no trailing dot; 422 (body) or 404 (path) when it
    is not a DNS name of two labels or more. A numeric last label is an IPv4 address, never an
    email domain (RFC 5321 writes an address literal in brackets)."""
    value = domain.strip().rstrip(".").lower()
    if _DOMAIN.match(value) and not value.rpartition(".")[2].isdigit():
        return value
    if field is None:
        raise NotFound("no such SSO domain in this organization", reason="sso_domain.not_found")
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} is not a domain")
    raise Unprocessable(problem.message, reason="sso_domain.invalid", fields=[problem])


def _body(raw: bytes, content_type: str | None) -> AddDomainBody:
    """The optional body (contract 4.30), decoded as every JSON body is (authpi.web.body): bounded
    in depth before the parser sees it, invalid UTF-8 or JSON a 400, never a 500."""
    if not raw.strip():
        problem = FieldProblem(field="domain", code="required", message="domain is required")
        raise Unprocessable(problem.message, reason="sso_domain.invalid", fields=[problem])
    media_type = (content_type or "application/json").split(";")[0].strip().lower()
    return decode_json(raw, AddDomainBody, media_type)


@post(DOMAINS, operation_id="addOrganizationSsoDomain", summary="Add SSO Domain", tags=TAGS,
      guards=WRITE, status_code=200)  # fmt: skip
async def add_domain(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organization_sso: NamedDependency[OrganizationSso],
    body: RawBody, request: Request[Any, Any, Any], if_match: IfMatch = None,
) -> Response[One[AddedDomain]]:  # fmt: skip
    data = _body(body, request.headers.get("content-type"))
    ref = org_ref(account_id, issuer_id, org_id)
    added = await organization_sso.add(
        ref, normalise(data.domain, "domain"), actor=principal.actor(), if_match=if_match
    )
    return one(added)


@post(DOMAIN + "/verify", operation_id="verifyOrganizationSsoDomain",
      summary="Verify SSO Domain", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def verify_domain(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    domain: FromPath[str], principal: InjectedPrincipal,
    organization_sso: NamedDependency[OrganizationSso], if_match: IfMatch = None,
) -> Response[One[Verification]]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    result = await organization_sso.verify(
        ref, normalise(domain, None), actor=principal.actor(), if_match=if_match
    )
    return one(result)


@delete(DOMAIN, operation_id="removeOrganizationSsoDomain", summary="Remove SSO Domain",
        tags=TAGS, guards=DELETE, status_code=200)  # fmt: skip
async def remove_domain(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    domain: FromPath[str], principal: InjectedPrincipal,
    organization_sso: NamedDependency[OrganizationSso], if_match: IfMatch = None,
) -> Response[One[RemovedDomain]]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    name = normalise(domain, None)
    await organization_sso.remove(ref, name, actor=principal.actor(), if_match=if_match)
    return one(RemovedDomain(domain=name, deleted=True))


@post(ORG + "/sso/rotate-secret", operation_id="rotateOrganizationSsoSecret",
      summary="Rotate SSO Client Secret", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def rotate_secret(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organization_sso: NamedDependency[OrganizationSso],
    if_match: IfMatch = None,
) -> Response[One[RotatedSecret]]:  # fmt: skip
    ref = org_ref(account_id, issuer_id, org_id)
    secret = await organization_sso.rotate_secret(ref, actor=principal.actor(), if_match=if_match)
    return one(RotatedSecret(secret=secret))


ROUTES: list[Any] = [add_domain, verify_domain, remove_domain, rotate_secret]
