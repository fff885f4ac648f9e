"""Personal tokens (core-api.md 3.5; contract 4.4, 4.23, `PersonalToken`, `UserTokensListItem`,
`UserTokensCreateResponse` in 5.10) and issuer token introspection (3.6, contract 4.20). Lists and
creation are per user; reads, revocation and deletion go through the account view."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.contracts.scopes import is_known
from authpi.directory.api.pages import rendered
from authpi.directory.handlers.personal_tokens import NewToken, PersonalTokens, effective_status
from authpi.directory.queries.users import TokenRow
from authpi.errors import FieldProblem, InvalidRequest, Unprocessable
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.text import check_storable

ISSUER = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}"
USER_TOKENS = ISSUER + "/users/{user_id:str}/tokens"
TOKEN = "/v1/accounts/{account_id:str}/tokens/{token_id:str}"
STATUSES = ("active", "blocked", "revoked", "expired", "suspended")

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=1000)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Scope = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Audience = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Token = Annotated[str, msgspec.Meta(max_length=8192)]


class Restrictions(msgspec.Struct, frozen=True, kw_only=True):
    scopes: Annotated[list[Scope], msgspec.Meta(max_length=200)] = msgspec.field(
        default_factory=list
    )


class TokenCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Text | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    restrictions: Restrictions = msgspec.field(default_factory=Restrictions)
    expires_at: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None
    audience: Audience | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class RevokeBody(msgspec.Struct, frozen=True, kw_only=True):
    status_reason: Text | None = None
    status_by: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class IntrospectBody(msgspec.Struct, frozen=True, kw_only=True):
    token: Token | None = None
    ip: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class TokenRestrictions(msgspec.Struct, frozen=True):
    scopes: list[str]


class PersonalTokenOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    user_id: str
    issuer_id: str
    name: str
    description: str | None
    tags: list[str]
    restrictions: TokenRestrictions
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    expires_at: int | None
    audience: str | None
    jti: str
    hint: str
    metadata: dict[str, Any]
    created_at: int
    updated_at: int | None


class CreatedTokenOut(PersonalTokenOut, frozen=True, kw_only=True):
    """The create response: the token fields plus `token_plain`, shown this once."""

    token_plain: str


class TokenListItem(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    user_id: str
    issuer_id: str
    status: str
    name: str
    description: str | None
    tags: list[str]
    scopes: list[str]
    audience: str | None
    expires_at: int | None
    created_at: int
    updated_at: int | None


def _fields(row: TokenRow, now: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": "personal_token",
        "user_id": row.user_id,
        "issuer_id": row.issuer_id,
        "name": row.name,
        "description": row.description,
        "tags": row.tags,
        "restrictions": TokenRestrictions(row.scopes),
        "status": effective_status(row, now),
        "status_at": row.status_at,
        "status_reason": row.status_reason,
        "status_by": row.status_by,
        "expires_at": row.expires_at,
        "audience": row.audience,
        "jti": row.jti,
        "hint": row.token_hint,
        "metadata": row.metadata,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _list_item(row: TokenRow, now: int) -> TokenListItem:
    return TokenListItem(
        id=row.id,
        user_id=row.user_id,
        issuer_id=row.issuer_id,
        status=effective_status(row, now),
        name=row.name,
        description=row.description,
        tags=row.tags,
        scopes=row.scopes,
        audience=row.audience,
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _token(tokens: PersonalTokens, row: TokenRow) -> Response[One[PersonalTokenOut]]:
    out = PersonalTokenOut(**_fields(row, tokens.rt.clock.now_ms()))
    return one(out, etag=etag_of(row.created_at, row.updated_at))


def _refuse(field: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=message)
    return Unprocessable(message, reason=f"personal_token.{field}", fields=[problem])


def new_token(data: TokenCreate, principal: Principal) -> NewToken:
    """A token may carry only catalogue scopes its creator holds (core-api.md 5.1)."""
    check_storable(data)
    check_metadata(data.metadata)
    for i, scope in enumerate(data.restrictions.scopes):
        if not is_known(scope):
            raise _refuse(f"restrictions.scopes.{i}", f"{scope!r} is not a known scope")
        if not principal.may(scope):
            raise _refuse(f"restrictions.scopes.{i}", f"the caller does not hold {scope}")
    return NewToken(
        name=data.name,
        description=data.description,
        tags=data.tags,
        scopes=sorted(set(data.restrictions.scopes)),
        audience=data.audience,
        expires_at=data.expires_at,
        metadata=data.metadata,
    )


def _status_filter(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        problem = FieldProblem(field="status", code="invalid_value", message="unknown status")
        raise InvalidRequest(
            "unknown status filter", reason="personal_token.status", fields=[problem]
        )
    return status


@get(
    USER_TOKENS,
    operation_id="listUserTokens",
    summary="List Personal Tokens",
    tags=["Personal tokens"],
    guards=[require_scope("issuers.users.tokens:read")],
)
async def list_user_tokens(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    page: InjectedPage,
    tokens: NamedDependency[PersonalTokens],
    status: FromQuery[str | None] = None,
) -> Page[TokenListItem]:
    rows = await tokens.list(
        account_id,
        issuer_id,
        user_id,
        _status_filter(status),
        page.after("tokens"),
        page.fetch_limit,
    )
    listed = paginate(rows, page, "tokens", lambda r: (r.created_at, r.id))
    now = tokens.rt.clock.now_ms()
    return rendered(listed, lambda r: _list_item(r, now))


@post(
    USER_TOKENS,
    operation_id="createUserToken",
    summary="Create Personal Token",
    tags=["Personal tokens"],
    guards=[require_scope("issuers.users.tokens:write")],
)
async def create_user_token(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    data: JSONBody[TokenCreate],
    principal: InjectedPrincipal,
    tokens: NamedDependency[PersonalTokens],
) -> Response[One[CreatedTokenOut]]:
    new = new_token(data, principal)
    row, value = await tokens.create(account_id, issuer_id, user_id, new, principal.actor())
    out = CreatedTokenOut(token_plain=value, **_fields(row, tokens.rt.clock.now_ms()))
    return one(out, etag=etag_of(row.created_at, row.updated_at), status=201)


@get(
    TOKEN,
    operation_id="getPersonalToken",
    summary="Get Personal Token",
    tags=["Personal tokens"],
    guards=[require_scope("tokens:read")],
)
async def get_token(
    account_id: FromPath[str], token_id: FromPath[str], tokens: NamedDependency[PersonalTokens]
) -> Response[One[PersonalTokenOut]]:
    row = await tokens.get(account_id, token_id)
    return _token(tokens, row)


@post(
    TOKEN + "/revoke",
    operation_id="revokePersonalToken",
    summary="Revoke Personal Token",
    tags=["Personal tokens"],
    guards=[require_scope("tokens:write")],
    status_code=200,
)
async def revoke_token(
    account_id: FromPath[str],
    token_id: FromPath[str],
    principal: InjectedPrincipal,
    tokens: NamedDependency[PersonalTokens],
    if_match: IfMatch = None,
    data: JSONBody[RevokeBody] = RevokeBody(),
) -> Response[One[PersonalTokenOut]]:
    check_storable(data)
    fields = {
        "status_reason": data.status_reason,
        "status_by": data.status_by,
        "if_match": if_match,
    }
    row = await tokens.revoke(account_id, token_id, principal.actor(), fields, principal.scopes)
    return _token(tokens, row)


@delete(
    TOKEN,
    operation_id="deletePersonalToken",
    summary="Delete Personal Token",
    tags=["Personal tokens"],
    guards=[require_scope("tokens:delete")],
    status_code=204,
)
async def delete_token(
    account_id: FromPath[str],
    token_id: FromPath[str],
    principal: InjectedPrincipal,
    tokens: NamedDependency[PersonalTokens],
    if_match: IfMatch = None,
) -> Response[None]:
    await tokens.delete(account_id, token_id, principal.actor(), if_match, principal.scopes)
    return no_content()


@post(
    ISSUER + "/tokens/introspect",
    operation_id="introspectToken",
    summary="Introspect Token",
    tags=["Token introspection"],
    guards=[require_scope("issuers.tokens:read")],
    status_code=200,
)
async def introspect_token(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    tokens: NamedDependency[PersonalTokens],
    data: JSONBody[IntrospectBody] = IntrospectBody(),
) -> Response[One[dict[str, Any]]]:
    if not data.token:
        problem = FieldProblem(field="token", code="required", message="token is required")
        raise InvalidRequest("token is required", reason="introspect.token", fields=[problem])
    answer = await tokens.introspect(account_id, issuer_id, data.token, data.ip)
    return one(answer)


def tokens_router(tokens: PersonalTokens) -> Router:
    return Router(
        "/",
        route_handlers=[
            list_user_tokens,
            create_user_token,
            get_token,
            revoke_token,
            delete_token,
            introspect_token,
        ],
        dependencies={"tokens": provide(tokens)},
    )
