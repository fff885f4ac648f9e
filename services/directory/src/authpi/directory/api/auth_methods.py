"""Issuer auth methods (core-api.md 3.7 "Auth methods", contract 4.16): an open union in the
SDK, here `{id, issuer_id, type, provider, name, enabled, login, signup, settings, metadata,
created_at, updated_at}`. The list is never paged (contract 3.4). Secrets are not accepted in
`settings`: events and snapshots carry none (platform.md 6.3)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.issuers import ISSUER, Name, issuer_row
from authpi.directory.domain.checks import secret_free
from authpi.directory.handlers.issuers import Issuers, require_known_ids
from authpi.directory.queries.issuers import MethodRow
from authpi.errors import FieldProblem, NotFound, Unprocessable
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

METHODS = ISSUER + "/auth-methods"
METHOD = METHODS + "/{method_id:str}"
MethodType = Literal["password", "magic_link", "otp", "passkey", "social"]
Provider = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType


class MethodCreate(msgspec.Struct, frozen=True, kw_only=True):
    type: MethodType
    provider: Provider | None = None
    name: Name | None = None
    enabled: bool = True
    login: bool = True
    signup: bool = True
    settings: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class MethodPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | Unset | None = UNSET
    enabled: bool | Unset = UNSET
    login: bool | Unset = UNSET
    signup: bool | Unset = UNSET
    settings: dict[str, Any] | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET


class MethodOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    type: str
    provider: str | None
    name: str | None
    enabled: bool
    login: bool
    signup: bool
    settings: dict[str, Any]
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: MethodRow) -> MethodOut:
        return cls(**msgspec.structs.asdict(row))


def _refuse(field: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} {message}")
    return Unprocessable(problem.message, reason="auth_method.invalid", fields=[problem])


def _check_settings(settings: dict[str, Any] | Unset | None, metadata: Any) -> None:
    if isinstance(metadata, dict):
        check_metadata(metadata)
    if isinstance(settings, dict):
        secret_free(settings, "settings")


def create_fields(data: MethodCreate) -> dict[str, Any]:
    check_storable(data)
    _check_settings(data.settings, data.metadata)
    if (data.type == "social") != (data.provider is not None):
        raise _refuse("provider", "is required for social methods and only for them")
    fields = msgspec.structs.asdict(data)
    return {**fields, "settings": data.settings or {}, "metadata": data.metadata or {}}


async def _row(issuers: Issuers, account_id: str, issuer_id: str, method_id: str) -> MethodRow:
    await issuer_row(issuers, account_id, issuer_id)
    require_known_ids(method_id)
    async with issuers.rt.pool.connection() as conn:
        rows = await issuers.queries.auth_methods(conn, issuer_id, method_id)
    if not rows:
        raise NotFound("no such auth method", reason="auth_method.not_found")
    return rows[0]


def _one(row: MethodRow, status: int = 200) -> Response[One[MethodOut]]:
    return one(MethodOut.of(row), etag=etag_of(row.created_at, row.updated_at), status=status)


@get(METHODS, operation_id="listAuthMethods", summary="List Auth Methods", tags=["Issuers"],
     guards=[require_scope("issuers.auth-methods:read")])  # fmt: skip
async def list_auth_methods(
    account_id: FromPath[str], issuer_id: FromPath[str], issuers: NamedDependency[Issuers]
) -> Page[MethodOut]:
    await issuer_row(issuers, account_id, issuer_id)
    async with issuers.rt.pool.connection() as conn:
        rows = await issuers.queries.auth_methods(conn, issuer_id)
    return Page(data=[MethodOut.of(r) for r in rows], has_more=False, next_cursor=None)


@post(METHODS, operation_id="createAuthMethod", summary="Create Auth Method", tags=["Issuers"],
      guards=[require_scope("issuers.auth-methods:write")])  # fmt: skip
async def create_auth_method(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    data: JSONBody[MethodCreate],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
) -> Response[One[MethodOut]]:
    fields = create_fields(data)
    method_id = await issuers.create_auth_method(
        account_id, issuer_id, fields, actor=principal.actor()
    )
    return _one(await _row(issuers, account_id, issuer_id, method_id), status=201)


@get(METHOD, operation_id="getAuthMethod", summary="Get Auth Method", tags=["Issuers"],
     guards=[require_scope("issuers.auth-methods:read")])  # fmt: skip
async def get_auth_method(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    method_id: FromPath[str],
    issuers: NamedDependency[Issuers],
) -> Response[One[MethodOut]]:
    return _one(await _row(issuers, account_id, issuer_id, method_id))


@patch(METHOD, operation_id="updateAuthMethod", summary="Update Auth Method", tags=["Issuers"],
       guards=[require_scope("issuers.auth-methods:write")])  # fmt: skip
async def update_auth_method(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    method_id: FromPath[str],
    data: JSONBody[MethodPatch],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
    if_match: IfMatch = None,
) -> Response[One[MethodOut]]:
    check_storable(data)
    _check_settings(data.settings, data.metadata)
    fields = {f: getattr(data, f) for f in data.__struct_fields__}
    patch_ = {k: v for k, v in fields.items() if v is not UNSET}
    await issuers.update_auth_method(
        account_id, issuer_id, method_id, patch_, actor=principal.actor(), if_match=if_match
    )
    return _one(await _row(issuers, account_id, issuer_id, method_id))


@delete(METHOD, operation_id="deleteAuthMethod", summary="Delete Auth Method", tags=["Issuers"],
        guards=[require_scope("issuers.auth-methods:delete")], status_code=204)  # fmt: skip
async def delete_auth_method(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    method_id: FromPath[str],
    principal: InjectedPrincipal,
    issuers: NamedDependency[Issuers],
    if_match: IfMatch = None,
) -> Response[None]:
    await issuers.delete_auth_method(
        account_id, issuer_id, method_id, actor=principal.actor(), if_match=if_match
    )
    return no_content()


ROUTES = [
    list_auth_methods, create_auth_method, get_auth_method, update_auth_method, delete_auth_method
]  # fmt: skip
