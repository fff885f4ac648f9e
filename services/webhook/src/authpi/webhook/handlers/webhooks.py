"""The write path of webhooks (platform.md 7.1, 7.2, 7.7). Secrets are `whs_` + 43 base62
characters (32 random bytes; base62 is within the base64url alphabet), bearer tokens `wht_` +
43; both are returned once and afterwards shown as hints ("..." + the last 6 characters). They
are never in an event: a reaction in the event's transaction seals each one with its own data
key, wrapped by the KEK, into webhook_secrets. A regenerated signing secret leaves the previous
one signing for 24 hours (OP-13); a removed or deleted webhook's secrets are deleted.

The delivery engine's status changes (`open_circuit`, `close_circuit`, `disable_failing`) run
here too, as the system; each is a no-op unless the webhook is in the state it leaves."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import SYSTEM, Actor, Meta
from authpi.contracts.webhook import WebhookCreated, WebhookDeleted, WebhookUpdated
from authpi.crypto.envelope import new_key, seal
from authpi.errors import NotFound
from authpi.eventstore.store import EventStore, Tx
from authpi.web.runtime import Runtime
from authpi.webhook.domain import webhook
from authpi.webhook.domain.commands import (
    CloseCircuit,
    CreateWebhook,
    DeleteWebhook,
    DisableFailing,
    Fresh,
    OpenCircuit,
    SystemCommand,
    UpdateWebhook,
    WebhookCommand,
)
from authpi.webhook.projections import inline_views
from authpi.webhook.queries.webhooks import (
    BEARER,
    SIGNATURE,
    SecretSql,
    WebhookQueries,
    WebhookRow,
    secret_context,
)

SECRET_PREFIX = "whs_"
BEARER_PREFIX = "wht_"
ROTATION_OVERLAP_MS = 24 * 3600 * 1000
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def hint(secret: str) -> str:
    return "..." + secret[-6:]


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """The plaintexts a write may issue; `issued` tells which it did."""

    signature: str
    bearer: str

    @property
    def fresh(self) -> Fresh:
        return Fresh(signature_hint=hint(self.signature), bearer_hint=hint(self.bearer))


class Issued(msgspec.Struct, frozen=True, kw_only=True):
    """The one-time plaintexts of a create or an update: None where nothing was issued."""

    signature_secret: str | None = None
    bearer_token: str | None = None


def require_known_id(webhook_id: str) -> None:
    """An id we could have minted; anything else names nothing (404, never a 500)."""
    if not webhook_id.startswith("wh_") or len(webhook_id) > 64 or set(webhook_id) - _ID_CHARS:
        raise NotFound("no such webhook", reason="webhook.not_found")


class Webhooks:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.schema = rt.schema("webhook")
        self.views = inline_views(self.schema)
        self.store = EventStore(rt.pool, self.schema, "webhook", rt.ids, self.views)
        self.queries = WebhookQueries(self.schema)
        self.secret_sql = SecretSql(self.schema)

    def _meta(self, account_id: str, webhook_id: str, actor: Actor, trigger: str = "api") -> Meta:
        return Meta(
            account_id=account_id, actor=actor, trigger=trigger, region=self.rt.settings.region,
            subject={"account_id": account_id, "webhook_id": webhook_id},
        )  # fmt: skip

    def new_secrets(self, signature: str | None = None, bearer: str | None = None) -> Secrets:
        return Secrets(
            signature=signature or SECRET_PREFIX + self.rt.ids.secret(32),
            bearer=bearer or BEARER_PREFIX + self.rt.ids.secret(32),
        )

    async def get(self, account_id: str, webhook_id: str) -> WebhookRow:
        require_known_id(webhook_id)
        async with self.rt.pool.connection() as conn:
            row = await self.queries.webhook(conn, account_id, webhook_id)
        if row is None:
            raise NotFound("no such webhook", reason="webhook.not_found")
        return row

    async def create(
        self, account_id: str, fields: dict[str, Any], secrets: Secrets, *, actor: Actor
    ) -> tuple[str, Issued]:
        webhook_id = self.rt.ids.new("wh")
        cmd = CreateWebhook(webhook_id=webhook_id, account_id=account_id,
                            now=self.rt.clock.now_ms(), fresh=secrets.fresh, **fields)  # fmt: skip
        issued = await self._run(account_id, webhook_id, cmd, actor, secrets)
        return webhook_id, issued

    async def update(
        self, account_id: str, webhook_id: str, patch: dict[str, Any], secrets: Secrets, *,
        actor: Actor, if_match: str | None = None,
    ) -> Issued:  # fmt: skip
        require_known_id(webhook_id)
        cmd = UpdateWebhook(webhook_id=webhook_id, account_id=account_id,
                            now=self.rt.clock.now_ms(), if_match=if_match, fresh=secrets.fresh,
                            **patch)  # fmt: skip
        return await self._run(account_id, webhook_id, cmd, actor, secrets)

    async def delete(
        self, account_id: str, webhook_id: str, *, actor: Actor, if_match: str | None = None
    ) -> None:
        require_known_id(webhook_id)
        cmd = DeleteWebhook(webhook_id=webhook_id, account_id=account_id,
                            now=self.rt.clock.now_ms(), if_match=if_match)  # fmt: skip
        await self._run(account_id, webhook_id, cmd, actor, None)

    async def open_circuit(self, account_id: str, webhook_id: str) -> None:
        """active -> failing (`status_by` system, `status_reason` circuit_open)."""
        await self._system(account_id, OpenCircuit(webhook_id=webhook_id,
                                                   now=self.rt.clock.now_ms()))  # fmt: skip

    async def close_circuit(self, account_id: str, webhook_id: str) -> None:
        """failing -> active (a successful probe)."""
        await self._system(account_id, CloseCircuit(webhook_id=webhook_id,
                                                    now=self.rt.clock.now_ms()))  # fmt: skip

    async def disable_failing(self, account_id: str, webhook_id: str) -> None:
        """failing -> disabled (`status_reason` circuit_open_expired)."""
        await self._system(account_id, DisableFailing(webhook_id=webhook_id,
                                                      now=self.rt.clock.now_ms()))  # fmt: skip

    async def _system(self, account_id: str, cmd: SystemCommand) -> None:
        meta = self._meta(account_id, cmd.webhook_id, SYSTEM, trigger="system")
        await self.store.execute(cmd.webhook_id, webhook, cmd, meta)

    async def _run(
        self, account_id: str, webhook_id: str, cmd: WebhookCommand, actor: Actor,
        secrets: Secrets | None,
    ) -> Issued:  # fmt: skip
        keeper = _SecretKeeper(self, secrets)
        meta = self._meta(account_id, webhook_id, actor)
        await self.store.execute(webhook_id, webhook, cmd, meta, [keeper.keep])
        return keeper.issued


class _SecretKeeper:
    """The reaction storing, in the event's transaction, the secrets its events issued."""

    def __init__(self, hooks: Webhooks, secrets: Secrets | None) -> None:
        self.hooks = hooks
        self.secrets = secrets
        self.issued = Issued()

    async def keep(self, tx: Tx) -> None:
        self.issued = Issued()  # a retried transaction starts over
        sql = self.hooks.secret_sql
        for stored in tx.events:
            event = stored.event
            match event:
                case WebhookCreated():
                    await self._store(tx, event.id, stored.stream_version, event.auth.type,
                                      [SIGNATURE, BEARER], event.created_at)  # fmt: skip
                case WebhookUpdated():
                    for kind, gone in ((SIGNATURE, event.auth.signature_secret_hint is None),
                                       (BEARER, event.auth.bearer_token_hint is None)):  # fmt: skip
                        if gone:
                            await tx.conn.execute(sql.drop_kind, [event.id, kind])
                    await self._store(tx, event.id, stored.stream_version, event.auth.type,
                                      event.rotated, event.updated_at)  # fmt: skip
                case WebhookDeleted():
                    await tx.conn.execute(sql.drop_all, [event.id])
                case _:
                    continue

    async def _store(
        self, tx: Tx, webhook_id: str, serial: int, auth_type: str, kinds: list[str], now: int
    ) -> None:
        assert self.secrets is not None, "a create or update always carries candidate secrets"
        sql = self.hooks.secret_sql
        kek = self.hooks.rt.kek
        for kind in kinds:
            if kind == SIGNATURE and webhook.signs(auth_type):
                plain = self.secrets.signature
                self.issued = msgspec.structs.replace(self.issued, signature_secret=plain)
                retire = {"id": webhook_id, "kind": kind, "retires_at": now + ROTATION_OVERLAP_MS}
                await tx.conn.execute(sql.retire, retire)
            elif kind == BEARER and webhook.bears(auth_type):
                plain = self.secrets.bearer
                self.issued = msgspec.structs.replace(self.issued, bearer_token=plain)
                await tx.conn.execute(sql.drop_kind, [webhook_id, kind])
            else:
                continue
            context = secret_context(webhook_id, kind, serial)
            dek = new_key()
            await tx.conn.execute(sql.insert, [
                webhook_id, kind, serial, kek.wrap(dek, context),
                seal(dek, plain.encode(), context.encode()), hint(plain), now])  # fmt: skip
