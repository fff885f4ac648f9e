"""The write path of agents and their verifiers (platform.md 3, 4.3). Secrets are `agts_` + 43
base62 characters (256 bits, OP-6), returned once and stored as SHA-256 digests. A wallet
(network, address) is claimed per issuer with a reservation in the same transaction as its
`agent.verifier.added`, and freed with its removal or its agent's deletion.

Every write runs under a check, in its own transaction, that the issuer is still live in the
caller's account (`FOR SHARE` on the issuer row the agent-issuers consumer maintains), so an
agent cannot be created beside an issuer deletion the cascade would miss."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import psycopg

from authpi.agent.domain import agent
from authpi.agent.domain.commands import (
    AddVerifier,
    AgentCommand,
    CreateAgent,
    DeleteAgent,
    NewVerifier,
    RemoveVerifier,
    UpdateAgent,
)
from authpi.agent.domain.ids import require_known_id
from authpi.agent.domain.proof import CHALLENGE_TTL_MS, EIP191, challenge_message, check_proof
from authpi.agent.domain.wallets import Wallet, bad
from authpi.agent.projections import inline_views
from authpi.agent.queries.agents import AgentQueries, AgentRow
from authpi.agent.queries.issuers import IssuerGate, IssuerQueries
from authpi.agent.reactions.issuers import cascade_channel
from authpi.contracts.agent import (
    AgentDeleted,
    AgentVerifierAdded,
    AgentVerifierRemoved,
    VerifierCredential,
)
from authpi.contracts.base import SYSTEM, Actor, Meta
from authpi.crypto.ids import sha256_hex
from authpi.errors import Conflict, NotFound
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import EventStore, Reaction, Tx
from authpi.messaging.stopping import unless_stopped
from authpi.observability import get_logger
from authpi.web.runtime import Runtime

log = get_logger("authpi.agent")

SECRET_PREFIX = "agts_"
WALLET_SCOPE = "wallet"
RESUME_EVERY_S = 60.0


class Proof(msgspec.Struct, frozen=True, kw_only=True):
    """`credential.proof` and `credential.nonce` of a wallet verifier request."""

    nonce: str
    signature: str


class Challenge(msgspec.Struct, frozen=True, kw_only=True):
    nonce: str
    network: str
    message: str
    expires_at: int


class VerifierSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None = None
    description: str | None = None


def wallet_key(issuer_id: str, network: str | None, lookup: str | None) -> str:
    return f"{issuer_id}|{network}|{lookup}"


class Agents:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.schema = rt.schema("agent")
        self.views = inline_views(self.schema)
        self.store = EventStore(rt.pool, self.schema, "agent", rt.ids, self.views)
        self.queries = AgentQueries(self.schema)
        self.issuer_queries = IssuerQueries(self.schema)
        self.issuers = IssuerGate(rt, self.issuer_queries)

    def _meta(
        self, account_id: str, issuer_id: str, actor: Actor, trigger: str = "api", **subject: str
    ) -> Meta:
        return Meta(
            account_id=account_id, issuer_id=issuer_id, actor=actor, trigger=trigger,
            region=self.rt.settings.region,
            subject={"account_id": account_id, "issuer_id": issuer_id, **subject},
        )  # fmt: skip

    async def get(self, account_id: str, issuer_id: str, agent_id: str) -> AgentRow:
        await self.issuers.require(account_id, issuer_id)
        return await self._agent(account_id, issuer_id, agent_id)

    async def _agent(self, account_id: str, issuer_id: str, agent_id: str) -> AgentRow:
        """The agent, once its issuer was checked."""
        require_known_id(agent_id)
        async with self.rt.pool.connection() as conn:
            row = await self.queries.agent(conn, account_id, issuer_id, agent_id)
        if row is None:
            raise NotFound("no such agent", reason="agent.not_found")
        return row

    async def create(
        self, account_id: str, issuer_id: str, fields: dict[str, Any], *, actor: Actor
    ) -> str:
        await self.issuers.require(account_id, issuer_id)
        agent_id = self.rt.ids.new("agt")
        cmd = CreateAgent(agent_id=agent_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                          **fields)  # fmt: skip
        await self._run(account_id, cmd, actor)
        return agent_id

    async def update(
        self, account_id: str, issuer_id: str, agent_id: str, patch: dict[str, Any], *,
        actor: Actor, if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self.issuers.require(account_id, issuer_id)
        cmd = UpdateAgent(agent_id=agent_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                          if_match=if_match, **patch)  # fmt: skip
        await self._run(account_id, cmd, actor)

    async def delete(
        self, account_id: str, issuer_id: str, agent_id: str, *, actor: Actor,
        if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self.issuers.require(account_id, issuer_id)
        cmd = DeleteAgent(agent_id=agent_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                          if_match=if_match)  # fmt: skip
        await self._run(account_id, cmd, actor)

    async def add_secret_verifier(
        self, account_id: str, issuer_id: str, agent_id: str, spec: VerifierSpec, *,
        actor: Actor,
    ) -> tuple[str, str]:  # fmt: skip
        """A new secret verifier; returns its id and the secret, which exists nowhere else."""
        await self.get(account_id, issuer_id, agent_id)
        secret = SECRET_PREFIX + self.rt.ids.secret(32)
        new = NewVerifier(
            verifier_id=self.rt.ids.new("avf"), type="secret", name=spec.name,
            description=spec.description,
            credential=VerifierCredential(algorithm="sha256", hint=secret[-4:]),
            secret_sha256=sha256_hex(secret),
        )  # fmt: skip
        await self._add(account_id, issuer_id, agent_id, new, actor)
        return new.verifier_id, secret

    async def add_wallet_verifier(
        self, account_id: str, issuer_id: str, agent_id: str, wallet: Wallet,
        spec: VerifierSpec, proof: Proof | None, *, actor: Actor,
    ) -> str:  # fmt: skip
        """A wallet verifier. With the issuer's `agents.wallet_proof = "eip191"`, or whenever a
        proof is given, the wallet must have signed a challenge issued for this agent."""
        issuer = await self.issuers.require(account_id, issuer_id)
        await self._agent(account_id, issuer_id, agent_id)
        if proof is None and issuer.wallet_proof == EIP191:
            raise bad("credential.proof", "is required by the issuer: sign a challenge from "
                      "POST …/verifiers/challenge", "required")  # fmt: skip
        if proof is not None:
            check_proof(wallet, agent_id, proof.nonce, proof.signature)
        new = NewVerifier(
            verifier_id=self.rt.ids.new("avf"), type="wallet", name=spec.name,
            description=spec.description,
            credential=VerifierCredential(network=wallet.network, address=wallet.address,
                                          account_id=wallet.account_id),
            network=wallet.network, lookup_address=wallet.lookup,
            proof=EIP191 if proof is not None else None,
        )  # fmt: skip
        await self._add(account_id, issuer_id, agent_id, new, actor, proof)
        return new.verifier_id

    async def remove_verifier(
        self, account_id: str, issuer_id: str, agent_id: str, verifier_id: str, *,
        actor: Actor, if_match: str | None = None,
    ) -> None:  # fmt: skip
        await self.issuers.require(account_id, issuer_id)
        cmd = RemoveVerifier(agent_id=agent_id, issuer_id=issuer_id, verifier_id=verifier_id,
                             now=self.rt.clock.now_ms(), if_match=if_match)  # fmt: skip
        await self._run(account_id, cmd, actor, verifier_id=verifier_id)

    async def challenge(
        self, account_id: str, issuer_id: str, agent_id: str, network: str
    ) -> Challenge:
        """A one-time nonce, valid 10 minutes, for proving control of a wallet on `network`."""
        await self.get(account_id, issuer_id, agent_id)
        nonce, now = self.rt.ids.secret(16), self.rt.clock.now_ms()
        expires_at = now + CHALLENGE_TTL_MS
        async with self.rt.pool.connection() as conn:
            await self.queries.new_challenge(
                conn, nonce=nonce, agent_id=agent_id, issuer_id=issuer_id, network=network,
                now=now, expires_at=expires_at,
            )  # fmt: skip
        return Challenge(nonce=nonce, network=network, expires_at=expires_at,
                         message=challenge_message(agent_id, network, nonce))  # fmt: skip

    async def count_wallet_use(self, verifier_id: str) -> None:
        """A resolution counts as a use of the wallet verifier (platform.md 4.4 step 7)."""
        async with self.rt.pool.connection() as conn:
            await self.queries.count_use(conn, verifier_id, self.rt.clock.now_ms())

    async def _add(
        self, account_id: str, issuer_id: str, agent_id: str, new: NewVerifier, actor: Actor,
        proof: Proof | None = None,
    ) -> None:  # fmt: skip
        cmd = AddVerifier(agent_id=agent_id, issuer_id=issuer_id, now=self.rt.clock.now_ms(),
                          verifier=new)  # fmt: skip
        before: list[Reaction] = []
        if proof is not None:
            before.append(self._take_challenge(agent_id, new.network or "", proof.nonce))
        try:
            await self._run(account_id, cmd, actor, before, verifier_id=new.verifier_id)
        except Conflict as exc:
            if exc.reason != f"reservation.{WALLET_SCOPE}":
                raise
            raise Conflict("this wallet is already a verifier of an agent of this issuer",
                           reason="agent.wallet_taken") from None  # fmt: skip

    async def _run(
        self, account_id: str, cmd: AgentCommand, actor: Actor,
        before: list[Reaction] | None = None, **subject: str,
    ) -> None:  # fmt: skip
        for value in (cmd.agent_id, *subject.values()):
            require_known_id(value)
        meta = self._meta(account_id, cmd.issuer_id, actor, agent_id=cmd.agent_id, **subject)
        reactions = [self._issuer_live(account_id, cmd.issuer_id), *(before or []),
                     self._wallets]  # fmt: skip
        await self.store.execute(cmd.agent_id, agent, cmd, meta, reactions)

    def _issuer_live(self, account_id: str, issuer_id: str) -> Reaction:
        async def check(tx: Tx) -> None:
            cur = await tx.conn.execute(
                self.issuer_queries.live_issuer_for_share, [issuer_id, account_id]
            )
            if await cur.fetchone() is None:
                raise NotFound("no such issuer", reason="issuer.not_found")

        return check

    def _take_challenge(self, agent_id: str, network: str, nonce: str) -> Reaction:
        async def take(tx: Tx) -> None:
            params = {"nonce": nonce, "agent_id": agent_id, "network": network,
                      "now": self.rt.clock.now_ms()}  # fmt: skip
            cur = await tx.conn.execute(self.queries.take_challenge, params)
            if await cur.fetchone() is None:
                raise bad("credential.nonce", "is not an open challenge of this agent and network")

        return take

    async def _wallets(self, tx: Tx) -> None:
        """Claim and free (issuer, network, address) with the events that need it."""
        for stored in tx.events:
            match stored.event:
                case AgentVerifierAdded(verifier_type="wallet") as e:
                    key = wallet_key(e.issuer_id, e.network, e.lookup_address)
                    await tx.reserve(WALLET_SCOPE, key, e.verifier_id)
                case AgentVerifierRemoved(verifier_type="wallet") as e:
                    key = wallet_key(e.issuer_id, e.network, e.lookup_address)
                    await tx.release(WALLET_SCOPE, key, e.verifier_id)
                case AgentDeleted() as e if e.verifier_ids:
                    await tx.conn.execute(self.queries.release_wallets,
                                          [WALLET_SCOPE, e.verifier_ids])  # fmt: skip

    async def finish_cascades(self) -> list[str]:
        """Delete the agents of every issuer the directory deleted; repeatable. Returns the
        issuers finished."""
        async with self.rt.pool.connection() as conn:
            pending = await self.issuer_queries.pending_cascades(conn)
        for issuer_id, account_id in pending:
            async with self.rt.pool.connection() as conn:
                agent_ids = await self.queries.agent_ids_of_issuer(conn, issuer_id)
            meta = self._meta(account_id, issuer_id, SYSTEM, trigger="system")
            for agent_id in agent_ids:
                cmd = DeleteAgent(agent_id=agent_id, issuer_id=issuer_id,
                                  now=self.rt.clock.now_ms())  # fmt: skip
                with contextlib.suppress(NotFound):
                    await self.store.execute(agent_id, agent, cmd, meta,
                                             [self._wallets])  # fmt: skip
            async with self.rt.pool.connection() as conn:
                await self.issuer_queries.cascade_done(conn, issuer_id)
            log.info("agents.issuer_cascaded", issuer_id=issuer_id, agents=len(agent_ids))
        return [issuer_id for issuer_id, _ in pending]

    async def cascade_task(self, stop: asyncio.Event) -> None:
        """Background task: finish cascades at start-up, on each notice of the agent-issuers
        consumer, and now and then."""
        channel = render("LISTEN {channel}", channel=cascade_channel(self.schema))
        async with await psycopg.AsyncConnection.connect(self.rt.dsn, autocommit=True) as conn:
            await conn.execute(channel)
            while not stop.is_set():
                await self.finish_cascades()
                # Until a notice, RESUME_EVERY_S, or the stop.
                notice = conn.notifies(timeout=RESUME_EVERY_S, stop_after=1)
                await unless_stopped(_drained(notice), stop)


async def _drained(notices: AsyncIterator[Any]) -> None:
    async for _ in notices:
        pass
