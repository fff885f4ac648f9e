"""The event bus is a trust boundary (issue 9, item 7): the embedded NATS that `make run` starts
enforces per-service credentials, only a service's relay may publish its domain events, and a
forged envelope is never applied, nor can it make a consumer skip the real events behind it.

Attacks, against a platform on its own embedded NATS with the generated configuration: connect
without (or with wrong) credentials; publish a domain event as a consumer identity or as the
relay of another service; inject a forged `api-key.created` carrying the attacker's own digest,
every scope and a huge tx_id, directly (admin) and through the owning relay's credentials on an
inconsistent subject. Then the platform must still work end to end."""

from __future__ import annotations

import json
import stat
import uuid
from typing import Any

import httpx
import msgspec
import nats
import pytest
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from psycopg import sql

from authpi.contracts.base import Envelope, Meta
from authpi.contracts.catalogue import encode
from authpi.contracts.directory import ApiKeyCreated
from authpi.contracts.scopes import ALL_SCOPES
from authpi.contracts.subjects import events_stream, subject_for
from authpi.crypto.ids import sha256_hex
from authpi.messaging import auth as nats_auth
from authpi.messaging.streams import connect, jetstream
from authpi.platform.testing.plugin import RunningPlatform, running_platform
from authpi.platform.testing.tenants import basic, key_ready, part
from authpi.testing.plugin import eventually

HUGE = 2**62


@pytest_asyncio.fixture(scope="module")
async def secured(infra, tmp_path_factory) -> Any:
    """The all-in-one platform as `make run` starts it: its own embedded NATS, generated
    credentials, enforced permissions."""
    data_dir = tmp_path_factory.mktemp("nats-auth")
    async with running_platform(infra, data_dir, embedded_nats=True) as running:
        yield running


def credentials(p: RunningPlatform) -> nats_auth.NatsAuth:
    assert p.nats_credentials is not None
    return nats_auth.load(p.nats_credentials)


async def as_identity(p: RunningPlatform, identity: str, errors: list[Exception]) -> NATS:
    cred = credentials(p).get(identity)

    async def collect(exc: Exception) -> None:
        errors.append(exc)

    return await nats.connect(
        p.nats_url, user=cred.user, password=cred.password,
        inbox_prefix=nats_auth.inbox_prefix(identity), error_cb=collect,
    )  # fmt: skip


def forged_key(p: RunningPlatform, key_id: str, secret: str, *, source: str) -> Envelope:
    """An `api-key.created` for the attacker's own secret, with every scope and a tx_id far
    beyond any real one (it would make a consumer skip every later event of `source`)."""
    event = ApiKeyCreated(
        id=key_id, account_id=p.account_id, org_id=p.account_id, issuer_id=None, name="forged",
        scopes=sorted(ALL_SCOPES), secret_sha256=sha256_hex(secret), secret_hint=secret[-4:],
        created_at=1_800_000_000_000,
    )  # fmt: skip
    return Envelope(
        source=source, position=HUGE, tx_id=HUGE, event_id=str(uuid.uuid4()), stream_id=key_id,
        stream_version=1, type="api-key.created", schema_version=1,
        recorded_at=1_800_000_000_000, meta=Meta(account_id=p.account_id),
        data=msgspec.Raw(encode(event)),
    )  # fmt: skip


async def me(p: RunningPlatform, key_id: str, secret: str) -> int:
    async with httpx.AsyncClient(base_url=p.api_url, timeout=30) as http:
        return (await http.get("/v1/me", headers=basic(key_id, secret))).status_code


async def dead_letters(p: RunningPlatform, pool) -> dict[str, str]:
    query = sql.SQL("SELECT event_id::text, error FROM {}.dead_letters").format(
        sql.Identifier(f"{p.namespace}_gateway")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        return {row[0]: row[1] for row in await cur.fetchall() if row[0]}


async def test_generated_credentials_and_config_are_private(secured):
    data_dir = secured.handle.settings.data_dir
    for name in ("nats-credentials.json", "nats.conf"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    creds = credentials(secured).credentials
    assert set(creds) == set(nats_auth.identities())
    assert len({c.password for c in creds.values()}) == len(creds)


async def test_only_the_owning_relay_may_publish_a_domain_event_type(secured):
    config = json.loads((secured.handle.settings.data_dir / "nats.conf").read_text())
    subject = f"{secured.namespace}.evt.*.api-key.created"
    publishers = {
        u["user"]
        for u in config["authorization"]["users"]
        if subject in u["permissions"]["publish"].get("allow", [])
        or ">" in u["permissions"]["publish"].get("allow", [])
    }
    assert publishers == {"admin", "relay-directory"}


async def test_a_connection_without_or_with_wrong_credentials_is_refused(secured):
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            secured.nats_url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5
        )
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(
            secured.nats_url, user="relay-directory", password="guess", allow_reconnect=False,
            max_reconnect_attempts=0, connect_timeout=5,
        )  # fmt: skip


@pytest.mark.parametrize(
    "identity", ["gateway", "directory", "token", "relay-token", "relay-agent", "relay-gateway"]
)
async def test_a_domain_event_from_another_identity_than_its_relay_is_refused(secured, identity):
    account = f"acc_{uuid.uuid4().hex[:12]}"
    subject = subject_for(account, "api-key.created", secured.namespace)
    env = forged_key(secured, "key_" + uuid.uuid4().hex[:20], "s" * 43, source="directory")
    errors: list[Exception] = []
    nc = await as_identity(secured, identity, errors)
    try:
        with pytest.raises(nats.errors.TimeoutError):  # dropped by the server: no ack
            await jetstream(nc).publish(subject, encode(env), timeout=1)

        async def refused() -> bool:
            return any("permissions violation for publish" in str(e).lower() for e in errors)

        await eventually(refused, timeout=5)
    finally:
        await nc.close()
    admin = await connect(secured.nats_url, auth=credentials(secured))
    try:
        with pytest.raises(NotFoundError):
            await jetstream(admin).get_last_msg(events_stream(secured.namespace), subject)
    finally:
        await admin.close()


async def test_forged_key_events_are_never_applied_and_real_events_still_are(secured, pool):
    secret = "attacker-" + uuid.uuid4().hex + uuid.uuid4().hex
    gateway = part(secured, "gateway")
    rejected_before = gateway.api_keys.follower.rejected
    forgeries: list[tuple[str, str]] = []
    creds = credentials(secured)

    # Injected directly, bypassing every relay: the envelope claims a source that does not own
    # api-key events.
    direct = forged_key(secured, "key_" + uuid.uuid4().hex[:20], secret, source="gateway")
    admin = await connect(secured.nats_url, auth=creds)
    try:
        subject = subject_for(secured.account_id, "api-key.created", secured.namespace)
        await jetstream(admin).publish(subject, encode(direct))
    finally:
        await admin.close()
    forgeries.append((direct.event_id, direct.stream_id))

    # Through the directory relay's own credentials, on a subject the envelope does not match:
    # with the owner's name as source, its huge tx_id would move the directory checkpoint.
    relayed = forged_key(secured, "key_" + uuid.uuid4().hex[:20], secret, source="directory")
    relay = await as_identity(secured, "relay-directory", [])
    try:
        subject = subject_for(secured.account_id, "api-key.deleted", secured.namespace)
        await jetstream(relay).publish(subject, encode(relayed))
    finally:
        await relay.close()
    forgeries.append((relayed.event_id, relayed.stream_id))

    async def dead_lettered() -> dict[str, str] | None:
        found = await dead_letters(secured, pool)
        return found if all(event_id in found for event_id, _ in forgeries) else None

    letters = await eventually(dead_lettered, timeout=20)
    assert all("untrusted" in letters[event_id] for event_id, _ in forgeries)

    async def caches_refused() -> bool:
        return gateway.api_keys.follower.rejected >= rejected_before + 2

    await eventually(caches_refused, timeout=20)
    for _, key_id in forgeries:
        assert gateway.api_keys.get(key_id) is None
        assert await me(secured, key_id, secret) == 401

    # Real events behind the forgeries are applied: a new key authenticates, and the gateway's
    # projection (checkpointed per source) has it.
    admin_sdk = AuthPIAdmin(
        api_key=(secured.api_key_id, secured.api_key_secret), account_id=secured.account_id,
        base_url=secured.api_url, retries=False,
    )  # fmt: skip
    async with admin_sdk:
        key = await admin_sdk.api_keys.create(
            {"name": "real", "restrictions": {"scopes": ["issuers:read"]}}
        )
    await key_ready(secured, key.id, key.secret_plain)
    view = sql.SQL("SELECT count(*) FROM {}.api_keys_view WHERE id = %s").format(
        sql.Identifier(f"{secured.namespace}_gateway")
    )

    async def projected() -> bool:
        async with pool.connection() as conn:
            cur = await conn.execute(view, [key.id])
            row = await cur.fetchone()
            return bool(row and row[0] == 1)

    await eventually(projected, timeout=20)


async def test_the_platform_works_end_to_end_on_per_service_credentials(secured):
    admin = AuthPIAdmin(
        api_key=(secured.api_key_id, secured.api_key_secret), account_id=secured.account_id,
        base_url=secured.api_url, retries=False,
    )  # fmt: skip
    async with admin:
        issuer = await admin.issuers.create({"name": "bus"})
        client = await admin.issuer(issuer.id).clients.create(
            {"name": "svc", "type": "m2m", "settings": {"scopes": ["invoices:read"]}}
        )

    async def token() -> dict[str, Any] | None:
        async with httpx.AsyncClient(timeout=30) as http:
            resp = await http.post(
                f"{secured.idp_url}/{issuer.id}/token",
                data={
                    "grant_type": "client_credentials", "client_id": client.id,
                    "client_secret": client.secret, "scope": "invoices:read",
                },
            )  # fmt: skip
        return resp.json() if resp.status_code == 200 else None

    body = await eventually(token, timeout=30)
    assert body["token_type"].lower() == "bearer" and body["access_token"]


@pytest.mark.parametrize(
    "action", ["MSG.NEXT", "DELETE", "DURABLE.CREATE"], ids=["pull", "delete", "recreate"]
)
async def test_a_service_cannot_drive_another_services_durable_consumer(secured, action):
    """The agent service may not pull, delete or re-create the gateway's projection consumer:
    either would let it steal or skip the events the gateway's API-key view is built from."""
    errors: list[Exception] = []
    nc = await as_identity(secured, "agent", errors)
    stream = events_stream(secured.namespace)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(f"$JS.API.CONSUMER.{action}.{stream}.gateway-directory", b"{}", 1)

        async def refused() -> bool:
            return any("permissions violation for publish" in str(e).lower() for e in errors)

        await eventually(refused, timeout=5)
    finally:
        await nc.close()
    admin = await connect(secured.nats_url, auth=credentials(secured))
    try:
        info = await jetstream(admin).consumer_info(stream, "gateway-directory")
        assert info.config.durable_name == "gateway-directory"
    finally:
        await admin.close()
