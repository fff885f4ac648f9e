"""The only write path of the credit ledger (platform.md 5.4, 5.10). Every command on an account
runs under a transaction-scoped advisory lock on that account, so concurrent top-ups and usage
queue instead of failing on the stream's expected version, and the balance each entry records is
the one it was decided on.

Top-ups are idempotent on the payment, (network, asset, payer, nonce): the key is reserved in the
transaction of the entry, and a payment already credited answers `duplicate` with its entry.
A usage hour is closed at most once: its key is reserved with the entry, and its usage_hours row
is marked closed in the same transaction (handlers/metering.py)."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.billing.domain import ledger
from authpi.billing.domain.commands import (
    AddMethod,
    Adjust,
    ExpireGrant,
    Grant,
    LedgerCommand,
    RecordTopup,
    Refund,
    RemoveMethod,
    UpdateMethod,
)
from authpi.billing.domain.rates import billing_mode
from authpi.billing.projections import inline_views
from authpi.billing.queries.ledger import LedgerQueries
from authpi.billing.queries.methods import MethodRow, x402_method
from authpi.contracts.base import SYSTEM, Actor, Meta
from authpi.contracts.billing import Settlement, TopupResult
from authpi.errors import Conflict
from authpi.eventstore.store import EventStore, Outcome, Reaction, Step, Tx
from authpi.web.runtime import Runtime

TOPUP_SCOPE = "topup"
USAGE_SCOPE = "usage"


def stream_of(account_id: str) -> str:
    """The account's ledger stream (one CreditLedger per account)."""
    return f"ledger:{account_id}"


def topup_key(s: Settlement) -> str:
    """The payment's identity (platform.md 5.6, 5.8): network, asset, payer and nonce."""
    return "|".join((s.network, s.asset.lower(), s.payer.lower(), s.nonce.lower()))


def _lock(account_id: str) -> Reaction:
    async def prepare(tx: Tx) -> None:
        await tx.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"authpi.billing:{account_id}"]
        )

    return prepare


class Ledger:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.schema = rt.schema("billing")
        self.views = inline_views(self.schema)
        self.store = EventStore(rt.pool, self.schema, "billing", rt.ids, self.views)
        self.queries = LedgerQueries(self.schema)

    @property
    def mode(self) -> str:
        """The deployment's billing mode (no post-paid method exists in this build)."""
        return billing_mode(self.rt.settings.billing_enforcement, postpaid_enabled=False)

    def meta(self, account_id: str, actor: Actor = SYSTEM, trigger: str = "system") -> Meta:
        return Meta(
            account_id=account_id, actor=actor, trigger=trigger, region=self.rt.settings.region,
            subject={"account_id": account_id},
        )  # fmt: skip

    async def run(
        self,
        account_id: str,
        cmd: LedgerCommand,
        *,
        actor: Actor = SYSTEM,
        trigger: str = "system",
        reactions: tuple[Reaction, ...] = (),
        prepare: Reaction | None = None,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> Outcome[ledger.Ledger]:
        lock = _lock(account_id)

        async def locked(tx: Tx) -> None:
            await lock(tx)
            if prepare is not None:
                await prepare(tx)

        outcomes = await self.store.execute_all(
            [Step(stream_of(account_id), ledger, cmd)], self.meta(account_id, actor, trigger),
            reactions, attempts=5, prepare=locked, conn=conn,
        )  # fmt: skip
        return outcomes[0]

    async def record_topup(
        self, account_id: str, settlement: Settlement, *, method_id: str | None
    ) -> TopupResult:
        """Credit a settled payment once; the same payment again answers `duplicate`."""
        key = topup_key(settlement)
        entry_id = self.rt.ids.new("cle")
        cmd = RecordTopup(
            entry_id=entry_id, amount=settlement.value, reference=settlement.nonce,
            external_reference=settlement.tx_hash, method_id=method_id,
            now=settlement.settled_at or self.rt.clock.now_ms(), mode=self.mode,
        )  # fmt: skip
        found: list[str] = []

        async def plan(tx: Tx) -> list[Step[Any, Any]]:
            await _lock(account_id)(tx)
            found.clear()
            owner = await self.queries.reserved(tx.conn, TOPUP_SCOPE, key)
            if owner is not None:
                found.append(owner)
                return []
            return [Step(stream_of(account_id), ledger, cmd)]

        async def reserve(tx: Tx) -> None:
            await tx.reserve(TOPUP_SCOPE, key, f"{account_id}|{entry_id}")

        await self.store.execute_all(
            plan, self.meta(account_id, trigger="api"), (reserve,), attempts=5
        )
        if found:
            owner_account, _, owner_entry = found[0].partition("|")
            if owner_account != account_id:
                raise Conflict(
                    "this payment was already credited to another account",
                    reason="ledger.topup_other_account",
                )
            return await self._result(account_id, owner_entry, duplicate=True, nonce=cmd.reference)
        return await self._result(account_id, entry_id, duplicate=False, nonce=cmd.reference)

    async def _result(
        self, account_id: str, entry_id: str, *, duplicate: bool, nonce: str
    ) -> TopupResult:
        async with self.rt.pool.connection() as conn:
            balance = await self.queries.balance(conn, account_id)
        return TopupResult(
            balance=balance, entry_id=entry_id, duplicate=duplicate, payment_reference=nonce
        )

    async def grant(
        self, account_id: str, amount: int, operation: str, *, expires_at: int | None,
        period: str | None = None, actor: Actor = SYSTEM,
    ) -> str:  # fmt: skip
        entry_id = self.rt.ids.new("cle")
        cmd = Grant(
            entry_id=entry_id, amount=amount, operation=operation, period=period,
            expires_at=expires_at, now=self.rt.clock.now_ms(), mode=self.mode,
        )  # fmt: skip
        await self.run(account_id, cmd, actor=actor)
        return entry_id

    async def adjust(
        self, account_id: str, amount: int, operation: str, *, reference: str | None = None,
        actor: Actor = SYSTEM,
    ) -> str:  # fmt: skip
        entry_id = self.rt.ids.new("cle")
        cmd = Adjust(
            entry_id=entry_id, amount=amount, operation=operation, reference=reference,
            now=self.rt.clock.now_ms(), mode=self.mode,
        )  # fmt: skip
        await self.run(account_id, cmd, actor=actor)
        return entry_id

    async def refund(
        self, account_id: str, topup_entry_id: str, amount: int, *,
        external_reference: str | None = None, actor: Actor = SYSTEM,
    ) -> str:  # fmt: skip
        entry_id = self.rt.ids.new("cle")
        cmd = Refund(
            entry_id=entry_id, amount=amount, related_entry_id=topup_entry_id,
            external_reference=external_reference, now=self.rt.clock.now_ms(), mode=self.mode,
        )  # fmt: skip
        await self.run(account_id, cmd, actor=actor)
        return entry_id

    async def expire_grants(self, account_id: str) -> None:
        cmd = ExpireGrant(entry_id=self.rt.ids.new("cle"), now=self.rt.clock.now_ms(),
                          mode=self.mode)  # fmt: skip
        await self.run(account_id, cmd)

    async def add_method(self, account_id: str, fields: dict[str, Any], *, actor: Actor) -> str:
        method_id = self.rt.ids.new("pm")
        cmd = AddMethod(method_id=method_id, now=self.rt.clock.now_ms(), **fields)
        await self.run(account_id, cmd, actor=actor, trigger="api")
        return method_id

    async def update_method(
        self, account_id: str, method_id: str, changes: dict[str, object], *, actor: Actor
    ) -> None:
        cmd = UpdateMethod(method_id=method_id, changes=changes, now=self.rt.clock.now_ms())
        await self.run(account_id, cmd, actor=actor, trigger="api")

    async def remove_method(self, account_id: str, method_id: str, *, actor: Actor) -> None:
        cmd = RemoveMethod(method_id=method_id, now=self.rt.clock.now_ms())
        await self.run(account_id, cmd, actor=actor, trigger="api")

    async def x402_method(self, account_id: str) -> MethodRow | None:
        """The account's enabled x402 method, if any: what a 402 challenge asks for (its
        `topup_amount`) and whom it accepts (its `payer`); the x402 side's method lookup."""
        async with self.rt.pool.connection() as conn:
            return await x402_method(conn, self.schema, account_id)

    async def state(self, account_id: str) -> tuple[ledger.Ledger, int]:
        return await self.store.read_state(stream_of(account_id), ledger)
