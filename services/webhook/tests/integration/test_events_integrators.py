"""Integrator subscriptions (issue 12) against a platform on its own embedded NATS, as `make run`
starts it: a credential issued for account A consumes A's public events through the documented
recipe (its durable consumer on the public stream, filtered to A's subjects); it cannot create a
consumer for B's subjects, pull B's consumer, or plainly subscribe to B's subjects. Issuing and
revoking are events of the webhook service (only the bcrypt digest is in them); the embedded
server's users follow the view: a revoked credential's open connection is closed and a new one
refused; a replay of the view changes nothing; a former credentials file is imported once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import bcrypt
import msgspec
import nats
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from authpi.contracts.public import PublicEvent
from authpi.contracts.subjects import public_stream
from authpi.eventstore.replay import replay
from authpi.messaging import auth as nats_auth
from authpi.messaging.auth import public_filter
from authpi.platform.testing import tenants
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.testing.plugin import eventually
from authpi.webhook.handlers.integrators import CLI, IntegratorCredentials
from authpi.webhook.public import integrators as ints
from authpi.webhook.public.integrators import EmbeddedAuthorization
from authpi.webhook.queries.integrators import CredentialRow

EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "integrator_consumer.py"


@pytest_asyncio.fixture(scope="module")
async def secured(infra, tmp_path_factory) -> Any:
    data_dir = tmp_path_factory.mktemp("integrators")
    async with running_platform(infra, data_dir, embedded_nats=True) as running:
        yield running


async def connect(p: RunningPlatform, user: str, password: str, errors: list[str]) -> NATS:
    """The recipe's connection: the credential's user, password and inbox prefix."""

    async def collect(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        p.nats_url, user=user, password=password, inbox_prefix=f"_INBOX.{user}",
        error_cb=collect, allow_reconnect=False,
    )  # fmt: skip


def consumer(cred: CredentialRow, account_id: str, ns: str) -> ConsumerConfig:
    user = cred.nats_user
    return ConsumerConfig(
        name=user, durable_name=user, filter_subject=public_filter(account_id, ns),
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
    )  # fmt: skip


async def issuer_in(p: RunningPlatform, account_id: str, key: tuple[str, str]) -> str:
    sdk = AuthPIAdmin(api_key=key, account_id=account_id, base_url=p.api_url, retries=False)
    return (await sdk.issuers.create({"name": f"int-{uuid.uuid4().hex[:6]}"})).id


def credentials(p: RunningPlatform) -> IntegratorCredentials:
    return next(x.exports["integrators"] for x in p.handle.parts if "integrators" in x.exports)


def authorization(p: RunningPlatform) -> EmbeddedAuthorization:
    return next(x.exports["integrators_nats"] for x in p.handle.parts if "integrators" in x.exports)


async def stored_events(p: RunningPlatform, stream_id: str) -> list[tuple[str, str, str]]:
    """(type, data, meta) of a stream of the webhook service's store, as stored."""
    assert p.handle.rt is not None
    async with p.handle.rt.pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT type, data::text, meta::text FROM "{p.namespace}_webhook".events'
            " WHERE stream_id = %s ORDER BY stream_version",
            [stream_id],
        )
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def _violation(errors: list[str], action: str, subject: str) -> bool:
    """The server reported a permissions violation for `action` ("publish", "subscription") to
    exactly `subject` on the connection whose errors these are."""
    report = f'permissions violation for {action} to "{subject}"'.lower()
    return any(report in error.lower() for error in errors)


async def denied(request: Awaitable[Any], errors: list[str], subject: str) -> bool:
    """The server refuses `request`, published to `subject`: it reports the permissions
    violation to the connection (a refused request gets no reply, so its timeout would only
    say so later), and the request never succeeds."""
    pending = asyncio.ensure_future(request)

    def succeeded() -> bool:
        return pending.done() and not pending.cancelled() and pending.exception() is None

    async def answered() -> bool:
        return succeeded() or await _violation(errors, "publish", subject)

    try:
        await eventually(answered)
        return not succeeded()
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pending


async def refused(call: Any) -> bool:
    try:
        await call
    except Exception:  # a timeout or an error reply: the server refused
        return True
    return False


async def test_integrator_reads_only_its_own_accounts_public_events(secured):
    ns = secured.namespace
    stream = public_stream(ns)
    a_id, a_key = await tenants.new_account(secured, "integrator A")
    b_id, b_key = await tenants.new_account(secured, "integrator B")
    creds = credentials(secured)
    issued_a = await creds.issue(a_id, "crm", actor=CLI, trigger="system")
    issued_b = await creds.issue(b_id, "siem", actor=CLI, trigger="system")
    (cred_a, pw_a), (cred_b, pw_b) = [(i.credential, i.password) for i in (issued_a, issued_b)]
    assert ints.recipe(cred_a, None, ns)["filter_subject"] == f"{ns}.public.{a_id}.>"
    assert ints.recipe(cred_a, pw_a, ns)["password"] == pw_a
    # The issue is an event carrying the digest, never the password.
    [(kind, data, meta)] = await stored_events(secured, cred_a.id)
    assert kind == "integrator-credential.issued"
    digest = json.loads(data)["password_bcrypt"]
    assert digest.startswith("$2") and pw_a not in data and pw_a not in meta
    assert json.loads(data)["user"] == cred_a.nats_user
    assert json.loads(meta)["actor"]["type"] == "system"
    issuer_a = await issuer_in(secured, a_id, a_key)
    issuer_b = await issuer_in(secured, b_id, b_key)

    errors_a: list[str] = []
    nc_a = await eventually(lambda: _try_connect(secured, cred_a.nats_user, pw_a, errors_a))
    errors_b: list[str] = []
    nc_b = await eventually(lambda: _try_connect(secured, cred_b.nats_user, pw_b, errors_b))
    try:
        js_a, js_b = nc_a.jetstream(), nc_b.jetstream()
        await js_a.add_consumer(stream, consumer(cred_a, a_id, ns))
        sub_a = await js_a.pull_subscribe_bind(durable=cred_a.nats_user, stream=stream)
        seen: list[PublicEvent] = []

        async def issuer_created() -> bool:
            with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
                for msg in await sub_a.fetch(50, timeout=1):
                    assert msg.subject.startswith(f"{ns}.public.{a_id}.")
                    seen.append(msgspec.json.decode(msg.data, type=PublicEvent))
                    await msg.ack()
            return any(e.type == "issuer.created" and e.subject.get("issuer_id") == issuer_a
                       for e in seen)  # fmt: skip

        await eventually(issuer_created)
        assert all(e.subject["account_id"] == a_id for e in seen)
        assert all(msg_id.startswith("evt_") for msg_id in (e.id for e in seen))

        # B's own credential works for B.
        await js_b.add_consumer(stream, consumer(cred_b, b_id, ns))
        sub_b = await js_b.pull_subscribe_bind(durable=cred_b.nats_user, stream=stream)
        assert await eventually(lambda: _fetch_one(sub_b))

        # A cannot widen or retarget its consumer, nor use or create B's.
        create = f"$JS.API.CONSUMER.CREATE.{stream}"
        b_filter = public_filter(b_id, ns)
        retarget = js_a.add_consumer(stream, consumer(cred_a, b_id, ns), timeout=2)
        assert await denied(retarget, errors_a, f"{create}.{cred_a.nats_user}.{b_filter}")
        take = js_a.add_consumer(stream, consumer(cred_b, b_id, ns), timeout=2)
        assert await denied(take, errors_a, f"{create}.{cred_b.nats_user}.{b_filter}")
        wide = ConsumerConfig(name=cred_a.nats_user, durable_name=cred_a.nats_user,
                              ack_policy=AckPolicy.EXPLICIT)  # fmt: skip
        widen = js_a.add_consumer(stream, wide, timeout=2)
        assert await denied(widen, errors_a, f"{create}.{cred_a.nats_user}")
        stolen = await js_a.pull_subscribe_bind(durable=cred_b.nats_user, stream=stream)
        next_of_b = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{cred_b.nats_user}"
        assert await denied(stolen.fetch(1, timeout=2), errors_a, next_of_b)
        # Nor plainly subscribe to B's (or its own) event subjects: the server refuses the
        # subscription, and B's next event, once B's own consumer has it, never reaches it.
        plain = await nc_a.subscribe(f"{ns}.public.{b_id}.>")
        await eventually(lambda: _violation(errors_a, "subscription", f"{ns}.public.{b_id}.>"))
        later = await issuer_in(secured, b_id, b_key)
        await eventually(lambda: _offers_issuer(sub_b, later))
        await nc_a.flush()  # what the server routed to `plain` with that event is here by now
        assert plain.delivered == 0 and plain.pending_msgs == 0
        assert sum("permissions violation" in e.lower() for e in errors_a) >= 4, errors_a
        assert issuer_b  # B's events exist; A never saw them
        assert not any(e.subject["account_id"] == b_id for e in seen)
    finally:
        await nc_a.close()
        await nc_b.close()

    # The README's example consumer, run as documented, prints B's events.
    line = await run_example(secured, cred_b, pw_b, b_id)
    assert json.loads(line)["subject"]["account_id"] == b_id

    # Revoking closes the open connection and refuses a new one.
    nc_open = await connect(secured, cred_a.nats_user, pw_a, [])
    revoked = await creds.revoke(cred_a.nats_user, account_id=a_id, actor=CLI, trigger="system")
    assert revoked.status == "revoked" and revoked.revoked_at is not None
    assert [(k, json.loads(d)["user"]) for k, d, _ in await stored_events(secured, cred_a.id)] == [
        ("integrator-credential.issued", cred_a.nats_user),
        ("integrator-credential.revoked", cred_a.nats_user),
    ]
    assert [c.id for c in await creds.listed(a_id)] == []
    assert [c.status for c in await creds.listed(a_id, revoked=True)] == ["revoked"]

    async def locked_out() -> bool:
        try:
            nc = await connect(secured, cred_a.nats_user, pw_a, [])
        except Exception:  # authorization refused
            return True
        await nc.close()
        return False

    assert await eventually(locked_out)
    assert await eventually(lambda: _closed(nc_open))
    await nc_open.close()
    await _survives_a_replay(secured, creds, b_id, cred_b, pw_b)
    assert await eventually(locked_out)


async def _survives_a_replay(
    p: RunningPlatform, creds: IntegratorCredentials, b_id: str, cred_b: CredentialRow, pw: str
) -> None:
    """Rebuilt from the events, the view holds the same rows and the server the same users."""
    before = await creds.listed(None, revoked=True)
    view = next(v for v in creds.store.projections if v.name == "webhook-integrator-credentials")
    assert p.handle.rt is not None
    # Replay reads below the snapshot's xmin (late commits are never skipped): wait until every
    # write so far is below it (other transactions of a shared server may hold it back).
    await eventually(lambda: _settled(p, creds.store.schema))
    count = await replay(p.handle.rt.dsn, view, {"webhook": creds.store.schema})
    assert count >= 3
    assert await creds.listed(None, revoked=True) == before
    assert not await authorization(p).render_once()  # the configuration is unchanged
    nc = await eventually(lambda: _try_connect(p, cred_b.nats_user, pw, []))
    await nc.close()
    assert any(c.id == cred_b.id for c in await creds.listed(b_id))


async def test_a_former_credentials_file_is_imported_once(secured):
    creds = credentials(secured)
    acc_id, _ = await tenants.new_account(secured, "integrator legacy")
    password = "legacy-" + uuid.uuid4().hex
    user = "int_" + uuid.uuid4().hex[:16]
    legacy = nats_auth.IntegratorCredential(
        user=user, account_id=acc_id, name="old", created_at=int(time.time() * 1000),
        password_bcrypt=bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode(),
    )  # fmt: skip
    path = secured.handle.settings.data_dir / "legacy-integrators.json"
    path.write_bytes(msgspec.json.encode({user: legacy}))
    assert await creds.import_file(path) == 1
    assert not path.exists() and path.with_name(path.name + ".imported").exists()
    [row] = await creds.listed(acc_id)
    assert (row.nats_user, row.name, row.issued_at) == (user, "old", legacy.created_at)
    nc = await eventually(lambda: _try_connect(secured, user, password, []))
    await nc.close()
    # A second run finds nothing to import: the file is gone, and so would be its users.
    assert await creds.import_file(path) == 0
    path.write_bytes(msgspec.json.encode({user: legacy}))
    assert await creds.import_file(path) == 0
    assert len(await creds.listed(acc_id)) == 1


async def _settled(p: RunningPlatform, schema: str) -> bool:
    assert p.handle.rt is not None
    async with p.handle.rt.pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT max(tx_id) < pg_snapshot_xmin(pg_current_snapshot()) FROM "{schema}".events'
        )
        row = await cur.fetchone()
        return bool(row and row[0])


async def _closed(nc: NATS) -> bool:
    return nc.is_closed


async def run_example(p: RunningPlatform, cred: CredentialRow, password: str,
                      account_id: str) -> str:  # fmt: skip
    env = {**os.environ, "NATS_URL": p.nats_url, "AUTHPI_NAMESPACE": p.namespace,
           "AUTHPI_INTEGRATOR_USER": cred.nats_user, "AUTHPI_INTEGRATOR_PASSWORD": password,
           "AUTHPI_ACCOUNT_ID": account_id}  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLE), env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        return (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
    finally:
        proc.terminate()
        await proc.wait()


async def _try_connect(p: RunningPlatform, user: str, password: str, errors: list[str]) -> Any:
    try:
        return await connect(p, user, password, errors)
    except Exception:  # not reloaded yet
        return None


async def _offers_issuer(sub: Any, issuer_id: str) -> bool:
    """Whether the consumer delivers the issuer's creation. Handed back unacknowledged (the
    example consumer run later reads the same consumer)."""
    with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
        found = False
        for msg in await sub.fetch(50, timeout=1):
            event = msgspec.json.decode(msg.data, type=PublicEvent)
            found |= event.type == "issuer.created" and event.subject.get("issuer_id") == issuer_id
            await msg.nak()
        return found
    return False


async def _fetch_one(sub: Any) -> bool:
    with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
        msgs = await sub.fetch(1, timeout=1)
        for msg in msgs:
            await msg.ack()
        return bool(msgs)
    return False


async def test_the_cli_issues_and_revokes_through_the_running_deployment(secured):
    """`authpi integrators add|list|revoke` as an operator runs them beside `make run`: each
    writes an event; the running host's embedded server follows (another process's NOTIFY)."""
    acc_id, _ = await tenants.new_account(secured, "integrator cli")
    added = json.loads(await cli(secured, "add", "--account", acc_id, "--name", "etl"))
    assert added["id"].startswith("intc_") and added["account_id"] == acc_id
    assert added["filter_subject"] == f"{secured.namespace}.public.{acc_id}.>"
    nc = await eventually(lambda: _try_connect(secured, added["user"], added["password"], []))
    await nc.close()
    [listed] = [
        json.loads(x) for x in (await cli(secured, "list", "--account", acc_id)).splitlines()
    ]
    assert listed["id"] == added["id"] and "password" not in listed
    await cli(secured, "revoke", added["id"], "--account", acc_id)
    assert await cli(secured, "list", "--account", acc_id) == ""

    async def refused_now() -> bool:
        return await refused(connect(secured, added["user"], added["password"], []))

    assert await eventually(refused_now)


async def cli(p: RunningPlatform, *args: str) -> str:
    env = {
        k: v for k, v in os.environ.items() if k not in ("AUTHPI_DATABASE_URL", "AUTHPI_NATS_URL")
    }
    env.update(AUTHPI_DATA_DIR=str(p.handle.settings.data_dir), AUTHPI_NAMESPACE=p.namespace,
               AUTHPI_LOG_LEVEL="warning")  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "authpi"), "integrators", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode().strip()
