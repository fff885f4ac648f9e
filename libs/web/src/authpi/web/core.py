"""The Core API app: `build_app` plus what every Core API route relies on. Requests reach a
handler only after the gateway's layers ran (rate limit, authentication and the `{account_id}`
path check, idempotency keys); the gateway passes those layers in as `middleware`.

Handler parameters the app provides:
* `principal: InjectedPrincipal` (authpi.web.principal) - the authenticated caller;
* `page: InjectedPage` (authpi.web.pagination) - checked `limit` and `cursor` of a list;
* `data: JSONBody[SomeRequest]` - the JSON body, decoded strictly by `JsonBody` (authpi.web.body).

A service gives its routes its own objects (handlers, queries) as named dependencies of a
router built in its `build(rt)`, e.g. `Router("/", route_handlers=[...],
dependencies={"directory": provide(directory)})`. A route, end to end:

    @post("/v1/accounts/{account_id:str}/api-keys/{key_id:str}/block",
          operation_id="blockApiKey", summary="Block API Key",
          guards=[require_scope("api-keys:write")])
    async def block_api_key(
        account_id: FromPath[str], key_id: FromPath[str], principal: InjectedPrincipal,
        directory: NamedDependency[Directory], if_match: IfMatch = None,
        data: JSONBody[StatusBody] = StatusBody(),
    ) -> Response[One[ApiKeyOut]]:
        change = StatusChange(status_reason=data.status_reason, if_match=if_match)
        await directory.block_api_key(account_id, key_id, actor=principal.actor(), change=change)
        key = await directory.api_key(account_id, key_id)
        return one(ApiKeyOut.of(key), etag=etag_of(key.created_at, key.updated_at))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from litestar.di import Provide
from litestar.types import ASGIApp

from authpi.web.app import Metrics, ReadyCheck, WebApp, build_app
from authpi.web.body import JsonBody
from authpi.web.openapi import CORE_ERRORS
from authpi.web.pagination import page_query
from authpi.web.principal import provide_principal
from authpi.web.text import StorableTarget


def provide(value: object) -> Provide:
    """A dependency that always provides `value`, built once in the service's factory."""

    def provider() -> object:
        return value

    return Provide(provider, use_cache=True, sync_to_thread=False)


def core_dependencies() -> dict[str, Provide]:
    return {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "page": Provide(page_query, sync_to_thread=False),
    }


def build_core_app(
    *,
    route_handlers: Sequence[Any],
    ready: ReadyCheck,
    middleware: Sequence[Any],
    metrics: Metrics | None = None,
    outer: Callable[[ASGIApp], ASGIApp] | None = None,
) -> WebApp:
    """`outer`: wraps the app before routing (a service's internal listener: authpi.web.edge)."""
    return build_app(
        name="core",
        route_handlers=route_handlers,
        ready=ready,
        openapi_title="AuthPI Core API",
        errors=CORE_ERRORS,
        # Ahead of the gateway's layers: unstorable ids and filters never reach PostgreSQL.
        middleware=[StorableTarget(), *middleware],
        dto=JsonBody,
        dependencies=core_dependencies(),
        metrics=metrics,
        outer=outer,
    )
