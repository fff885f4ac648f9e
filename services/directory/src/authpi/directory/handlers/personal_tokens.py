"""Personal access tokens (core-api.md 3.5) and issuer token introspection (3.6).

A PAT is `ptk_` + a JWT (HS256 under a per-issuer key derived from the KEK) whose claims name the
issuer, user and token id and carry 256 random bits. It is shown once; the store keeps its SHA-256
digest. Validation checks the signature first, then the stored digest and status, then the
owner's status. `check_personal_token` serves introspection; the gateway checks `ptk_` Bearer
tokens from its own cache of the personal-token events (authpi.gateway.caches.personal_tokens)."""

from __future__ import annotations

import ipaddress
from typing import Any

import jwt
import msgspec
import psycopg

from authpi.contracts.base import Actor, Meta
from authpi.crypto.envelope import Kek
from authpi.crypto.ids import digest_matches, sha256_hex
from authpi.directory.domain import personal_token
from authpi.directory.domain.commands.personal_token import (
    CreatePersonalToken,
    DeletePersonalToken,
    RevokePersonalToken,
)
from authpi.directory.handlers.users import Users
from authpi.directory.queries.users import TokenRow, UserQueries
from authpi.errors import FieldProblem, NotFound, Unprocessable
from authpi.eventstore.store import EventStore, Tx
from authpi.web.runtime import Runtime

PREFIX = "ptk_"
MAX_ACTIVE_PER_USER = 50
_NO_TOKEN_DIGEST = sha256_hex("authpi: no such personal token")


class NewToken(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str | None = None
    tags: list[str] = []
    scopes: list[str] = []
    audience: str | None = None
    expires_at: int | None = None
    metadata: dict[str, Any] = {}


class Refused(msgspec.Struct, frozen=True):
    """Why a presented token is not active (core-api.md 3.6 reasons)."""

    reason: str


def _signing_key(kek: Kek, issuer_id: str) -> bytes:
    return kek.derive(f"personal-token-signing:{issuer_id}")


def mint(kek: Kek, claims: dict[str, Any]) -> str:
    return PREFIX + jwt.encode(claims, _signing_key(kek, claims["iss"]), algorithm="HS256")


def read_claims(kek: Kek, token: str) -> dict[str, Any] | None:
    """The claims of a well-formed, correctly signed PAT; None otherwise."""
    if not token.startswith(PREFIX):
        return None
    raw = token.removeprefix(PREFIX)
    try:
        issuer = jwt.decode(raw, options={"verify_signature": False}).get("iss")
        if not isinstance(issuer, str):
            return None
        return jwt.decode(
            raw,
            _signing_key(kek, issuer),
            algorithms=["HS256"],
            options={
                "verify_exp": False,
                "verify_aud": False,
                "verify_iat": False,
                "require": ["iss", "sub", "jti"],
            },
        )
    except jwt.PyJWTError:
        return None


async def check_personal_token(
    conn: psycopg.AsyncConnection[Any], queries: UserQueries, kek: Kek, token: str, now: int
) -> TokenRow | Refused:
    claims = read_claims(kek, token)
    if claims is None:
        return Refused("invalid")
    found = await queries.token_by_jti(conn, str(claims["jti"]))
    if found is None:
        digest_matches(token, _NO_TOKEN_DIGEST)  # the same work as a known token
        return Refused("not_found")
    row, user_status = found
    if not digest_matches(token, row.token_sha256):
        return Refused("invalid")
    if row.status != "active":
        return Refused(row.status)
    if row.expires_at is not None and row.expires_at <= now:
        return Refused("expired")
    if user_status != "active":
        return Refused("suspended")
    return row


def effective_status(row: TokenRow, now: int) -> str:
    if row.status == "active" and row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return row.status


class PersonalTokens:
    def __init__(self, rt: Runtime, store: EventStore, users: Users) -> None:
        self.rt = rt
        self.users = users
        self.store = store
        self.queries = UserQueries(store.schema, users.vault.schema)

    def _meta(self, account_id: str, issuer_id: str | None, actor: Actor) -> Meta:
        return Meta(
            account_id=account_id, issuer_id=issuer_id, actor=actor, region=self.rt.settings.region
        )

    async def create(
        self, account_id: str, issuer_id: str, user_id: str, new: NewToken, actor: Actor
    ) -> tuple[TokenRow, str]:
        """The new token and its value, which is never available again."""
        owner = await self.users.get(account_id, issuer_id, user_id)
        if new.expires_at is not None and new.expires_at <= self.rt.clock.now_ms():
            raise _unprocessable("expires_at", "expires_at must be in the future")
        token_id, now = self.rt.ids.new("ptk"), self.rt.clock.now_ms()
        token = mint(
            self.rt.kek,
            _claims(token_id, issuer_id, owner.id, account_id, new, now, self.rt.ids.secret(32)),
        )
        cmd = CreatePersonalToken(
            token_id=token_id,
            account_id=account_id,
            issuer_id=issuer_id,
            user_id=owner.id,
            name=new.name,
            description=new.description,
            tags=new.tags,
            scopes=new.scopes,
            audience=new.audience,
            expires_at=new.expires_at,
            metadata=new.metadata,
            token_sha256=sha256_hex(token),
            token_hint=token[-8:],
            now=now,
        )

        async def within_limit(tx: Tx) -> None:
            # The user's row lock serializes concurrent creations, so the count is exact.
            await self.queries.lock_user(tx.conn, owner.id)
            if await self.queries.active_tokens(tx.conn, owner.id, now) > MAX_ACTIVE_PER_USER:
                raise _unprocessable(
                    "name", f"a user may hold at most {MAX_ACTIVE_PER_USER} active tokens"
                )

        await self.store.execute(
            token_id,
            personal_token,
            cmd,
            self._meta(account_id, issuer_id, actor),
            [within_limit],
        )
        return await self.get(account_id, token_id), token

    async def list(
        self,
        account_id: str,
        issuer_id: str,
        user_id: str,
        status: str | None,
        after: Any,
        limit: int,
    ) -> list[TokenRow]:
        await self.users.get(account_id, issuer_id, user_id)
        async with self.rt.pool.connection() as conn:
            return await self.queries.tokens(conn, user_id, status, after, limit)

    async def get(self, account_id: str, token_id: str) -> TokenRow:
        async with self.rt.pool.connection() as conn:
            row = await self.queries.token(conn, token_id)
        if row is None or row.account_id != account_id:
            raise NotFound("no such personal token", reason="personal_token.not_found")
        return row

    async def revoke(
        self, account_id: str, token_id: str, actor: Actor, cmd_fields: dict[str, Any],
        held: frozenset[str] | None = None,
    ) -> TokenRow:  # fmt: skip
        cmd = RevokePersonalToken(
            token_id=token_id, account_id=account_id, now=self.rt.clock.now_ms(), held=held,
            **cmd_fields,
        )  # fmt: skip
        await self._act(cmd, actor)
        return await self.get(account_id, token_id)

    async def delete(
        self, account_id: str, token_id: str, actor: Actor, if_match: str | None,
        held: frozenset[str] | None = None,
    ) -> None:  # fmt: skip
        cmd = DeletePersonalToken(
            token_id=token_id, account_id=account_id, now=self.rt.clock.now_ms(),
            if_match=if_match, held=held,
        )  # fmt: skip
        await self._act(cmd, actor)

    async def _act(self, cmd: RevokePersonalToken | DeletePersonalToken, actor: Actor) -> None:
        """An action on a token of the command's account (404 for any other): appended with the
        metadata of the token's issuer."""
        row = await self.get(cmd.account_id, cmd.token_id)
        meta = self._meta(cmd.account_id, row.issuer_id, actor)
        await self.store.execute(cmd.token_id, personal_token, cmd, meta)

    async def introspect(
        self, account_id: str, issuer_id: str, token: str, ip: str | None
    ) -> dict[str, Any]:
        """core-api.md 3.6: `key_<id>:<secret>` or `ptk_<jwt>`; always an answer, never 401."""
        await self.users.require_issuer(account_id, issuer_id)
        now = self.rt.clock.now_ms()
        async with self.rt.pool.connection() as conn:
            if token.startswith(PREFIX):
                found = await check_personal_token(conn, self.queries, self.rt.kek, token, now)
                return _pat_answer(found, account_id, issuer_id)
            key = await self._api_key(conn, token)
        return _key_answer(key, token, account_id, issuer_id, ip, now)

    async def _api_key(
        self, conn: psycopg.AsyncConnection[Any], token: str
    ) -> dict[str, Any] | None:
        key_id, colon, _ = token.partition(":")
        if not colon or not key_id.startswith("key_"):
            return None
        return await self.queries.api_key(conn, key_id)


def _claims(
    token_id: str,
    issuer_id: str,
    user_id: str,
    account_id: str,
    new: NewToken,
    now: int,
    nonce: str,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": issuer_id,
        "sub": user_id,
        "jti": token_id,
        "acc": account_id,
        "iat": now // 1000,
        "nonce": nonce,
    }
    if new.expires_at is not None:
        claims["exp"] = new.expires_at // 1000
    if new.audience is not None:
        claims["aud"] = new.audience
    return claims


def _pat_answer(found: TokenRow | Refused, account_id: str, issuer_id: str) -> dict[str, Any]:
    if isinstance(found, Refused):
        return {"active": False, "reason": found.reason}
    if (found.account_id, found.issuer_id) != (account_id, issuer_id):
        return {"active": False, "reason": "not_found"}
    return {
        "active": True,
        "token_type": "personal_token",
        "id": found.id,
        "user_id": found.user_id,
        "issuer_id": found.issuer_id,
        "name": found.name,
        "scopes": found.scopes,
        "audience": found.audience,
        "expires_at": found.expires_at,
        "metadata": found.metadata,
    }


def _key_answer(
    key: dict[str, Any] | None,
    token: str,
    account_id: str,
    issuer_id: str,
    ip: str | None,
    now: int,
) -> dict[str, Any]:
    secret = token.partition(":")[2]
    if key is None or (key["account_id"], key["issuer_id"]) != (account_id, issuer_id):
        digest_matches(secret, _NO_TOKEN_DIGEST)
        return {"active": False, "reason": "not_found"}
    in_grace = key["previous_valid_until"] is not None and now < key["previous_valid_until"]
    current = digest_matches(secret, key["secret_sha256"])
    previous = in_grace and digest_matches(secret, key["previous_sha256"] or _NO_TOKEN_DIGEST)
    if not (current or previous):
        return {"active": False, "reason": "invalid"}
    if key["status"] != "active":
        return {"active": False, "reason": key["status"]}
    if key["expires_at"] is not None and key["expires_at"] <= now:
        return {"active": False, "reason": "expired"}
    if ip is not None and not _allowed(ip, key["ip_allowlist"]):
        return {"active": False, "reason": "ip_not_allowed"}
    return {
        "active": True,
        "token_type": "api_key",
        "id": key["id"],
        "org_id": key["org_id"],
        "issuer_id": key["issuer_id"],
        "name": key["name"],
        "scopes": key["scopes"],
        "expires_at": key["expires_at"],
        "metadata": key["metadata"],
    }


def _allowed(ip: str, allowlist: list[str] | None) -> bool:
    if not allowlist:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for network in allowlist:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


def _unprocessable(field: str, message: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=message)
    return Unprocessable(message, reason=f"personal_token.{field}", fields=[problem])
