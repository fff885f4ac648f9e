"""Users of an issuer (core-api.md 3.9, contract 4.21, `User` and `IssuerUsersListItem` in 5.7).
The list returns index records only (username hash, store and region), never a username; Get
User returns the full object while the user exists."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.directory.api.pages import rendered
from authpi.directory.handlers.users import NewUser, UserChanges, Users, normalized_username
from authpi.directory.queries.users import UserIndexRow, UserRow
from authpi.errors import FieldProblem, InvalidRequest, Unprocessable
from authpi.eventstore.reads import reading
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.metadata import check_custom_fields, check_metadata
from authpi.web.opts import DIRECT_READ
from authpi.web.pagination import InjectedPage, PageQuery, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal, Principal
from authpi.web.reads import Answer, DirectRead
from authpi.web.text import check_storable

USERS = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/users"
USER = USERS + "/{user_id:str}"
LIST_STATUSES = ("active", "suspended", "disabled", "deleted", "pending_approval", "blocked")

Username = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
Scope = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Scopes = Annotated[list[Scope], msgspec.Meta(max_length=100)]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]
DisplayName = Annotated[str, msgspec.Meta(max_length=200)]


class UserCreate(msgspec.Struct, frozen=True, kw_only=True):
    """`email` and `display_name` are the documented shorthands (core-api.md 3.9)."""

    username_type: Literal["email", "unique-name", "phone"] | None = None
    username: Username | None = None
    email: Username | None = None
    display_name: DisplayName | None = None
    password: str | None = None
    profile: dict[str, Any] = msgspec.field(default_factory=dict)
    scopes: Scopes = msgspec.field(default_factory=list)
    custom_fields: dict[str, Any] = msgspec.field(default_factory=dict)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class UserPatch(msgspec.Struct, frozen=True, kw_only=True):
    profile: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    scopes: Scopes | msgspec.UnsetType = msgspec.UNSET
    status: Literal["active", "suspended", "disabled"] | None = None
    status_reason: Reason | None = None
    status_by: By | None = None
    custom_fields: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    metadata: dict[str, Any] | msgspec.UnsetType | None = msgspec.UNSET
    password: str | None = None


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    status_at: int | None
    status_reason: str | None
    status_by: str | None
    username_type: str
    username: str
    profile: dict[str, Any]
    scopes: list[str]
    security: dict[str, Any]
    compliance: dict[str, Any]
    preferences: dict[str, Any]
    approval: dict[str, Any] | None
    custom_fields: dict[str, Any]
    metadata: dict[str, Any]
    region: str
    store_id: str
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: UserRow) -> UserOut:
        return cls(
            id=row.id,
            issuer_id=row.issuer_id,
            status=row.status,
            status_at=row.status_at,
            status_reason=row.status_reason,
            status_by=row.status_by,
            username_type=row.username_type,
            username=row.username or "",
            profile=row.profile,
            scopes=row.scopes,
            security={},
            compliance={},
            preferences={},
            approval=row.approval,
            custom_fields=row.custom_fields,
            metadata=row.metadata,
            region=row.region,
            store_id=row.store_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class UserListItem(msgspec.Struct, frozen=True, kw_only=True):
    """An index record (`IssuerUsersListItem`): no username, no profile."""

    user_id: str
    issuer_id: str
    username_hash: str
    username_type: str
    status: str
    store_id: str
    region: str | None
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: UserIndexRow) -> UserListItem:
        return cls(
            user_id=row.id,
            issuer_id=row.issuer_id,
            username_hash=row.username_hash,
            username_type=row.username_type,
            status=row.status,
            store_id=row.store_id,
            region=row.region,
            created_at=row.created_at,
            updated_at=row.updated_at or row.created_at,
        )


def _user(row: UserRow, status: int = 200) -> Response[One[UserOut]]:
    return one(UserOut.of(row), etag=etag_of(row.created_at, row.updated_at), status=status)


def _unprocessable(field: str, code: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code=code, message=message)
    return Unprocessable(message, reason=f"user.{field}", fields=[problem])


def _no_password(password: str | None) -> None:
    # Passwords are credentials of the token service (DESIGN.md 2); they are set through the
    # user's verifiers, never carried by a directory event.
    if password is not None:
        raise _unprocessable(
            "password", "unsupported", "password is set through the user's verifiers"
        )


def new_user(data: UserCreate) -> NewUser:
    """The create body, checked and normalized (emails lower-cased, phones E.164)."""
    check_storable(data)
    _no_password(data.password)
    kind = data.username_type or ("email" if data.email is not None else None)
    raw = data.username if data.username is not None else data.email
    if kind is None:
        raise _unprocessable("username_type", "required", "username_type is required")
    if raw is None or not raw.strip():
        raise _unprocessable("username", "required", "username is required")
    username = _normalized(kind, raw.strip())
    profile = dict(data.profile)
    if data.display_name is not None:
        profile.setdefault("display_name", data.display_name)
    _check_objects(profile, data.custom_fields, data.metadata)
    return NewUser(
        username_type=kind,
        username=username,
        profile=profile,
        custom_fields=data.custom_fields,
        scopes=data.scopes,
        metadata=data.metadata,
    )


def _normalized(kind: str, username: str) -> str:
    return normalized_username(kind, username)


def _check_objects(profile: Any, custom_fields: Any, metadata: Any) -> None:
    if isinstance(profile, dict):
        check_metadata(profile, "profile")
    if isinstance(custom_fields, dict):
        check_custom_fields(custom_fields)
    if isinstance(metadata, dict):
        check_metadata(metadata)


def _status_filter(status: str | None) -> str | None:
    if status is not None and status not in LIST_STATUSES:
        problem = FieldProblem(field="status", code="invalid_value", message="unknown status")
        raise InvalidRequest("unknown status filter", reason="user.status", fields=[problem])
    return status


async def users_page(
    users: Users, account_id: str, issuer_id: str, page: PageQuery, status: str | None
) -> Page[UserListItem]:
    async with reading(users.rt.pool) as conn:
        await users.require_issuer(account_id, issuer_id, conn)
        rows = await users.queries.users(
            conn, issuer_id, _status_filter(status), page.after("users"), page.fetch_limit
        )
    listed = paginate(rows, page, "users", lambda r: (r.created_at, r.id))
    return rendered(listed, UserListItem.of)


async def first_users_page(_: Principal, params: Mapping[str, str], users: Users) -> Answer:
    """The direct read of a list without query parameters: the first page, default limit."""
    return Answer(
        await users_page(users, params["account_id"], params["issuer_id"], PageQuery(), None)
    )


@get(
    USERS,
    operation_id="listUsers",
    summary="List Users",
    tags=["Users"],
    guards=[require_scope("issuers.users:read")],
    opt={DIRECT_READ: DirectRead(first_users_page, needs=("users",))},
)
async def list_users(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    page: InjectedPage,
    users: NamedDependency[Users],
    status: FromQuery[str | None] = None,
) -> Page[UserListItem]:
    return await users_page(users, account_id, issuer_id, page, status)


@post(
    USERS,
    operation_id="createUser",
    summary="Create User",
    tags=["Users"],
    guards=[require_scope("issuers.users:write")],
)
async def create_user(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    data: JSONBody[UserCreate],
    principal: InjectedPrincipal,
    users: NamedDependency[Users],
) -> Response[One[UserOut]]:
    row = await users.create(account_id, issuer_id, new_user(data), principal.actor())
    return _user(row, status=201)


async def user_answer(_: Principal, params: Mapping[str, str], users: Users) -> Answer:
    row = await users.get(params["account_id"], params["issuer_id"], params["user_id"])
    return Answer(One(UserOut.of(row)), etag_of(row.created_at, row.updated_at))


@get(
    USER,
    operation_id="getUser",
    summary="Get User",
    tags=["Users"],
    guards=[require_scope("issuers.users:read")],
    opt={DIRECT_READ: DirectRead(user_answer, needs=("users",))},
)
async def get_user(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    principal: InjectedPrincipal,
    users: NamedDependency[Users],
) -> Response[One[UserOut]]:
    params = {"account_id": account_id, "issuer_id": issuer_id, "user_id": user_id}
    return (await user_answer(principal, params, users)).response()


@patch(
    USER,
    operation_id="updateUser",
    summary="Update User",
    tags=["Users"],
    guards=[require_scope("issuers.users:write")],
)
async def update_user(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    data: JSONBody[UserPatch],
    principal: InjectedPrincipal,
    users: NamedDependency[Users],
    if_match: IfMatch = None,
) -> Response[One[UserOut]]:
    check_storable(data)
    _no_password(data.password)
    _check_objects(data.profile, data.custom_fields, data.metadata)
    changes = UserChanges(
        profile=data.profile,
        custom_fields=data.custom_fields,
        metadata=data.metadata,
        scopes=data.scopes,
        status=data.status,
        status_reason=data.status_reason,
        status_by=data.status_by,
    )
    row = await users.update(account_id, issuer_id, user_id, changes, principal.actor(), if_match)
    return _user(row)


@delete(
    USER,
    operation_id="deleteUser",
    summary="Delete User",
    tags=["Users"],
    guards=[require_scope("issuers.users:delete")],
    status_code=204,
)
async def delete_user(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    principal: InjectedPrincipal,
    users: NamedDependency[Users],
    if_match: IfMatch = None,
) -> Response[None]:
    await users.delete(account_id, issuer_id, user_id, principal.actor(), if_match)
    return no_content()


def users_router(users: Users) -> Router:
    return Router(
        "/",
        route_handlers=[list_users, create_user, get_user, update_user, delete_user],
        dependencies={"users": provide(users)},
    )
