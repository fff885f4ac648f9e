"""Route guards for the Core API. Authentication and the `{account_id}` path check happen before
any guard runs (gateway); these guards only authorize what the principal may do.

    @get("/v1/accounts/{account_id:str}/issuers", guards=[require_scope("issuers:read")], ...)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from authpi.contracts.scopes import is_known
from authpi.errors import InsufficientScope
from authpi.web.principal import Principal, principal_of

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class ScopeGuard:
    """A guard refusing callers that lack `scope` (or an action implying it) with 403
    `insufficient_scope` naming the missing scope (core-api.md 5.1). Deny by default: a
    credential with no scopes passes no such guard. `scope` stays readable so that the route
    catalogue can be checked against the spec's rule (tests/security/test_route_scopes.py)."""

    def __init__(self, scope: str) -> None:
        if not is_known(scope):
            raise ValueError(f"{scope!r} is not in the scope catalogue (core-api.md 5.2)")
        self.scope = scope
        self.__name__ = f"require_scope({scope})"

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        self.check(principal_of(connection))

    def check(self, principal: Principal) -> None:
        if not principal.may(self.scope):
            raise InsufficientScope(
                f"this request requires the {self.scope} scope", reason="auth.scope_missing"
            )


def require_scope(scope: str) -> Guard:
    return ScopeGuard(scope)


def required_scopes(guards: Sequence[object]) -> list[str]:
    """The scopes a route's guards require, in order."""
    return [g.scope for g in guards if isinstance(g, ScopeGuard)]
