"""The authenticated caller of a Core API request (core-api.md 1.2) as the gateway resolved it.

The gateway's authentication layer stores one `Principal` on the ASGI scope before any guard or
handler runs. Guards read it with `principal_of(connection)`; handlers declare a parameter
`principal: InjectedPrincipal` (the `principal` dependency of the Core API app). Routes never
parse credentials themselves (STYLE.md 10)."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias, cast

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.types import Scope

from authpi.contracts.base import Actor
from authpi.contracts.scopes import grants
from authpi.errors import Unauthorized
from authpi.observability import REQUEST_ID

PrincipalType = Literal["api_key", "user", "personal_token"]
# An account-level credential acts on its account; an organization-level API key acts as its
# organization only (core-api.md 1.2 rule 2, 3.4).
Level = Literal["account", "organization"]

_SCOPE_KEY = "authpi.principal"


class AccountAccess(msgspec.Struct, frozen=True, kw_only=True):
    """One account a credential may act on, with its scopes there (`GET /v1/me` `accounts`)."""

    account_id: str
    org_id: str
    scopes: frozenset[str]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """`account_id`, `org_id` and `scopes` are the account the request acts on. A user access
    token may act on several accounts (one per membership, core-api.md 1.2 rule 2): the gateway
    builds it with every membership and no account (`account_id` empty), then binds it to the
    path's `{account_id}` with `on_account`."""

    type: PrincipalType
    account_id: str
    org_id: str
    scopes: frozenset[str]
    level: Level = "account"
    key_id: str | None = None
    token_id: str | None = None  # personal tokens only
    user_id: str | None = None
    issuer_id: str | None = None
    ip: str | None = None
    memberships: tuple[AccountAccess, ...] = ()  # user tokens only

    def may(self, scope: str) -> bool:
        """Whether the credential holds `scope` or an action implying it (core-api.md 5.1). A
        user token bound to no account (a route without `{account_id}`, e.g. `GET
        /v1/accounts`) may when one of its memberships may; such a route must then act only on
        the accounts `accounts()` grants it on."""
        if self.type == "user" and not self.account_id:
            return any(grants(m.scopes, scope) for m in self.memberships)
        return grants(self.scopes, scope)

    def accounts(self) -> tuple[AccountAccess, ...]:
        """Every account this credential may act on, with its scopes there: an account-level key
        or PAT its own account, an organization-level key none, a user token one per
        membership."""
        if self.type == "user":
            return self.memberships
        if self.level != "account":
            return ()
        return (AccountAccess(account_id=self.account_id, org_id=self.org_id, scopes=self.scopes),)

    def on_account(self, account_id: str) -> Principal | None:
        """This credential acting on `account_id` (the path check, core-api.md 1.2 rule 7), or
        None when it may not act on that account."""
        if self.type != "user":
            return self if account_id == self.account_id else None
        for m in self.memberships:
            if m.account_id == account_id:
                return msgspec.structs.replace(
                    self, account_id=m.account_id, org_id=m.org_id, scopes=m.scopes
                )
        return None

    def credential_id(self) -> str:
        """The one credential (or console user) behind the request: what owns an idempotency
        record (DESIGN.md 7), so that no principal is ever replayed another's response."""
        match self.type:
            case "api_key":
                return f"api_key:{self.key_id}"
            case "personal_token":
                return f"personal_token:{self.token_id}"
            case "user":
                return f"user:{self.user_id}"

    def actor(self) -> Actor:
        """The event-metadata actor for writes made on behalf of this caller."""
        actor_type = "api_key" if self.type == "api_key" else "user"
        return Actor(
            type=actor_type,
            key_id=self.key_id,
            user_id=self.user_id,
            ip=self.ip,
            request_id=REQUEST_ID.get(),
        )


def _scope(scope: Scope) -> dict[str, Any]:
    # Litestar types the scope as a union of TypedDicts; its `state` is a plain dict.
    return cast("dict[str, Any]", scope)


def set_principal(scope: Scope, principal: Principal) -> None:
    _scope(scope).setdefault("state", {})[_SCOPE_KEY] = principal


def principal_or_none(scope: Scope) -> Principal | None:
    principal = _scope(scope).get("state", {}).get(_SCOPE_KEY)
    return principal if isinstance(principal, Principal) else None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The request's principal. A route marked anonymous has none: asking for it is refused."""
    principal = principal_or_none(connection.scope)
    if principal is None:
        raise Unauthorized("credentials are required", reason="auth.no_principal")
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The `principal` dependency of the Core API app."""
    return principal_of(request)


# A handler parameter named `principal` with this type receives the caller.
InjectedPrincipal: TypeAlias = NamedDependency[Principal]
