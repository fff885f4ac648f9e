"""The authenticated caller of a Core API request (core-api.md 1.2) as the gateway resolved it.

The gateway's authentication layer stores one `Principal` on the ASGI scope before any guard or
handler runs. Guards read it with `principal_of(connection)`; handlers declare a parameter
`principal: InjectedPrincipal` (the `principal` dependency of the Core API app). Routes never
parse credentials themselves (STYLE.md 10)."""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.types import Scope

from authpi.contracts.base import Actor
from authpi.contracts.scopes import grants
from authpi.errors import Unauthorized
from authpi.web.errors import REQUEST_ID

PrincipalType = Literal["api_key", "user", "personal_token"]
# An account-level credential acts on its account; an organization-level API key acts as its
# organization only (core-api.md 1.2 rule 2, 3.4).
Level = Literal["account", "organization"]

_SCOPE_KEY = "authpi.principal"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    type: PrincipalType
    account_id: str
    org_id: str
    scopes: frozenset[str]
    level: Level = "account"
    key_id: str | None = None
    user_id: str | None = None
    issuer_id: str | None = None
    ip: str | None = None

    def may(self, scope: str) -> bool:
        """Whether the credential holds `scope` or an action implying it (core-api.md 5.1)."""
        return grants(self.scopes, scope)

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


def set_principal(scope: Scope, principal: Principal) -> None:
    scope.setdefault("state", {})[_SCOPE_KEY] = principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The request's principal. A route marked anonymous has none: asking for it is refused."""
    principal = connection.scope.get("state", {}).get(_SCOPE_KEY)
    if not isinstance(principal, Principal):
        raise Unauthorized("credentials are required", reason="auth.no_principal")
    return principal


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The `principal` dependency of the Core API app."""
    return principal_of(request)


# A handler parameter named `principal` with this type receives the caller.
InjectedPrincipal: TypeAlias = NamedDependency[Principal]
