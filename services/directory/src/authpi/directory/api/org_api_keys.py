"""Organization-level API keys over HTTP (core-api.md 3.4, contract 4.26): list and create under
an organization. Such keys act as their organization, and their scopes are free-form strings
meaningful to the customer (returned by introspection). Per-key operations are served by the
account-level routes and, below the organization, by org_api_key_items.py. Scopes
`issuers.organizations.api-keys:read|write`."""

from __future__ import annotations

import ipaddress

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.directory.api.api_keys import check_org_scopes
from authpi.directory.api.organization_common import (
    ORG,
    check_body,
    choice,
    live_ref,
    org_ref,
    text_query,
)
from authpi.directory.api.organization_models import (
    CreatedOrgApiKey,
    CreateOrgApiKeyBody,
    KeySecret,
    OrgApiKeyItem,
)
from authpi.directory.handlers.organizations import Organizations, OrgKeySpec
from authpi.directory.queries.organizations import KeyFilters
from authpi.errors import FieldProblem, Unprocessable
from authpi.web.envelopes import One, Page, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.principal import InjectedPrincipal

COLLECTION = "org-api-keys"
KEYS = ORG + "/api-keys"
TAGS = ["Organization API keys"]
FOURTEEN_DAYS_MS = 14 * 24 * 3600 * 1000


def _invalid(field: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=message)
    return Unprocessable(message, reason=f"api_key.{field}", fields=[problem])


def _check(data: CreateOrgApiKeyBody, now: int) -> None:
    check_body(data)
    for i, entry in enumerate(data.restrictions.ip_allowlist):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise _invalid(
                f"restrictions.ip_allowlist.{i}", f"{entry!r} is not an IP address or CIDR range"
            ) from None
    if data.expires_at is not None and data.expires_at <= now:
        raise _invalid("expires_at", "expires_at must be in the future")


@get(KEYS, operation_id="listOrganizationApiKeys", summary="List API Keys (organization)",
     tags=TAGS, guards=[require_scope("issuers.organizations.api-keys:read")])  # fmt: skip
async def list_org_api_keys(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    page: InjectedPage, organizations: NamedDependency[Organizations],
    status: FromQuery[str | None] = None, q: FromQuery[str | None] = None,
    access: FromQuery[str | None] = None, readiness: FromQuery[str | None] = None,
) -> Page[OrgApiKeyItem]:  # fmt: skip
    now = organizations.rt.clock.now_ms()
    filters = KeyFilters(
        status=choice("status", status, ("active", "blocked", "revoked", "expired", "suspended")),
        q=text_query("q", q), access=choice("access", access, ("none", "read", "write")),
        readiness=choice("readiness", readiness, ("ready", "attention")),
        now=now, ready_until=now + FOURTEEN_DAYS_MS,
    )  # fmt: skip
    ref = await live_ref(organizations, account_id, issuer_id, org_id)
    after = page.after(COLLECTION)
    async with organizations.rt.pool.connection() as conn:
        rows = await organizations.queries.api_keys(
            conn, account_id, ref.org_id, filters, after, page.fetch_limit
        )
    return paginate(rows, page, COLLECTION, lambda k: (k.created_at, k.id))


@post(KEYS, operation_id="createOrganizationApiKey", summary="Create API Key (organization)",
      tags=TAGS, guards=[require_scope("issuers.organizations.api-keys:write")])  # fmt: skip
async def create_org_api_key(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, organizations: NamedDependency[Organizations],
    data: JSONBody[CreateOrgApiKeyBody],
) -> Response[One[CreatedOrgApiKey]]:  # fmt: skip
    now = organizations.rt.clock.now_ms()
    _check(data, now)
    check_org_scopes(data.restrictions.scopes, principal)
    ref = org_ref(account_id, issuer_id, org_id)
    spec = OrgKeySpec(
        name=data.name, scopes=list(data.restrictions.scopes),
        ip_allowlist=list(data.restrictions.ip_allowlist), description=data.description,
        tags=list(data.tags), expires_at=data.expires_at, metadata=data.metadata,
        secret=data.secret, secret_hint=data.secret_hint,
    )  # fmt: skip
    key = await organizations.create_api_key(ref, spec, actor=principal.actor())
    out = CreatedOrgApiKey(
        id=key.key_id, org_id=ref.org_id, issuer_id=ref.issuer_id, name=spec.name,
        description=spec.description, tags=spec.tags, status="active",
        restrictions={"scopes": spec.scopes, "ip_allowlist": spec.ip_allowlist},
        expires_at=spec.expires_at, secret=KeySecret("sha256", key.secret_hint),
        metadata=spec.metadata, created_at=key.created_at, secret_plain=key.secret,
    )  # fmt: skip
    return one(out, etag=etag_of(out.created_at, None), status=201)


ROUTES = [list_org_api_keys, create_org_api_key]
