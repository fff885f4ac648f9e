"""Integrator credentials as the NATS server sees them (issue 12): per-account NATS users that
read that account's public events from the `<NS>_PUBLIC` stream, and nothing else
(messaging.auth.integrator_permissions).

The credentials are event-sourced (handlers.integrators); the server's users are rendered from
integrator_credentials_view. With the embedded server (the all-in-one host, no
AUTHPI_NATS_URL), `EmbeddedAuthorization` renders its configuration at start and again at every
change of the view (LISTEN `<schema>_integrators`), and has the server reload it (SIGHUP): a
revoked credential is refused, and its open connections closed, at once. A deployment with its
own NATS server renders the same block with `authpi nats-auth --out <dir>`, which reads the
view (deploy/README.md)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import psycopg

from authpi.config import Settings
from authpi.contracts.subjects import public_stream
from authpi.embedded.servers import reload_nats
from authpi.eventstore.sqltext import render
from authpi.messaging import auth as nats_auth
from authpi.messaging.auth import public_filter
from authpi.observability import get_logger
from authpi.webhook.handlers.integrators import IntegratorCredentials
from authpi.webhook.queries.integrators import CredentialRow, IntegratorQueries

log = get_logger("authpi.webhook.integrators")


def legacy_file(settings: Settings) -> Path:
    """Where credentials were kept before they were events: imported once, then renamed."""
    return settings.data_dir / nats_auth.INTEGRATORS_FILE


def recipe(cred: CredentialRow, password: str | None, namespace: str) -> dict[str, Any]:
    """What the integrator needs to consume (README "Integrator subscriptions")."""
    out: dict[str, Any] = {
        "id": cred.id, "user": cred.nats_user, "account_id": cred.account_id, "name": cred.name,
        "status": cred.status, "issued_at": cred.issued_at, "revoked_at": cred.revoked_at,
    }  # fmt: skip
    if password is not None:
        out["password"] = password
    out.update(
        stream=public_stream(namespace), consumer=cred.nats_user,
        filter_subject=public_filter(cred.account_id, namespace),
        inbox_prefix=nats_auth.inbox_prefix(cred.nats_user),
    )  # fmt: skip
    return out


async def active_credentials(
    conn: psycopg.AsyncConnection[Any], schema: str
) -> dict[str, nats_auth.IntegratorCredential]:
    """The view's active credentials; none before the webhook service's migrations ran."""
    cur = await conn.execute("SELECT to_regclass(%s)", [f"{schema}.integrator_credentials_view"])
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return {}
    return await IntegratorQueries(schema).active(conn)


class EmbeddedAuthorization:
    """Keeps the embedded nats-server's users equal to the view's active credentials. Imports
    the former file once before its first render. `ready` is set after the first render, so the
    host serves only once the server accepts every active credential."""

    name = "webhook:integrators-nats"

    def __init__(
        self, dsn: str, settings: Settings, schema: str, credentials: IntegratorCredentials,
        poll_interval: float = 30.0,
    ) -> None:  # fmt: skip
        self.dsn = dsn
        self.settings = settings
        self.schema = schema
        self.credentials = credentials
        self.poll_interval = poll_interval
        self.ready = asyncio.Event()
        self.renders = 0  # configurations written (each followed by a reload)
        self._listen = render("LISTEN {channel}", channel=f"{schema}_integrators")

    async def run(self, stop: asyncio.Event) -> None:
        imported = await self.credentials.import_file(legacy_file(self.settings))
        if imported:
            log.info("integrators.imported", count=imported, file=nats_auth.INTEGRATORS_FILE)
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            await conn.execute(self._listen)
            wake = asyncio.Event()
            listener = asyncio.create_task(_wake_on_notify(conn, wake))
            try:
                while not stop.is_set():
                    wake.clear()  # before reading: a change committed after the read wakes us
                    await self.render_once()
                    self.ready.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(_either(wake, stop), self.poll_interval)
                    if listener.done():
                        listener.result()  # the LISTEN connection died: fail, be restarted
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def render_once(self) -> bool:
        """Write the configuration from the view and reload the server; False when unchanged."""
        async with self.credentials.rt.pool.connection() as conn:
            active = await active_credentials(conn, self.schema)
        data_dir = self.settings.data_dir
        if not nats_auth.write_embedded(data_dir, self.settings.namespace, active):
            return False
        self.renders += 1
        reloaded = reload_nats(data_dir / "nats")
        log.info("integrators.rendered", active=len(active), reloaded=reloaded)
        return True


async def _wake_on_notify(conn: psycopg.AsyncConnection[Any], wake: asyncio.Event) -> None:
    async for _ in conn.notifies():
        wake.set()


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    tasks = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
