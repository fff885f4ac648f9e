"""The write path of clients (core-api.md 3.8). Secrets are 32 random bytes in base62, returned
once and stored as SHA-256 digests; the issuer must exist in the caller's account."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Actor
from authpi.crypto.ids import sha256_hex
from authpi.directory.domain import client
from authpi.directory.domain.client import ClientCommand
from authpi.directory.domain.client_settings import CONFIDENTIAL
from authpi.directory.domain.commands.client import (
    CreateClient,
    DeleteClient,
    RotateClientSecret,
    UpdateClient,
)
from authpi.directory.handlers.issuers import Issuers, require_known_ids
from authpi.errors import NotFound


class NewClient(msgspec.Struct, frozen=True):
    client_id: str
    secret: str | None


class Clients:
    def __init__(self, issuers: Issuers) -> None:
        self.issuers = issuers
        self.rt = issuers.rt

    async def create(
        self, account_id: str, issuer_id: str, fields: dict[str, Any], *, actor: Actor
    ) -> NewClient:
        await self._require_issuer(account_id, issuer_id)
        client_id = self.rt.ids.new("c")
        secret = self.rt.ids.secret(32) if fields["type"] in CONFIDENTIAL else None
        cmd = CreateClient(
            client_id=client_id,
            issuer_id=issuer_id,
            now=self.rt.clock.now_ms(),
            secret_sha256=sha256_hex(secret) if secret else None,
            secret_hint=secret[-8:] if secret else None,
            **fields,
        )
        await self._run(account_id, cmd, actor)
        return NewClient(client_id, secret)

    async def update(
        self, account_id: str, issuer_id: str, client_id: str, patch: dict[str, Any], *,
        actor: Actor, if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self._require_issuer(account_id, issuer_id)
        cmd = UpdateClient(client_id=client_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                           if_match=if_match, **patch)  # fmt: skip
        await self._run(account_id, cmd, actor)

    async def delete(
        self, account_id: str, issuer_id: str, client_id: str, *, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self._require_issuer(account_id, issuer_id)
        cmd = DeleteClient(client_id=client_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                           if_match=if_match)  # fmt: skip
        await self._run(account_id, cmd, actor)

    async def rotate_secret(
        self, account_id: str, issuer_id: str, client_id: str, *, actor: Actor,
        if_match: str | None = None,
    ) -> str:  # fmt: skip
        """A new secret; the previous one keeps working for 15 minutes (core-api.md 3.8)."""
        await self._require_issuer(account_id, issuer_id)
        secret = self.rt.ids.secret(32)
        cmd = RotateClientSecret(
            client_id=client_id, issuer_id=issuer_id, secret_sha256=sha256_hex(secret),
            secret_hint=secret[-8:], now=self.rt.clock.now_ms(), if_match=if_match,
        )  # fmt: skip
        await self._run(account_id, cmd, actor)
        return secret

    async def _require_issuer(self, account_id: str, issuer_id: str) -> None:
        require_known_ids(issuer_id)
        async with self.rt.pool.connection() as conn:
            found = await self.issuers.queries.issuer(conn, account_id, issuer_id)
        if found is None:
            raise NotFound("no such issuer", reason="issuer.not_found")

    async def _run(self, account_id: str, cmd: ClientCommand, actor: Actor) -> None:
        require_known_ids(cmd.client_id)
        meta = self.issuers.meta(account_id, cmd.issuer_id, actor, client_id=cmd.client_id)
        await self.issuers.store.execute(cmd.client_id, client, cmd, meta)
