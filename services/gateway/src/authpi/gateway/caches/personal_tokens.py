"""What the gateway knows of personal access tokens (core-api.md 1.2, 3.5), for the check in
`edge.personal_tokens`: its own knowledge only (DESIGN.md 2).

`PersonalTokenCache` holds, in every process that serves the Core API, every personal token the
gateway's personal_tokens_view holds (digests, never tokens) and the users that are not active
(inactive_users_view). Both views are fed by the `gateway-directory` consumer; the cache loads
them with that consumer's checkpoint in one snapshot, then follows `user.>` (personal-token and
user events) from the next stream sequence, like the API-key cache. A token created a moment ago
whose event has not arrived yet is awaited, bounded (`MISS_WAIT_S`, `MAX_WAITING`), when its id
(a UUIDv7) is fresh; any other unknown token is refused at once. A revocation, a deletion or the
owner's suspension takes effect once its event arrives (normally within milliseconds)."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg
from psycopg import sql

from authpi.contracts.base import Envelope, Event
from authpi.contracts.directory import (
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenEvent,
    PersonalTokenUpdated,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
)
from authpi.gateway.caches.arrivals import Arrivals
from authpi.gateway.reactions.directory import CONSUMER
from authpi.messaging.follower import Feed, FollowedCache
from authpi.observability import get_logger

log = get_logger("authpi.gateway.personal_tokens")

MISS_WAIT_S = 2.0  # as for API keys (api_keys.MISS_WAIT_S)
MAX_WAITING = 256


class CachedToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    jti: str
    account_id: str
    issuer_id: str
    user_id: str
    scopes: frozenset[str]
    expires_at: int | None
    status: str
    token_sha256: str
    version: int


def evolve_token(token: CachedToken | None, event: Event, version: int) -> CachedToken | None:
    """The cached token after `event` (at stream `version`); replays of older events are
    no-ops, and a deletion removes it."""
    if token is None:
        if not isinstance(event, PersonalTokenCreated):
            return None
        return CachedToken(
            id=event.id, jti=event.jti, account_id=event.account_id, issuer_id=event.issuer_id,
            user_id=event.user_id, scopes=frozenset(event.scopes), expires_at=event.expires_at,
            status="active", token_sha256=event.token_sha256, version=version,
        )  # fmt: skip
    if version <= token.version:
        return token
    match event:
        case PersonalTokenUpdated() if event.status is not None:
            return msgspec.structs.replace(token, status=event.status, version=version)
        case PersonalTokenDeleted():
            return None
        case _:
            return msgspec.structs.replace(token, version=version)


class PersonalTokenCache(FollowedCache):
    def __init__(
        self,
        feed: Feed,
        *,
        consumer: str = CONSUMER,
        miss_wait: float = MISS_WAIT_S,
    ) -> None:
        self._tokens: dict[str, CachedToken] = {}  # by jti
        self._jti_of: dict[str, str] = {}  # token id -> jti (events name the id)
        self._deleted: set[str] = set()  # jtis of deleted tokens: ids are never reused
        self._inactive: dict[str, tuple[str, int]] = {}  # user id -> (status, version)
        self._miss_wait = miss_wait
        self._arrivals = Arrivals("ptk", limit=MAX_WAITING)
        q = sql.Identifier(feed.schema)
        self._load_tokens = sql.SQL(
            "SELECT id, jti, account_id, issuer_id, user_id, scopes, expires_at, status,"
            " token_sha256, version FROM {}.personal_tokens_view"
        ).format(q)
        self._load_users = sql.SQL("SELECT id, status, version FROM {}.inactive_users_view").format(
            q
        )
        super().__init__(feed, consumer=consumer, event_types="user.>")

    def get(self, jti: str) -> CachedToken | None:
        return self._tokens.get(jti)

    def owner_status(self, user_id: str) -> str:
        inactive = self._inactive.get(user_id)
        return "active" if inactive is None else inactive[0]

    async def lookup(self, jti: str) -> CachedToken | None:
        """The token from memory, else, when it may have been created a moment ago, once its
        event arrives (bounded wait)."""
        if jti in self._deleted:
            return None
        if (token := self._tokens.get(jti)) is not None:
            return token
        if not jti.isprintable() or len(jti) > 64:
            return None
        await self._arrivals.wait(jti, self._miss_wait, lambda: jti in self._tokens)
        return self._tokens.get(jti)

    async def load(self, conn: psycopg.AsyncConnection[Any]) -> None:
        cur = await conn.execute(self._load_tokens)
        tokens: dict[str, CachedToken] = {}
        for row in await cur.fetchall():
            if row[1] in self._deleted:
                continue
            tokens[row[1]] = CachedToken(
                id=row[0], jti=row[1], account_id=row[2], issuer_id=row[3], user_id=row[4],
                scopes=frozenset(row[5]), expires_at=row[6], status=row[7],
                token_sha256=row[8], version=row[9],
            )  # fmt: skip
        cur = await conn.execute(self._load_users)
        self._inactive = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
        self._tokens = tokens
        self._jti_of = {t.id: t.jti for t in tokens.values()}
        self._arrivals.recheck()
        log.info("personal_tokens.loaded", tokens=len(tokens), inactive_users=len(self._inactive))

    def receive(self, env: Envelope, event: Event) -> None:
        version = env.stream_version
        match event:
            case PersonalTokenCreated() | PersonalTokenUpdated() | PersonalTokenDeleted():
                self._apply_token(event, version)
            case UserCreated() if event.status != "active":
                self._set_inactive(event.id, event.status, version)
            case UserBlocked():
                self._set_inactive(event.id, event.status, version)
            case UserDeleted():
                self._set_inactive(event.id, "deleted", version)
            case UserUnblocked():
                current = self._inactive.get(event.id)
                if current is not None and current[1] < version:
                    del self._inactive[event.id]
            case _:
                pass  # user.created (active), user.updated: nothing the check needs

    def _apply_token(self, event: PersonalTokenEvent, version: int) -> None:
        jti = event.jti if isinstance(event, PersonalTokenCreated) else self._jti_of.get(event.id)
        if jti is None or jti in self._deleted:
            return
        current = self._tokens.get(jti)
        token = evolve_token(current, event, version)
        if token is not None:
            self._tokens[jti] = token
            self._jti_of[token.id] = jti
            if current is None:
                self._arrivals.arrived(jti)
            return
        self._tokens.pop(jti, None)
        if isinstance(event, PersonalTokenDeleted):
            self._deleted.add(jti)
            self._jti_of.pop(event.id, None)

    def _set_inactive(self, user_id: str, status: str, version: int) -> None:
        current = self._inactive.get(user_id)
        if current is None or current[1] < version:
            self._inactive[user_id] = (status, version)
