"""The `{account_id}` path check (core-api.md 1.2 rule 7), run for every Core API route after
authentication: a credential acts only on its own account (a user token: on the accounts of its
memberships, with that membership's scopes), 403 `access_denied` otherwise, 404 `not_found` when
no such account exists at all; an organization-level API key acts only below its own
organization (`{org_id}`)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import psycopg
from nats.js import JetStreamContext
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import AccountCreated
from authpi.errors import AccessDenied, NotFound
from authpi.gateway.arrivals import Arrivals
from authpi.gateway.projection import CONSUMER
from authpi.messaging.follower import CacheFollower
from authpi.web.principal import Principal

MISS_WAIT_S = 2.0  # as for API keys (api_keys.MISS_WAIT_S)
MAX_WAITING = 256


class AccountLookup:
    """Whether an account exists, asked only when a credential names an account other than its
    own: from the gateway's own accounts_view (fed by its `gateway-directory` consumer; never
    the directory's tables). An account created a moment ago may not be there yet: its id is
    then awaited, bounded, from this process' ordered consumer on `account.created`, which also
    remembers every account created since it started (accounts are never deleted)."""

    def __init__(
        self,
        *,
        pool: AsyncConnectionPool,
        js: JetStreamContext | None,
        namespace: str,
        schema: str,
        consumer: str = CONSUMER,
        miss_wait: float = MISS_WAIT_S,
    ) -> None:
        self._pool = pool
        self._known: set[str] = set()
        self._miss_wait = miss_wait
        self._arrivals = Arrivals("acc", limit=MAX_WAITING)
        self._exists = sql.SQL("SELECT 1 FROM {}.accounts_view WHERE id = %s").format(
            sql.Identifier(schema)
        )
        self.follower = CacheFollower(
            pool=pool,
            js=js,
            namespace=namespace,
            schema=schema,
            consumer=consumer,
            event_types="account.created",
            load=self._load,
            apply=self._apply,
        )

    @property
    def warm(self) -> asyncio.Event:
        return self.follower.warm

    async def run(self, stop: asyncio.Event) -> None:
        """Worker task: follow `account.created` until `stop`."""
        await self.follower.run(stop)

    async def exists(self, account_id: str) -> bool:
        if not account_id.isprintable() or len(account_id) > 64:
            return False  # never a stored id; PostgreSQL refuses NUL in text anyway
        if account_id in self._known:
            return True
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._exists, [account_id])
            found = await cur.fetchone() is not None
        if found:
            self._known.add(account_id)
            return True
        return await self._arrivals.wait(
            account_id, self._miss_wait, lambda: account_id in self._known
        )

    async def _load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Nothing to hold in memory: what the view held at the checkpoint is asked from it."""

    def _apply(self, env: Envelope, event: Event) -> None:
        if isinstance(event, AccountCreated):
            self._known.add(event.id)
            self._arrivals.arrived(event.id)


async def check_account_path(
    principal: Principal, path_params: Mapping[str, Any], accounts: AccountLookup
) -> Principal:
    """The principal acting on the path's account (a user token bound to its membership there),
    or the principal itself on a route without `{account_id}`."""
    account_id = path_params.get("account_id")
    if account_id is None:
        return principal
    bound = principal.on_account(str(account_id))
    if bound is None:
        if await accounts.exists(str(account_id)):
            raise AccessDenied(
                "this credential may not act on that account", reason="auth.foreign_account"
            )
        raise NotFound("no such account", reason="auth.unknown_account")
    if bound.level == "organization" and path_params.get("org_id") != bound.org_id:
        raise AccessDenied(
            "an organization-level API key acts only on its own organization",
            reason="auth.outside_organization",
        )
    return bound
