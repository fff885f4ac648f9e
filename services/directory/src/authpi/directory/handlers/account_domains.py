"""The write path of account domains (core-api.md 3.3): add, remove, assign to an issuer,
unassign, verify. Every command runs on the account's stream with the directory's account
reactions and the host claim (handlers/accounts.py). Verification reads the host's TXT
challenge before the transaction begins and passes what it saw to the decider. Adding a host
that another account claimed, unverified, for longer than the claim lasts first ends that claim
(on that account's stream), then adds it here."""

from __future__ import annotations

from authpi.contracts.base import Actor, Meta
from authpi.directory.adapters.dns_probe import DomainProbe
from authpi.directory.domain import account
from authpi.directory.domain.account_domains import challenge_name
from authpi.directory.domain.commands.account import (
    AddDomain,
    AssignDomain,
    ExpireDomainClaim,
    RemoveDomain,
    UnassignDomain,
    VerifyDomain,
)
from authpi.directory.handlers.accounts import Directory
from authpi.errors import Conflict, FieldProblem, NotFound, Unprocessable


class AccountDomains:
    def __init__(self, directory: Directory, probe: DomainProbe) -> None:
        self.directory = directory
        self.rt = directory.rt
        # Replaceable: tests point it at a DNS server of their own, or put a fake here.
        self.probe = probe

    def _meta(self, account_id: str, actor: Actor, issuer_id: str | None = None) -> Meta:
        subject = {"account_id": account_id} | ({"issuer_id": issuer_id} if issuer_id else {})
        return Meta(
            account_id=account_id, issuer_id=issuer_id, actor=actor,
            region=self.rt.settings.region, subject=subject,
        )  # fmt: skip

    async def _run(
        self, cmd: account.AccountCommand, account_id: str, meta: Meta
    ) -> account.Account:
        d = self.directory
        outcome = await d.store.execute(account_id, account, cmd, meta, d.projections)
        return outcome.state

    def _now(self) -> int:
        return self.rt.clock.now_ms()

    async def add(self, account_id: str, host: str, *, actor: Actor) -> None:
        cmd = AddDomain(account_id=account_id, host=host, now=self._now())
        try:
            await self._run(cmd, account_id, self._meta(account_id, actor))
        except Conflict as taken:
            if taken.reason != "reservation.domain" or not await self._end_lapsed_claim(
                account_id, host
            ):
                raise
            await self._run(cmd, account_id, self._meta(account_id, actor))

    async def _end_lapsed_claim(self, account_id: str, host: str) -> bool:
        """End another account's lapsed, unverified claim on `host`; False when the claim
        stands. Its removal is that account's event, made by the platform."""
        async with self.rt.pool.connection() as conn:
            owner = await self.directory.account_queries.domain_owner(conn, host)
        if owner is None or owner.account_id == account_id:
            return False
        expire = ExpireDomainClaim(account_id=owner.account_id, host=host, now=self._now())
        meta = self._meta(owner.account_id, Actor(type="system"))
        try:
            await self._run(expire, owner.account_id, meta)
        except (Conflict, NotFound):
            return False
        return True

    async def remove(
        self, account_id: str, host: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        assigned = await self._assigned_issuer(account_id, host)
        cmd = RemoveDomain(account_id=account_id, host=host, now=self._now(), if_match=if_match)
        await self._run(cmd, account_id, self._meta(account_id, actor, assigned))

    async def assign(
        self, account_id: str, host: str, issuer_id: str, *, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self._assigned_issuer(account_id, host)
        async with self.rt.pool.connection() as conn:
            live = await self.directory.account_queries.issuer_live(conn, account_id, issuer_id)
        if not live:
            problem = FieldProblem(
                field="issuer_id", code="invalid_value",
                message="issuer_id is not an issuer of this account",
            )  # fmt: skip
            raise Unprocessable(problem.message, reason="domain.unknown_issuer", fields=[problem])
        cmd = AssignDomain(account_id=account_id, host=host, issuer_id=issuer_id,
                           now=self._now(), if_match=if_match)  # fmt: skip
        await self._run(cmd, account_id, self._meta(account_id, actor, issuer_id))

    async def unassign(
        self, account_id: str, host: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        assigned = await self._assigned_issuer(account_id, host)
        cmd = UnassignDomain(account_id=account_id, host=host, now=self._now(), if_match=if_match)
        await self._run(cmd, account_id, self._meta(account_id, actor, assigned))

    async def verify(
        self, account_id: str, host: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        async with self.rt.pool.connection() as conn:
            row = await self.directory.account_queries.domain(conn, account_id, host)
        if row is None:
            raise NotFound("no such domain in this account", reason="domain.not_found")
        published = (
            frozenset() if row.verified else await self.probe.txt_values(challenge_name(host))
        )
        cmd = VerifyDomain(account_id=account_id, host=host, now=self._now(),
                           published=published, if_match=if_match)  # fmt: skip
        await self._run(cmd, account_id, self._meta(account_id, actor))

    async def _assigned_issuer(self, account_id: str, host: str) -> str | None:
        """The issuer a domain serves now (for the events' subject); 404 for an unknown host."""
        async with self.rt.pool.connection() as conn:
            row = await self.directory.account_queries.domain(conn, account_id, host)
        if row is None:
            raise NotFound("no such domain in this account", reason="domain.not_found")
        return row.assigned_issuer_id
