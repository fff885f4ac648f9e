"""Account API keys over HTTP (core-api.md 3.4, contract 4.3 and the API key models of 5.10):
list with filters, create (the secret shown once), get, update, delete, block, unblock, revoke and
rotate. Scopes (core-api.md 5.2): read to list/get, write to create/update/block/unblock/revoke,
delete to delete, manage to rotate. A caller grants only scopes it holds itself, and acts only
on keys whose scopes it holds (the grant-subset rule, domain/grant_subset.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.scopes import is_known
from authpi.directory.api.pages import rendered
from authpi.directory.domain.commands.api_key import UpdateApiKey
from authpi.directory.handlers.accounts import Directory
from authpi.directory.handlers.api_keys import KeyDetails, KeyRestrictions, StatusChange
from authpi.directory.queries.accounts import KeyFilters, KeyRow
from authpi.errors import FieldProblem, InsufficientScope, InvalidRequest, NotFound, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.text import check_storable

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Text = Annotated[str, msgspec.Meta(max_length=1000)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=50)]
Scopes = Annotated[list[Annotated[str, msgspec.Meta(max_length=200)]], msgspec.Meta(max_length=200)]
Allowlist = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=100)]], msgspec.Meta(max_length=50)
]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]

COLLECTION = "api-keys"
_FILTERS = {
    "status": ("active", "blocked", "revoked", "expired", "suspended"),
    "access": ("none", "read", "write"),
    "readiness": ("ready", "attention"),
}


class ApiKeyRestrictions(msgspec.Struct, frozen=True, kw_only=True):
    scopes: Scopes = msgspec.field(default_factory=list)
    ip_allowlist: Allowlist = msgspec.field(default_factory=list)


class ApiKeyRestrictionsPatch(msgspec.Struct, frozen=True, kw_only=True):
    scopes: Scopes | msgspec.UnsetType | None = msgspec.UNSET
    ip_allowlist: Allowlist | msgspec.UnsetType | None = msgspec.UNSET


class ApiKeySecret(msgspec.Struct, frozen=True):
    algorithm: str
    hint: str


class ApiKeyOut(msgspec.Struct, frozen=True, kw_only=True):
    """The `ApiKey` model, in its wire order (contract 5.10)."""

    issuer_id: str
    type: str
    name: str
    description: str | None
    tags: list[str]
    restrictions: ApiKeyRestrictions
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    expires_at: int | None
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None
    id: str
    org_id: str
    secret: ApiKeySecret

    @classmethod
    def of(cls, row: KeyRow) -> ApiKeyOut:
        return cls(**_fields(row))


class ApiKeyWithSecret(ApiKeyOut, frozen=True, kw_only=True):
    """Create and rotate responses: the key plus its plaintext secret, shown this once."""

    secret_plain: str

    @classmethod
    def with_secret(cls, row: KeyRow, secret: str) -> ApiKeyWithSecret:
        return cls(**_fields(row), secret_plain=secret)


class ApiKeyListItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    issuer_id: str
    type: str
    status: str
    name: str
    description: str | None
    tags: list[str]
    scopes: list[str]
    ip_allowlist: list[str]
    expires_at: int | None
    secret_hint: str | None
    last_rotated_at: int | None
    status_at: int | None
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, r: KeyRow) -> ApiKeyListItem:
        return cls(
            id=r.id, org_id=r.org_id, issuer_id=r.issuer_id or PLATFORM_ISSUER_ID, type="api_key",
            status=r.status, name=r.name, description=r.description, tags=r.tags,
            scopes=r.scopes, ip_allowlist=r.ip_allowlist, expires_at=r.expires_at,
            secret_hint=r.secret_hint, last_rotated_at=r.last_rotated_at, status_at=r.status_at,
            created_at=r.created_at, updated_at=r.updated_at,
        )  # fmt: skip


def _fields(r: KeyRow) -> dict[str, Any]:
    return dict(
        issuer_id=r.issuer_id or PLATFORM_ISSUER_ID, type="api_key", name=r.name,
        description=r.description, tags=r.tags,
        restrictions=ApiKeyRestrictions(scopes=r.scopes, ip_allowlist=r.ip_allowlist),
        status=r.status, status_at=r.status_at, status_reason=r.status_reason,
        status_by=r.status_by, expires_at=r.expires_at, metadata=r.metadata,
        created_at=r.created_at, updated_at=r.updated_at, id=r.id, org_id=r.org_id,
        secret=ApiKeySecret("sha256", r.secret_hint),
    )  # fmt: skip


class CreateApiKeyBody(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    restrictions: ApiKeyRestrictions
    description: Text | None = None
    tags: Tags | None = None
    expires_at: Millis | None = None
    metadata: dict[str, Any] | None = None
    # A caller-supplied secret (migrations, core-api.md 3.4); otherwise one is generated.
    secret: Annotated[str, msgspec.Meta(min_length=32, max_length=512)] | None = None
    secret_hint: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class UpdateApiKeyBody(msgspec.Struct, frozen=True, kw_only=True):
    """PATCH body (SDK `UpdateApiKey`): absent or null keeps a field, except `description` and
    `expires_at` (null clears) and `metadata` (the merge rule of core-api.md 2.6)."""

    name: Name | msgspec.UnsetType | None = msgspec.UNSET
    description: Text | msgspec.UnsetType | None = msgspec.UNSET
    tags: Tags | msgspec.UnsetType | None = msgspec.UNSET
    restrictions: ApiKeyRestrictionsPatch | msgspec.UnsetType | None = msgspec.UNSET
    expires_at: Millis | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    status: Literal["active", "blocked"] | msgspec.UnsetType | None = msgspec.UNSET
    status_reason: Reason | None = None
    status_by: By | None = None


class ApiKeyStatusBody(msgspec.Struct, frozen=True, kw_only=True):
    status_reason: Reason | None = None
    status_by: By | None = None


class RotateApiKeyBody(msgspec.Struct, frozen=True, kw_only=True):
    """Rotation takes no options; an object body (or none) is accepted and ignored."""


def _unprocessable(field: str, text: str, reason: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} {text}")
    return Unprocessable(problem.message, reason=reason, fields=[problem])


ScopeCheck = Callable[[Sequence[str], Principal], None]


def check_scopes(scopes: Sequence[str], principal: Principal) -> None:
    """Known scopes only (422), and only scopes the caller holds itself (403)."""
    for i, scope in enumerate(scopes):
        if not is_known(scope):
            field = f"restrictions.scopes.{i}"
            raise _unprocessable(field, f"{scope[:60]!r} is not a known scope", "api_key.scope")
    for scope in scopes:
        if not principal.may(scope):
            raise InsufficientScope(
                f"a key may only be granted scopes its creator holds; missing {scope}",
                reason="api_key.grant_beyond_caller",
            )


def check_org_scopes(scopes: Sequence[str], principal: Principal) -> None:
    """An organization-level key's scopes are the customer's free-form strings (core-api.md
    3.4); a Core API scope among them may be granted only by a caller holding it, or an
    organization's key could mint a stronger one."""
    for scope in scopes:
        if is_known(scope) and not principal.may(scope):
            raise InsufficientScope(
                f"a key may not be granted {scope}, which the caller does not hold",
                reason="api_key.grant_exceeds_caller",
            )


def scope_check_for(row: KeyRow) -> ScopeCheck:
    """Account-level keys hold Core API scopes; organization-level keys free-form ones."""
    account_level = row.issuer_id in (None, PLATFORM_ISSUER_ID)
    return check_scopes if account_level else check_org_scopes


def check_allowlist(entries: Sequence[str]) -> None:
    for i, entry in enumerate(entries):
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            field = f"restrictions.ip_allowlist.{i}"
            raise _unprocessable(
                field, "is not an IP address or CIDR range", "api_key.ip"
            ) from None


def check_expiry(expires_at: int | None, now: int) -> None:
    if expires_at is not None and expires_at <= now:
        raise _unprocessable("expires_at", "must be in the future", "api_key.expires_at")


def known_form(key_id: str) -> str:
    """A path id that cannot name a stored key (core-api.md 2.7) is simply not found."""
    if not key_id or "\x00" in key_id or len(key_id) > 200 or not key_id.isprintable():
        raise NotFound("no such API key", reason="api_key.malformed_id")
    return key_id


async def key_row(directory: Directory, account_id: str, key_id: str) -> KeyRow:
    async with directory.rt.pool.connection() as conn:
        row = await directory.account_queries.api_key(
            conn, account_id, known_form(key_id), directory.rt.clock.now_ms()
        )
    if row is None:
        raise NotFound("no such API key", reason="api_key.not_found")
    return row


def key_response(row: KeyRow) -> Response[One[ApiKeyOut]]:
    return one(ApiKeyOut.of(row), etag=etag_of(row.created_at, row.updated_at))


async def current_key(
    directory: Directory, account_id: str, key_id: str
) -> Response[One[ApiKeyOut]]:
    """The key as it is now: a read, or the answer after a write."""
    return key_response(await key_row(directory, account_id, key_id))


async def key_with_secret(
    directory: Directory, account_id: str, key_id: str, secret: str, status: int = 200
) -> Response[One[ApiKeyWithSecret]]:
    """The key as it is now plus its plaintext secret (create and rotate), shown this once."""
    row = await key_row(directory, account_id, key_id)
    out = ApiKeyWithSecret.with_secret(row, secret)
    return one(out, etag=etag_of(row.created_at, row.updated_at), status=status)


def _filters(
    q: str | None, status: str | None, access: str | None, readiness: str | None
) -> KeyFilters:
    given = {"status": status, "access": access, "readiness": readiness}
    for name, value in given.items():
        if value is not None and value not in _FILTERS[name]:
            allowed = ", ".join(_FILTERS[name])
            problem = FieldProblem(
                field=name, code="invalid_value", message=f"{name} must be one of {allowed}"
            )
            raise InvalidRequest(problem.message, reason="api_key.filter", fields=[problem])
    if q is not None and "\x00" in q:
        problem = FieldProblem(field="q", code="invalid_value", message="q is not valid text")
        raise InvalidRequest(problem.message, reason="api_key.filter", fields=[problem])
    return KeyFilters(q=q or None, status=status, access=access, readiness=readiness)


@get(
    "/v1/accounts/{account_id:str}/api-keys",
    operation_id="listAccountApiKeys",
    summary="List Account API Keys",
    tags=["API Keys"],
    guards=[require_scope("api-keys:read")],
)
async def list_api_keys(
    account_id: FromPath[str],
    page: InjectedPage,
    directory: NamedDependency[Directory],
    q: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    access: FromQuery[str | None] = None,
    readiness: FromQuery[str | None] = None,
) -> Page[ApiKeyListItem]:
    filters = _filters(q, status, access, readiness)
    now = directory.rt.clock.now_ms()
    async with directory.rt.pool.connection() as conn:
        rows = await directory.account_queries.api_keys(
            conn, account_id, filters, page.after_time_id(COLLECTION), page.fetch_limit, now
        )
    listed = paginate(rows, page, COLLECTION, lambda r: (r.created_at, r.id))
    return rendered(listed, ApiKeyListItem.of)


@post(
    "/v1/accounts/{account_id:str}/api-keys",
    operation_id="createAccountApiKey",
    summary="Create Account API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:write")],
)
async def create_api_key(
    account_id: FromPath[str],
    data: JSONBody[CreateApiKeyBody],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
) -> Response[One[ApiKeyWithSecret]]:
    check_storable(data)
    check_scopes(data.restrictions.scopes, principal)
    check_allowlist(data.restrictions.ip_allowlist)
    check_expiry(data.expires_at, directory.rt.clock.now_ms())
    check_metadata(data.metadata)
    limits = KeyRestrictions(
        ip_allowlist=tuple(e.strip() for e in data.restrictions.ip_allowlist),
        expires_at=data.expires_at,
    )
    details = KeyDetails(
        description=data.description,
        tags=tuple(data.tags or ()),
        metadata=data.metadata or {},
        secret=data.secret,
        secret_hint=data.secret_hint,
    )
    key = await directory.create_api_key(
        account_id,
        data.name,
        list(dict.fromkeys(data.restrictions.scopes)),
        actor=principal.actor(),
        restrictions=limits,
        details=details,
    )
    return await key_with_secret(directory, account_id, key.key_id, key.secret, status=201)


@get(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}",
    operation_id="getApiKey",
    summary="Get API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:read")],
)
async def get_api_key(
    account_id: FromPath[str], key_id: FromPath[str], directory: NamedDependency[Directory]
) -> Response[One[ApiKeyOut]]:
    return await current_key(directory, account_id, key_id)


@patch(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}",
    operation_id="updateApiKey",
    summary="Update API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:write")],
)
async def update_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    data: JSONBody[UpdateApiKeyBody],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
) -> Response[One[ApiKeyOut]]:
    # The account-level routes manage organization-level keys too (core-api.md 3.4, 7 #10).
    row = await key_row(directory, account_id, key_id)
    await apply_update(directory, account_id, row, data, principal, if_match, scope_check_for(row))
    return await current_key(directory, account_id, key_id)


async def apply_update(
    directory: Directory, account_id: str, row: KeyRow, data: UpdateApiKeyBody,
    principal: Principal, if_match: str | None, check: ScopeCheck,
) -> None:  # fmt: skip
    """A PATCH of a key already found (account- or organization-level route), checked."""
    now = directory.rt.clock.now_ms()
    cmd = update_command(account_id, row.id, data, principal, now, check)
    await directory.update_api_key(
        msgspec.structs.replace(cmd, if_match=if_match, held=principal.scopes), principal.actor()
    )


def update_command(
    account_id: str, key_id: str, data: UpdateApiKeyBody, principal: Principal, now: int,
    check: ScopeCheck = check_scopes,
) -> UpdateApiKey:  # fmt: skip
    check_storable(data)
    limits = data.restrictions if isinstance(data.restrictions, ApiKeyRestrictionsPatch) else None
    scopes = limits.scopes if limits is not None and limits.scopes is not None else msgspec.UNSET
    allow = (
        limits.ip_allowlist
        if limits is not None and limits.ip_allowlist is not None
        else msgspec.UNSET
    )
    if isinstance(scopes, list):
        check(scopes, principal)
        scopes = list(dict.fromkeys(scopes))
    if isinstance(allow, list):
        check_allowlist(allow)
        allow = [e.strip() for e in allow]
    if isinstance(data.expires_at, int):
        check_expiry(data.expires_at, now)
    if isinstance(data.metadata, dict):
        check_metadata(data.metadata)
    keep = msgspec.UNSET
    return UpdateApiKey(
        key_id=key_id, account_id=account_id, now=now,
        name=keep if data.name is None else data.name,
        description=data.description,
        tags=keep if data.tags is None else data.tags,
        scopes=scopes, ip_allowlist=allow,
        expires_at=data.expires_at, metadata=data.metadata,
        status=keep if data.status is None else data.status,
        status_reason=data.status_reason, status_by=data.status_by,
    )  # fmt: skip


@delete(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}",
    operation_id="deleteApiKey",
    summary="Delete API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:delete")],
)
async def delete_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
) -> Response[None]:
    await directory.delete_api_key(
        account_id, known_form(key_id), actor=principal.actor(), if_match=if_match,
        held=principal.scopes,
    )  # fmt: skip
    return no_content()


@post(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}/block",
    operation_id="blockApiKey",
    summary="Block API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:write")],
)
async def block_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
    data: JSONBody[ApiKeyStatusBody | None] = None,
) -> Response[One[ApiKeyOut]]:
    change = status_change(data, if_match)
    await directory.block_api_key(
        account_id, known_form(key_id), actor=principal.actor(), change=change,
        held=principal.scopes,
    )  # fmt: skip
    return await current_key(directory, account_id, key_id)


@post(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}/unblock",
    operation_id="unblockApiKey",
    summary="Unblock API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:write")],
)
async def unblock_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
) -> Response[One[ApiKeyOut]]:
    await directory.unblock_api_key(
        account_id, known_form(key_id), actor=principal.actor(), if_match=if_match,
        held=principal.scopes,
    )  # fmt: skip
    return await current_key(directory, account_id, key_id)


@post(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}/revoke",
    operation_id="revokeApiKey",
    summary="Revoke API Key",
    tags=["API Keys"],
    guards=[require_scope("api-keys:write")],
)
async def revoke_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
    data: JSONBody[ApiKeyStatusBody | None] = None,
) -> Response[One[ApiKeyOut]]:
    change = status_change(data, if_match)
    await directory.revoke_api_key(
        account_id, known_form(key_id), actor=principal.actor(), change=change,
        held=principal.scopes,
    )  # fmt: skip
    return await current_key(directory, account_id, key_id)


@post(
    "/v1/accounts/{account_id:str}/api-keys/{key_id:str}/rotate",
    operation_id="rotateApiKey",
    summary="Rotate API Key Secret",
    tags=["API Keys"],
    guards=[require_scope("api-keys:manage")],
)
async def rotate_api_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
    data: JSONBody[RotateApiKeyBody | None] = None,
) -> Response[One[ApiKeyWithSecret]]:
    rotated = await directory.rotate_api_key(
        account_id, known_form(key_id), actor=principal.actor(), if_match=if_match,
        held=principal.scopes,
    )  # fmt: skip
    return await key_with_secret(directory, account_id, key_id, rotated.secret)


def status_change(data: ApiKeyStatusBody | None, if_match: str | None) -> StatusChange:
    """The optional body of block and revoke (absent or null: no reason given), checked, with
    the request's If-Match precondition."""
    body = data or ApiKeyStatusBody()
    check_storable(body)
    return StatusChange(
        status_reason=body.status_reason, status_by=body.status_by, if_match=if_match
    )


def api_keys_router(directory: Directory) -> Router:
    return Router(
        "/",
        route_handlers=[
            list_api_keys, create_api_key, get_api_key, update_api_key, delete_api_key,
            block_api_key, unblock_api_key, revoke_api_key, rotate_api_key,
        ],
        dependencies={"directory": provide(directory)},
    )  # fmt: skip
