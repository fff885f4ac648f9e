"""Integrator subscriptions (issue 12) against a platform on its own embedded NATS, as `make run`
starts it: a credential issued for account A consumes A's public events through the documented
recipe (its durable consumer on the public stream, filtered to A's subjects); it cannot create a
consumer for B's subjects, pull B's consumer, or plainly subscribe to B's subjects; revoking it
takes effect at once (the server reloads its configuration)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from authpi.contracts.public import PublicEvent
from authpi.contracts.subjects import public_stream
from authpi.messaging.auth import IntegratorCredential, public_filter
from authpi.platform.testing import tenants
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.testing.plugin import eventually
from authpi.webhook.public import integrators as ints

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


def consumer(cred: IntegratorCredential, account_id: str, ns: str) -> ConsumerConfig:
    return ConsumerConfig(
        name=cred.user, durable_name=cred.user, filter_subject=public_filter(account_id, ns),
        ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
    )  # fmt: skip


async def issuer_in(p: RunningPlatform, account_id: str, key: tuple[str, str]) -> str:
    sdk = AuthPIAdmin(api_key=key, account_id=account_id, base_url=p.api_url, retries=False)
    return (await sdk.issuers.create({"name": f"int-{uuid.uuid4().hex[:6]}"})).id


async def refused(call: Any) -> bool:
    try:
        await call
    except Exception:  # a timeout or an error reply: the server refused
        return True
    return False


async def test_integrator_reads_only_its_own_accounts_public_events(secured):
    settings = secured.handle.settings
    ns = secured.namespace
    stream = public_stream(ns)
    a_id, a_key = await tenants.new_account(secured, "integrator A")
    b_id, b_key = await tenants.new_account(secured, "integrator B")
    cred_a, pw_a = ints.add(settings, a_id, "crm", int(time.time() * 1000))
    cred_b, pw_b = ints.add(settings, b_id, "siem", int(time.time() * 1000))
    assert ints.apply(settings)
    assert ints.recipe(cred_a, None, ns)["filter_subject"] == f"{ns}.public.{a_id}.>"
    assert "password_bcrypt" not in ints.recipe(cred_a, pw_a, ns)
    assert cred_a.password_bcrypt.startswith("$2") and pw_a not in cred_a.password_bcrypt
    issuer_a = await issuer_in(secured, a_id, a_key)
    issuer_b = await issuer_in(secured, b_id, b_key)

    errors_a: list[str] = []
    nc_a = await eventually(lambda: _try_connect(secured, cred_a.user, pw_a, errors_a))
    errors_b: list[str] = []
    nc_b = await eventually(lambda: _try_connect(secured, cred_b.user, pw_b, errors_b))
    try:
        js_a, js_b = nc_a.jetstream(), nc_b.jetstream()
        await js_a.add_consumer(stream, consumer(cred_a, a_id, ns))
        sub_a = await js_a.pull_subscribe_bind(durable=cred_a.user, stream=stream)
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
        sub_b = await js_b.pull_subscribe_bind(durable=cred_b.user, stream=stream)
        assert await eventually(lambda: _fetch_one(sub_b))

        # A cannot widen or retarget its consumer, nor use or create B's.
        assert await refused(js_a.add_consumer(stream, consumer(cred_a, b_id, ns), timeout=2))
        assert await refused(js_a.add_consumer(stream, consumer(cred_b, b_id, ns), timeout=2))
        wide = ConsumerConfig(name=cred_a.user, durable_name=cred_a.user,
                              ack_policy=AckPolicy.EXPLICIT)  # fmt: skip
        assert await refused(js_a.add_consumer(stream, wide, timeout=2))
        stolen = await js_a.pull_subscribe_bind(durable=cred_b.user, stream=stream)
        assert await refused(stolen.fetch(1, timeout=2))
        # Nor plainly subscribe to B's (or its own) event subjects.
        plain = await nc_a.subscribe(f"{ns}.public.{b_id}.>")
        await nc_a.flush()
        await issuer_in(secured, b_id, b_key)
        assert await refused(plain.next_msg(timeout=2))
        assert sum("permissions violation" in e.lower() for e in errors_a) >= 4, errors_a
        assert issuer_b  # B's events exist; A never saw them
        assert not any(e.subject["account_id"] == b_id for e in seen)
    finally:
        await nc_a.close()
        await nc_b.close()

    # The README's example consumer, run as documented, prints B's events.
    line = await run_example(secured, cred_b, pw_b, b_id)
    assert json.loads(line)["subject"]["account_id"] == b_id

    assert ints.revoke(settings, cred_a.user)
    assert ints.apply(settings)
    assert [c.user for c in ints.listed(settings, a_id)] == []

    async def locked_out() -> bool:
        try:
            nc = await connect(secured, cred_a.user, pw_a, [])
        except Exception:  # authorization refused
            return True
        await nc.close()
        return False

    assert await eventually(locked_out)


async def run_example(p: RunningPlatform, cred: IntegratorCredential, password: str,
                      account_id: str) -> str:  # fmt: skip
    env = {**os.environ, "NATS_URL": p.nats_url, "AUTHPI_NAMESPACE": p.namespace,
           "AUTHPI_INTEGRATOR_USER": cred.user, "AUTHPI_INTEGRATOR_PASSWORD": password,
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


async def _fetch_one(sub: Any) -> bool:
    with contextlib.suppress(nats.errors.TimeoutError, asyncio.TimeoutError):
        msgs = await sub.fetch(1, timeout=1)
        for msg in msgs:
            await msg.ack()
        return bool(msgs)
    return False
