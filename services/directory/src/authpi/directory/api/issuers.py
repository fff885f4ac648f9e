"""Issuers (core-api.md 3.7, contract 4.8, `Issuer` / `IssuerListItem` / `CreateIssuerInput` in
5.4). Lists are newest first; list items add the derived setup indicators (auth-method counts,
`access_mode`, `readiness`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.directory.api.pages import rendered
from authpi.directory.domain.issuer_settings import ACCESS_MODES
from authpi.directory.handlers.issuers import Issuers, require_known_ids
from authpi.directory.queries.issuers import IssuerFilters, IssuerRow
from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

ISSUERS = "/v1/accounts/{account_id:str}/issuers"
ISSUER = ISSUERS + "/{issuer_id:str}"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Scope = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^\S+$")]
Scopes = Annotated[list[Scope], msgspec.Meta(max_length=256)]
Status = Literal["active", "disabled"]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class IssuerCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Description | None = None
    links: dict[str, Any] | None = None
    available_scopes: Scopes | None = None
    status: Status | None = None
    settings: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class IssuerPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | Unset = UNSET
    description: Description | Unset | None = UNSET
    links: dict[str, Any] | Unset | None = UNSET
    available_scopes: Scopes | Unset | None = UNSET
    status: Status | Unset = UNSET
    settings: dict[str, Any] | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET


class IssuerOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    account_id: str
    name: str
    description: str | None
    links: dict[str, Any]
    available_scopes: list[str]
    status: str
    status_at: int | None
    settings: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: IssuerRow) -> IssuerOut:
        return cls(**{f: getattr(row, f) for f in cls.__struct_fields__})


class IssuerListItem(IssuerOut, frozen=True, kw_only=True):
    access_mode: str | None
    auth_method_count: int
    enabled_login_method_count: int
    enabled_signup_method_count: int
    available_scope_count: int
    branding_configured: bool
    readiness: str


def _unique(values: list[str] | None) -> list[str]:
    return list(dict.fromkeys(values or []))


def _check_objects(links: Any, metadata: Any) -> None:
    for name, value in (("links", links), ("metadata", metadata)):
        if isinstance(value, dict):
            check_metadata(value, name)


def create_fields(data: IssuerCreate) -> dict[str, Any]:
    check_storable(data)
    _check_objects(data.links, data.metadata)
    if data.settings is not None and "access" not in data.settings:
        problem = FieldProblem(field="settings.access", code="required",
                               message="settings.access is required with settings")  # fmt: skip
        raise Unprocessable(problem.message, reason="issuer.settings", fields=[problem])
    return {
        "name": data.name, "description": data.description, "links": data.links or {},
        "available_scopes": _unique(data.available_scopes), "status": data.status or "active",
        "settings": data.settings or {}, "metadata": data.metadata or {},
    }  # fmt: skip


def patch_fields(data: IssuerPatch) -> dict[str, Any]:
    check_storable(data)
    _check_objects(data.links, data.metadata)
    fields = {f: getattr(data, f) for f in data.__struct_fields__}
    if isinstance(data.available_scopes, list):
        fields["available_scopes"] = _unique(data.available_scopes)
    return {k: v for k, v in fields.items() if v is not UNSET}


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        problem = FieldProblem(field=name, code="invalid_value",
                               message=f"{name} must be one of {', '.join(allowed)}")  # fmt: skip
        raise InvalidRequest(problem.message, reason=f"issuer.filter.{name}", fields=[problem])
    return value


async def issuer_row(issuers: Issuers, account_id: str, issuer_id: str) -> IssuerRow:
    require_known_ids(issuer_id)
    async with issuers.rt.pool.connection() as conn:
        row = await issuers.queries.issuer(conn, account_id, issuer_id)
    if row is None:
        raise NotFound("no such issuer", reason="issuer.not_found")
    return row


def _one(row: IssuerRow, status: int = 200) -> Response[One[IssuerOut]]:
    return one(IssuerOut.of(row), etag=etag_of(row.created_at, row.updated_at), status=status)


@get(ISSUERS, operation_id="listIssuers", summary="List Issuers", tags=["Issuers"],
     guards=[require_scope("issuers:read")])  # fmt: skip
async def list_issuers(
    account_id: FromPath[str],
    page: InjectedPage,
    issuers: NamedDependency[Issuers],
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    access_mode: FromQuery[str | None] = None,
    readiness: FromQuery[str | None] = None,
) -> Page[IssuerListItem]:
    filters = IssuerFilters(
        q=q, status=_choice("status", status, ("active", "disabled")),
        access_mode=_choice("access_mode", access_mode, ACCESS_MODES),
        readiness=_choice("readiness", readiness, ("ready", "incomplete")),
    )  # fmt: skip
    check_storable(filters)
    async with issuers.rt.pool.connection() as conn:
        rows = await issuers.queries.issuers(
            conn, account_id, filters, page.after("issuers"), page.fetch_limit
        )
    listed = paginate(rows, page, "issuers", lambda r: (r.created_at, r.id))
    fields = IssuerListItem.__struct_fields__
    return rendered(listed, lambda r: IssuerListItem(**{f: getattr(r, f) for f in fields}))


@post(ISSUERS, operation_id="createIssuer", summary="Create Issuer", tags=["Issuers"],
      guards=[require_scope("issuers:write")])  # fmt: skip
async def create_issuer(
    account_id: FromPath[str],
    data: JSONBody[IssuerCreate],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
) -> Response[One[IssuerOut]]:
    issuer_id = await issuers.create(account_id, create_fields(data), actor=principal.actor())
    return _one(await issuer_row(issuers, account_id, issuer_id), status=201)


@get(ISSUER, operation_id="getIssuer", summary="Get Issuer", tags=["Issuers"],
     guards=[require_scope("issuers:read")])  # fmt: skip
async def get_issuer(
    account_id: FromPath[str], issuer_id: FromPath[str], issuers: NamedDependency[Issuers]
) -> Response[One[IssuerOut]]:
    return _one(await issuer_row(issuers, account_id, issuer_id))


@patch(ISSUER, operation_id="updateIssuer", summary="Update Issuer", tags=["Issuers"],
       guards=[require_scope("issuers:write")])  # fmt: skip
async def update_issuer(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    data: JSONBody[IssuerPatch],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
    if_match: IfMatch = None,
) -> Response[One[IssuerOut]]:
    fields = patch_fields(data)
    await issuers.update(account_id, issuer_id, fields, actor=principal.actor(), if_match=if_match)
    return _one(await issuer_row(issuers, account_id, issuer_id))


@delete(ISSUER, operation_id="deleteIssuer", summary="Delete Issuer", tags=["Issuers"],
        guards=[require_scope("issuers:delete")], status_code=204)  # fmt: skip
async def delete_issuer(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
    if_match: IfMatch = None,
) -> Response[None]:
    await issuers.delete(account_id, issuer_id, actor=principal.actor(), if_match=if_match)
    return no_content()


ROUTES = [list_issuers, create_issuer, get_issuer, update_issuer, delete_issuer]
