"""Which organizations are not active, for authenticating organization-level API keys
(core-api.md 7, open point 11): a key minted inside an organization is refused (401) while its
organization is suspended, being deleted (`deleting`) or deleted, and works again when the
organization is reactivated. Key statuses never change on these events; account-level keys are
unaffected.

Like the key cache (`api_keys.ApiKeyCache`), every process loads the gateway's own
inactive_organizations_view (fed by `gateway-directory`) with that consumer's checkpoint, then
follows `organization.*` events from the next stream sequence. It never reads the directory's
tables (DESIGN.md 2)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.gateway.reactions.directory import CONSUMER, organization_status
from authpi.messaging.follower import Feed, FollowedCache
from authpi.observability import get_logger

log = get_logger("authpi.gateway.organizations")

ACTIVE = "active"


class OrganizationStatuses(FollowedCache):
    def __init__(
        self,
        feed: Feed,
        *,
        consumer: str = CONSUMER,
    ) -> None:
        self._inactive: dict[str, tuple[str, int]] = {}  # org id -> (status, version)
        self._load_query = sql.SQL(
            "SELECT id, status, version FROM {}.inactive_organizations_view"
        ).format(sql.Identifier(feed.schema))
        super().__init__(feed, consumer=consumer, event_types="organization.>")

    def status(self, org_id: str) -> str:
        inactive = self._inactive.get(org_id)
        return ACTIVE if inactive is None else inactive[0]

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(self._load_query)
        self._inactive = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
        log.info("organizations.loaded", inactive=len(self._inactive))

    def receive(self, env: Envelope, event: Event) -> None:
        self.apply(env.stream_id, event, env.stream_version)

    def apply(self, org_id: str, event: Event, version: int) -> None:
        status = organization_status(event)
        if status is None:
            return
        current = self._inactive.get(org_id)
        if current is not None and current[1] >= version:
            return
        if status == ACTIVE:
            self._inactive.pop(org_id, None)
        else:
            self._inactive[org_id] = (status, version)
