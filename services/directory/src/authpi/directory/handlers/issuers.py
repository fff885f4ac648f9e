"""The write path of issuers and their auth methods (core-api.md 3.7). Deleting an issuer deletes
its clients in the same transaction (client.deleted each), so that every consumer of client
events stops accepting them at once, and unassigns the account's domains that served it; the
issuer.deleted event tells the other aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authpi.contracts.base import Actor, Meta
from authpi.directory.domain import account, client, issuer
from authpi.directory.domain.commands.account import ReleaseIssuerDomains
from authpi.directory.domain.commands.client import DeleteClient
from authpi.directory.domain.commands.issuer import (
    CreateAuthMethod,
    CreateIssuer,
    DeleteAuthMethod,
    DeleteIssuer,
    UpdateAuthMethod,
    UpdateIssuer,
)
from authpi.directory.domain.issuer import IssuerCommand
from authpi.directory.queries.issuers import IssuerQueries
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, Reaction, Step
from authpi.web.runtime import Runtime


def require_known_ids(*ids: str) -> None:
    """Path ids PostgreSQL cannot hold (NUL, lone surrogates) name nothing: 404, never a 500."""
    for value in ids:
        if "\x00" in value or not value.isprintable() or not _encodable(value):
            raise NotFound("no such resource", reason="path.unknown_id")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Issuers:
    def __init__(
        self, rt: Runtime, store: EventStore, account_reactions: Sequence[Reaction] = ()
    ) -> None:
        """`account_reactions`: the reactions of every write to an account stream (the domain
        host claims), for the domains a deleted issuer releases."""
        self.rt = rt
        self.store = store
        self.queries = IssuerQueries(store.schema)
        self.account_reactions = list(account_reactions)

    def meta(self, account_id: str, issuer_id: str, actor: Actor, **subject: str) -> Meta:
        return Meta(
            account_id=account_id,
            issuer_id=issuer_id,
            actor=actor,
            region=self.rt.settings.region,
            subject={"account_id": account_id, "issuer_id": issuer_id, **subject},
        )

    def now(self) -> int:
        return self.rt.clock.now_ms()

    async def create(self, account_id: str, fields: dict[str, Any], *, actor: Actor) -> str:
        """A new issuer from checked request fields; returns its id."""
        issuer_id = self.rt.ids.new("i")
        cmd = CreateIssuer(issuer_id=issuer_id, account_id=account_id, now=self.now(), **fields)
        await self._run(cmd, actor)
        return issuer_id

    async def update(
        self, account_id: str, issuer_id: str, patch: dict[str, Any], *, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        cmd = UpdateIssuer(issuer_id=issuer_id, account_id=account_id, now=self.now(),
                           if_match=if_match, **patch)  # fmt: skip
        await self._run(cmd, actor)

    async def delete(
        self, account_id: str, issuer_id: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        require_known_ids(issuer_id)
        now = self.now()
        async with self.rt.pool.connection() as conn:
            client_ids = await self.queries.live_client_ids(conn, issuer_id)
        steps: list[Step[Any, Any]] = [Step(issuer_id, issuer, DeleteIssuer(
            issuer_id=issuer_id, account_id=account_id, now=now, if_match=if_match))]  # fmt: skip
        steps += [
            Step(cid, client, DeleteClient(client_id=cid, issuer_id=issuer_id, now=now))
            for cid in client_ids
        ]
        release = ReleaseIssuerDomains(account_id=account_id, issuer_id=issuer_id, now=now)
        steps.append(Step(account_id, account, release))
        meta = self.meta(account_id, issuer_id, actor)
        await self.store.execute_all(steps, meta, self.account_reactions)

    async def create_auth_method(
        self, account_id: str, issuer_id: str, fields: dict[str, Any], *, actor: Actor
    ) -> str:
        method_id = self.rt.ids.new("am")
        cmd = CreateAuthMethod(issuer_id=issuer_id, account_id=account_id, method_id=method_id,
                               now=self.now(), **fields)  # fmt: skip
        await self._run(cmd, actor, auth_method_id=method_id)
        return method_id

    async def update_auth_method(
        self, account_id: str, issuer_id: str, method_id: str, patch: dict[str, Any], *,
        actor: Actor, if_match: str | None = None,
    ) -> None:  # fmt: skip
        cmd = UpdateAuthMethod(issuer_id=issuer_id, account_id=account_id, method_id=method_id,
                               now=self.now(), if_match=if_match, **patch)  # fmt: skip
        await self._run(cmd, actor, auth_method_id=method_id)

    async def delete_auth_method(
        self, account_id: str, issuer_id: str, method_id: str, *, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        cmd = DeleteAuthMethod(issuer_id=issuer_id, account_id=account_id, method_id=method_id,
                               now=self.now(), if_match=if_match)  # fmt: skip
        await self._run(cmd, actor, auth_method_id=method_id)

    async def _run(self, cmd: IssuerCommand, actor: Actor, **subject: str) -> None:
        require_known_ids(cmd.issuer_id, *subject.values())
        meta = self.meta(cmd.account_id, cmd.issuer_id, actor, **subject)
        await self.store.execute(cmd.issuer_id, issuer, cmd, meta)
