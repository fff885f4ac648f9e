"""Least privilege on the bus in the distributed topology (`authpi up --distributed`): every
process holds only its own service's NATS credentials (`credentials-<service>.json`: the
service's identity and its relay's), and with them it can publish only its own service's events
and facts and drive only its own durable consumers. Each case connects to the run's NATS cluster
with one deployment's credentials, is refused what belongs to another service, and is answered
what is its own; then the platform still issues tokens, takes writes and answers keyinfo (a part
of the gateway that the token process runs as the token service)."""

from __future__ import annotations

import uuid

import httpx
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from authpi.contracts.base import Envelope, Meta
from authpi.contracts.catalogue import encode
from authpi.contracts.directory import ApiKeyCreated
from authpi.contracts.facts import FactBatch, MachineTokenIssued, encode_batch
from authpi.contracts.subjects import events_stream, fact_subject, facts_stream, subject_for
from authpi.messaging import auth as nats_auth
from authpi.platform.testing.local_run import Load
from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(900)]

REFUSED = "permissions violation for publish"


@pytest.fixture(scope="module")
async def topology(local_run):
    """The session's distributed run (the fault tests and the SDK suites share it)."""
    return await local_run.get()


def deployment(run, service: str) -> nats_auth.NatsAuth:
    """What `authpi serve <service>` is given (AUTHPI_NATS_CREDENTIALS_FILE)."""
    return nats_auth.load(run.dir / "nats-auth" / f"credentials-{service}.json")


class Connection:
    """A connection as one identity of one deployment's credentials, keeping the server's
    asynchronous errors (a refused publish is reported that way)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def open(self, run, service: str, identity: str) -> NATS:
        cred = deployment(run, service).get(identity)

        async def collect(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        self.nc = await nats.connect(
            run.nats.url.split(","), user=cred.user, password=cred.password,
            inbox_prefix=nats_auth.inbox_prefix(identity), error_cb=collect,
        )  # fmt: skip
        return self.nc

    async def refused(self, subject: str) -> None:
        async def said() -> bool:
            return any(REFUSED in e and subject.lower() in e for e in self.errors)

        await eventually(said, timeout=10)


async def request_refused(run, service: str, identity: str, subject: str) -> None:
    """A JetStream API request as `identity` of `service`'s deployment: the server drops it (no
    answer) and reports a publish permissions violation."""
    conn = Connection()
    nc = await conn.open(run, service, identity)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request(subject, b"{}", timeout=1)
        await conn.refused(subject)
    finally:
        await nc.close()


@pytest.mark.quick
async def test_each_deployment_holds_only_its_own_identities(topology):
    run, _ = topology
    for service in nats_auth.SERVICES:
        held = set(deployment(run, service).credentials)
        assert held == {service, nats_auth.relay_identity(service)}, service
        assert nats_auth.ADMIN not in held


def _forged_key(platform) -> Envelope:
    key_id = "key_" + uuid.uuid4().hex[:20]
    event = ApiKeyCreated(
        id=key_id, account_id=platform.account_id, org_id=platform.account_id, issuer_id=None,
        name="forged", scopes=["issuers:read"], secret_sha256="0" * 64, secret_hint="0000",
        created_at=1_800_000_000_000,
    )  # fmt: skip
    return Envelope(
        source="directory", position=1, tx_id=1, event_id=str(uuid.uuid4()), stream_id=key_id,
        stream_version=1, type="api-key.created", schema_version=1,
        recorded_at=1_800_000_000_000, meta=Meta(account_id=platform.account_id),
        data=msgspec.Raw(encode(event)),
    )  # fmt: skip


@pytest.mark.quick
@pytest.mark.parametrize("service", ["token", "gateway", "agent", "billing", "webhook"])
async def test_no_deployment_but_the_directorys_may_publish_a_directory_event(topology, service):
    """Each identity another deployment holds, its relay's included, is refused the directory's
    `api-key.created`, which would hand the gateway a key of the attacker's choosing."""
    run, platform = topology
    subject = subject_for(platform.account_id, "api-key.created", platform.namespace)
    for identity in deployment(run, service).credentials:
        conn = Connection()
        nc = await conn.open(run, service, identity)
        try:
            with pytest.raises(nats.errors.TimeoutError):  # dropped by the server: no ack
                await nc.jetstream().publish(subject, encode(_forged_key(platform)), timeout=1)
            await conn.refused(subject)
        finally:
            await nc.close()


async def test_the_gateway_may_not_publish_the_token_endpoints_facts(topology):
    """A metered `machine.token.issued` is the token service's alone: the gateway is refused."""
    run, platform = topology
    subject = fact_subject("machine.token.issued", platform.namespace)
    fact = MachineTokenIssued(
        account_id=platform.account_id, issuer_id="iss_x", client_id="c_x", scope="a:b",
        aud="https://api.example/", jti=uuid.uuid4().hex, issued_at=1_800_000_000_000,
        expires_at=1_800_000_300_000,
    )  # fmt: skip
    batch = encode_batch(FactBatch(batch_id=uuid.uuid4().hex, facts=[fact]))
    conn = Connection()
    nc = await conn.open(run, "gateway", "gateway")
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await nc.jetstream().publish(subject, batch, timeout=1)
        await conn.refused(subject)
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("service", "action", "stream", "durable"),
    [
        ("directory", "MSG.NEXT", "events", "token-clients"),
        ("token", "MSG.NEXT", "events", "gateway-directory"),
        ("token", "DELETE", "events", "directory-agents"),
        ("webhook", "DURABLE.CREATE", "events", "token-issuers"),
        ("directory", "MSG.NEXT", "facts", "billing-metering"),
        ("gateway", "MSG.NEXT", "facts", "agent-verifier-usage"),
    ],
)
async def test_a_deployment_cannot_read_or_drive_another_services_consumer(
    topology, service, action, stream, durable
):
    run, platform = topology
    name = (events_stream if stream == "events" else facts_stream)(platform.namespace)
    await request_refused(run, service, service, f"$JS.API.CONSUMER.{action}.{name}.{durable}")


async def test_a_deployment_cannot_read_the_facts_or_another_services_bucket(topology):
    """The directory reads no facts and keeps no KV bucket: it may not open a consumer on the
    facts stream, nor read the token service's lockout bucket."""
    run, platform = topology
    facts = facts_stream(platform.namespace)
    await request_refused(run, "directory", "directory", f"$JS.API.CONSUMER.CREATE.{facts}")
    bucket = f"KV_{platform.namespace.replace('.', '_')}_client_lockouts"
    await request_refused(run, "directory", "directory", f"$JS.API.STREAM.INFO.{bucket}")


@pytest.mark.parametrize("service", ["directory", "agent", "billing", "webhook"])
async def test_a_service_without_caches_cannot_open_an_ordered_consumer(topology, service):
    """Only the gateway's and the token service's caches follow the event stream with ordered
    consumers: the others read it through their own durable consumers alone."""
    run, platform = topology
    events = events_stream(platform.namespace)
    await request_refused(run, service, service, f"$JS.API.CONSUMER.CREATE.{events}")


async def test_a_deployment_is_answered_on_its_own_consumer(topology):
    """The contrast: the token service's own durable consumer answers the token service."""
    run, platform = topology
    conn = Connection()
    nc = await conn.open(run, "token", "token")
    try:
        stream = events_stream(platform.namespace)
        info = await nc.jetstream().consumer_info(stream, "token-clients")
        assert info.config.durable_name == "token-clients"
    finally:
        await nc.close()


async def test_the_platform_works_on_its_own_credentials_each(topology):
    """Tokens, writes, and keyinfo of an organization's API key, served by the token process as
    the token service (its only credentials), all go on."""
    from authpi_admin import AuthPIAdmin

    _, platform = topology
    async with AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret), account_id=platform.account_id,
        base_url=platform.api_url, retries=False,
    ) as admin:  # fmt: skip
        issuer = await admin.issuers.create({"name": f"least-{uuid.uuid4().hex[:6]}"})
        client = await admin.issuer(issuer.id).clients.create(
            {"name": "load", "type": "m2m", "settings": {"scopes": ["a:b"]}}
        )
        org = await admin.issuer(issuer.id).organizations.create({"name": "Customer"})
        key = (
            await admin.issuer(issuer.id)
            .organization(org.id)
            .api_keys.create({"name": "ci", "restrictions": {"scopes": ["issuers.users:read"]}})
        )
    load = Load(platform, issuer.id, (client.id, client.secret))
    async with load.running():
        await load.progress(tokens=20, writes=3)

    async def keyinfo() -> dict | None:
        async with httpx.AsyncClient(timeout=10) as http:
            resp = await http.get(
                f"{platform.idp_url}/{issuer.id}/keyinfo", headers=basic(key.id, key.secret_plain)
            )
        return resp.json() if resp.status_code == 200 else None

    info = await eventually(keyinfo, timeout=30)
    assert info["id"] == key.id and info["org_id"] == org.id
