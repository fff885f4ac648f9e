"""What the organization route modules share: the path prefix, id and query checks, and the
one-organization lookup that makes a missing, foreign or deleted organization a 404."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from authpi.directory.api.organization_models import Organization
from authpi.directory.domain.commands.organization import OrgRef
from authpi.directory.handlers.organizations import Organizations
from authpi.errors import FieldProblem, InvalidRequest, NotFound
from authpi.web.metadata import check_metadata
from authpi.web.text import check_storable

I = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}"  # noqa: E741 (core-api.md 1.5)
ORG = I + "/organizations/{org_id:str}"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_id(value: str, what: str) -> str:
    """Ids in paths: anything that cannot be an id names no resource (404, never a 500)."""
    if not _ID.match(value):
        raise NotFound(f"no such {what}", reason=f"{what}.bad_id")
    return value


def org_ref(account_id: str, issuer_id: str, org_id: str) -> OrgRef:
    return OrgRef(
        org_id=check_id(org_id, "organization"),
        account_id=account_id,
        issuer_id=check_id(issuer_id, "issuer"),
    )


async def live_organization(orgs: Organizations, ref: OrgRef) -> Organization:
    async with orgs.rt.pool.connection() as conn:
        found = await orgs.queries.organization(conn, ref.account_id, ref.issuer_id, ref.org_id)
    if found is None:
        raise NotFound("no such organization", reason="organization.not_found")
    return found


async def live_ref(orgs: Organizations, account_id: str, issuer_id: str, org_id: str) -> OrgRef:
    """The path's organization reference, once the organization is known to be live."""
    ref = org_ref(account_id, issuer_id, org_id)
    await live_organization(orgs, ref)
    return ref


def check_body(body: Any, objects: tuple[str, ...] = ("metadata",)) -> None:
    """A write body: no unstorable text, and each JSON object it carries (absent, null or
    unset ones are skipped) within the metadata limits."""
    check_storable(body)
    for field in objects:
        value = getattr(body, field)
        if isinstance(value, dict):
            check_metadata(value, field)


def choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None or value in allowed:
        return value
    raise bad_query(name, f"{name} must be one of {', '.join(allowed)}")


def flag(name: str, value: str | None) -> bool | None:
    """The SDK's boolean-like string filters (contract 3.5): `true` or `false`."""
    if value is None:
        return None
    if value in ("true", "false"):
        return value == "true"
    raise bad_query(name, f"{name} must be true or false")


def text_query(name: str, value: str | None) -> str | None:
    if value is not None and ("\x00" in value or len(value) > 200):
        raise bad_query(name, f"{name} must be at most 200 characters of text")
    return value


def bad_query(name: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=name, code="invalid_value", message=message)
    return InvalidRequest(message, reason=f"query.{name}", fields=[problem])


def present(body: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields a PATCH body carries (UNSET ones are absent)."""
    return {f: getattr(body, f) for f in fields if getattr(body, f) is not msgspec.UNSET}
