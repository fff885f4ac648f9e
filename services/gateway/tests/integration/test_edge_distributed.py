"""The gateway as the edge of the distributed topology, with every service its own `authpi serve`
process: Core API calls of the official SDK go through the gateway to the owning service, the
gateway's layers (authentication, idempotency, rate limits) apply there, and a service's internal
listener refuses whatever the gateway did not sign for that very request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path

import httpx
import msgspec
import pytest
import pytest_asyncio
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import AuthenticationError

from authpi.crypto.clock import SystemClock
from authpi.crypto.envelope import Kek
from authpi.errors import Conflict
from authpi.platform.modules import all_modules
from authpi.platform.serving import build_core_api_app, offline_runtime
from authpi.platform.testing.distributed import SERVICES, Distributed, add_replica, distributed
from authpi.testing.plugin import eventually
from authpi.web.calls import Calls, RemoteDirectory
from authpi.web.edge import EdgeSigner, keys_of
from authpi.web.principal import Principal
from authpi.web.routes import route_table

PROTO = Path(__file__).resolve().parents[4] / "proto" / "openapi" / "core-api.json"
# The rate-limit test's own client address (the gateway trusts the loopback proxy): its burst
# leaves the other tests' budget alone.
BURST_IP = "203.0.113.77"


@pytest_asyncio.fixture(scope="module")
async def dist(infra, tmp_path_factory) -> Distributed:
    gateway_env = {
        # 30 writes a minute per client address: a burst reaches the limit quickly.
        "AUTHPI_RATE_LIMIT_MULTIPLIER": "0.1",
        "AUTHPI_TRUSTED_PROXIES": "127.0.0.1/32",
    }
    async with distributed(infra, tmp_path_factory.mktemp("dist"), gateway_env) as run:
        yield run


def admin_of(dist: Distributed) -> AuthPIAdmin:
    return AuthPIAdmin(
        api_key=(dist.api_key_id, dist.api_key_secret), account_id=dist.account_id,
        base_url=dist.api_url, retries=False,
    )  # fmt: skip


def basic(dist: Distributed) -> tuple[str, str]:
    return (dist.api_key_id, dist.api_key_secret)


async def core_requests(dist: Distributed, service: str) -> float:
    """Requests the service's internal listener answered (any status), from its /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{dist.ops[service]}/metrics")).text
    pattern = r'^authpi_http_requests_total\{[^}]*port="core"[^}]*\} (\S+)$'
    return sum(float(m) for m in re.findall(pattern, text, re.MULTILINE))


def signed_headers(dist: Distributed, method: str, target: str, body: bytes = b"", **kw):
    """Headers the gateway would send to the directory (`to`: another service), made with the
    deployment's KEK (what an attacker lacks)."""
    path, _, query = target.partition("?")
    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": query.encode(),
    }  # fmt: skip
    request_id = f"req_test_{uuid.uuid4().hex[:12]}"
    signer = EdgeSigner(keys_of(Kek.from_text(dist.kek)), kw.pop("clock", SystemClock()))
    principal = Principal(
        type="api_key", account_id=dist.account_id, org_id="", key_id=dist.api_key_id,
        scopes=frozenset({"issuers:read", "issuers:write"}),
    )  # fmt: skip
    to = kw.pop("to", "directory")
    pairs = signer.headers(scope, request_id, body, principal, to=to)  # type: ignore[arg-type]
    return {**dict(pairs), "x-request-id": request_id}


def assert_spec_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["error_description"]
    assert body["retryable"] is False and body["reference"] == response.headers["x-request-id"]


async def test_sdk_calls_reach_directory_token_and_agent_through_the_gateway(dist):
    admin = admin_of(dist)
    issuer = await admin.issuers.create({"name": f"dist-{uuid.uuid4().hex[:6]}"})  # directory
    user = await admin.issuer(issuer.id).users.create(
        {"username_type": "email", "username": f"ada-{uuid.uuid4().hex[:8]}@example.com"}
    )
    # Token service: a second factor of that user, which the token process knows at once (the
    # directory's write answered only once every process had applied it).
    person = admin.issuer(issuer.id).user(user.id)
    started = await person.verifiers.create({"type": "totp", "name": "Phone"})
    assert started.enrollment_id and len(started.secret) == 32
    agent = await admin.issuer(issuer.id).agents.create({"name": "bot"})  # agent service
    assert agent.id.startswith("agt_")
    assert (await admin.issuer(issuer.id).agent(agent.id).get()).name == "bot"
    listed = await admin.issuer(issuer.id).users.list()
    assert [u.user_id for u in listed.data] == [user.id]


async def test_a_new_api_key_authenticates_at_the_gateway_right_after_its_creation(dist):
    created = await admin_of(dist).api_keys.create(
        {"name": "fresh", "restrictions": {"scopes": ["account:read"]}}
    )
    fresh = (created.id, created.secret_plain)
    async with httpx.AsyncClient(base_url=dist.api_url, auth=fresh) as client:
        account = await client.get(f"/v1/accounts/{dist.account_id}")
    assert account.status_code == 200 and account.json()["data"]["id"] == dist.account_id


async def test_an_idempotency_key_is_answered_by_the_gateway_once_and_replayed(dist):
    key = f"idem-{uuid.uuid4().hex}"
    body = {"name": f"once-{uuid.uuid4().hex[:6]}"}
    url = f"/v1/accounts/{dist.account_id}/issuers"
    before = await core_requests(dist, "directory")
    async with httpx.AsyncClient(base_url=dist.api_url, auth=basic(dist)) as client:
        first = await client.post(url, json=body, headers={"Idempotency-Key": key})
        again = await client.post(url, json=body, headers={"Idempotency-Key": key})
        other = await client.post(url, json={"name": "different"}, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert_spec_error(other, 422, "invalid_request")
    assert await core_requests(dist, "directory") == before + 1  # one reached the service


async def test_the_rate_limit_refuses_at_the_gateway(dist):
    """The limit runs before authentication: a burst of writes with a wrong key spends this
    address's budget (30 a minute) without one request reaching a service."""
    before = {s: await core_requests(dist, s) for s in SERVICES}
    statuses = []
    wrong = (dist.api_key_id, "wrong-secret")
    async with httpx.AsyncClient(base_url=dist.api_url, auth=wrong) as client:
        for _ in range(100):
            response = await client.post(
                f"/v1/accounts/{dist.account_id}/issuers", json={"name": "burst"},
                headers={"X-Forwarded-For": BURST_IP},
            )  # fmt: skip
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {401} and len(statuses) == 31
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "rate_limited"
    assert {s: await core_requests(dist, s) for s in SERVICES} == before


async def test_a_bad_api_key_is_refused_at_the_gateway_and_never_reaches_the_service(dist):
    before = {s: await core_requests(dist, s) for s in SERVICES}
    async with httpx.AsyncClient(base_url=dist.api_url) as client:
        wrong = await client.get(
            f"/v1/accounts/{dist.account_id}/issuers", auth=(dist.api_key_id, "wrong-secret")
        )
        none = await client.post(f"/v1/accounts/{dist.account_id}/issuers", json={"name": "x"})
    assert_spec_error(wrong, 401, "unauthorized_client")
    assert_spec_error(none, 401, "unauthorized_client")
    with pytest.raises(AuthenticationError):
        bad = AuthPIAdmin(
            api_key=(dist.api_key_id, "nope"), account_id=dist.account_id,
            base_url=dist.api_url, retries=False,
        )  # fmt: skip
        await bad.issuers.list()
    assert {s: await core_requests(dist, s) for s in SERVICES} == before


@pytest.mark.parametrize("service", SERVICES)
async def test_a_direct_request_to_a_service_port_is_refused(dist, service):
    async with httpx.AsyncClient(base_url=dist.internal[service], auth=basic(dist)) as client:
        read = await client.get(f"/v1/accounts/{dist.account_id}")
        write = await client.post(f"/v1/accounts/{dist.account_id}/issuers", json={"name": "x"})
        unknown = await client.get("/no/such/route")
        schema = await client.get("/openapi.json")
    for response in (read, write, unknown, schema):
        assert_spec_error(response, 401, "unauthorized_client")


async def test_forged_expired_and_replayed_signatures_are_refused(dist):
    target = f"/v1/accounts/{dist.account_id}/issuers"
    async with httpx.AsyncClient(base_url=dist.internal["directory"]) as client:
        # The gateway's signature for exactly this request is accepted (the control)...
        good = signed_headers(dist, "GET", target)
        assert (await client.get(target, headers=good)).status_code == 200
        # ...once: the same request again is a replay.
        assert_spec_error(await client.get(target, headers=good), 401, "unauthorized_client")
        # Onto another path, query, method or request id: another request.
        other = signed_headers(dist, "GET", target)
        assert_spec_error(
            await client.get(f"/v1/accounts/{dist.account_id}", headers=other),
            401, "unauthorized_client",
        )  # fmt: skip
        for changed in (f"{target}?limit=1", target):
            moved = signed_headers(dist, "GET", target)
            if changed == target:
                moved["x-request-id"] = "req_someone_else_1"
            assert_spec_error(await client.get(changed, headers=moved), 401, "unauthorized_client")
        posted = signed_headers(dist, "POST", target, b'{"name":"a"}')
        assert_spec_error(
            await client.post(target, content=b'{"name":"b"}', headers=posted),
            401, "unauthorized_client",
        )  # fmt: skip
        # Forged: signed with a key derived from another KEK, or with the MAC altered.
        forged = signed_headers(dist, "GET", target)
        payload = base64.urlsafe_b64decode(forged["x-authpi-principal"] + "==")
        foreign = hmac.digest(hashlib.sha256(b"not the kek").digest(), payload, "sha256")
        kid = forged["x-authpi-signature"].split("=", 1)[0]
        forged["x-authpi-signature"] = f"{kid}={base64.urlsafe_b64encode(foreign).decode()}"
        assert_spec_error(await client.get(target, headers=forged), 401, "unauthorized_client")
        # A principal changed after signing (an admin's scopes claimed on the way).
        tampered = signed_headers(dist, "GET", target)
        claims = json.loads(base64.urlsafe_b64decode(tampered["x-authpi-principal"] + "=="))
        claims[5]["scopes"] = ["*"]  # Signed's sixth field: the principal
        raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        tampered["x-authpi-principal"] = raw
        assert_spec_error(await client.get(target, headers=tampered), 401, "unauthorized_client")
        # Signed for another service: a request that reached the directory's listener by a wrong
        # URL or a shared port is refused, not answered by the directory.
        elsewhere = signed_headers(dist, "GET", target, to="webhook")
        assert_spec_error(await client.get(target, headers=elsewhere), 401, "unauthorized_client")
        # Expired: signed a minute ago.
        old = signed_headers(dist, "GET", target, clock=_Ago(60_000))
        assert_spec_error(await client.get(target, headers=old), 401, "unauthorized_client")


class _Ago:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def now_ms(self) -> int:
        return SystemClock().now_ms() - self.ms


async def test_every_openapi_operation_is_routed_to_its_service():
    """From the route declarations alone: the gateway's forwarding table covers every operation
    of the committed OpenAPI document, each owned by a service with its own process."""
    rt = offline_runtime()
    parts = [await module.build(rt) for module in all_modules()]

    async def ready() -> dict[str, bool]:
        return {}

    table = route_table(build_core_api_app(parts, ready).litestar)
    routed = {(m, re.sub(r":[a-z]+\}", "}", path)): s for (m, path), s in table.items()}
    document = msgspec.json.decode(PROTO.read_bytes())
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) > 100
    unrouted = [op for op in operations if routed.get(op) not in SERVICES]
    assert unrouted == []
    assert {routed[op] for op in operations} == set(SERVICES)


async def test_the_token_process_serves_the_idp_port_keyinfo_included(dist):
    """IdP traffic reaches the token process with no proxy hop, and the gateway's keyinfo route
    is served there, from the gateway's key cache kept current by events."""
    admin = admin_of(dist)
    issuer = await admin.issuers.create({"name": f"idp-{uuid.uuid4().hex[:6]}"})
    org = await admin.issuer(issuer.id).organizations.create({"name": "Customer"})
    keys = admin.issuer(issuer.id).organization(org.id).api_keys
    created = await keys.create({"name": "ci", "restrictions": {"scopes": ["issuers.users:read"]}})
    async with httpx.AsyncClient(base_url=dist.idp_url) as client:
        discovery = await client.get(f"/{issuer.id}/.well-known/openid-configuration")
        info = await client.get(f"/{issuer.id}/keyinfo", auth=(created.id, created.secret_plain))
        wrong = await client.get(f"/{issuer.id}/keyinfo", auth=(created.id, "wrong"))
    assert discovery.status_code == 200 and discovery.json()["issuer"].endswith(issuer.id)
    assert info.status_code == 200 and info.json()["id"] == created.id
    assert info.json()["org_id"] == org.id
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized_client"
    async with httpx.AsyncClient(base_url=dist.api_url) as client:  # not on the gateway
        assert (await client.get(f"/{issuer.id}/keyinfo")).status_code in (401, 404)


async def test_two_token_replicas_share_the_idp_and_internal_ports(dist):
    """SO_REUSEPORT: a second `authpi serve token` on the same ports; the kernel spreads new
    connections over both, and each answers, on either port."""
    replica = await add_replica(dist, "token", AUTHPI_WORKER_HEADER="1")
    pids = {dist.processes["token"].pid, dist.processes[replica].pid}
    seen: set[int] = set()
    for _ in range(64):
        async with httpx.AsyncClient(base_url=dist.idp_url) as client:  # a new connection
            answer = await client.get("/healthz")
        assert answer.status_code == 200
        if "x-authpi-worker" in answer.headers:
            seen.add(int(answer.headers["x-authpi-worker"]))
        if seen == {dist.processes[replica].pid}:
            break
    assert seen == {dist.processes[replica].pid} and seen < pids
    admin = admin_of(dist)
    issuer = await admin.issuers.create({"name": f"rep-{uuid.uuid4().hex[:6]}"})
    user = await admin.issuer(issuer.id).users.create(
        {"username_type": "email", "username": f"r-{uuid.uuid4().hex[:8]}@example.com"}
    )
    for _ in range(6):  # through the gateway's pool: whichever replica took each connection
        started = (
            await admin.issuer(issuer.id)
            .user(user.id)
            .verifiers.create({"type": "totp", "name": "Phone"})
        )
        assert started.enrollment_id


async def test_directory_commands_run_in_the_directory_process_when_called_from_another(dist):
    """What the token service's portal calls (signup) reaches the directory's process, signed,
    and its refusals come back as the same errors."""
    admin = admin_of(dist)
    issuer = await admin.issuers.create({"name": f"calls-{uuid.uuid4().hex[:6]}"})
    calls = Calls(dist.internal, EdgeSigner(keys_of(Kek.from_text(dist.kek)), SystemClock()))
    directory = RemoteDirectory(calls)
    email = f"signup-{uuid.uuid4().hex[:8]}@example.com"
    try:
        user_id = await directory.register(
            account_id=dist.account_id, issuer_id=issuer.id, username_type="email",
            username=email, profile={"name": "Ada"},
        )  # fmt: skip
        assert (await admin.issuer(issuer.id).user(user_id).get()).id == user_id
        with pytest.raises(Conflict) as taken:
            await directory.register(
                account_id=dist.account_id, issuer_id=issuer.id, username_type="email",
                username=email, profile={},
            )  # fmt: skip
        assert taken.value.reason == "user.username"
    finally:
        await calls.close()
    async with httpx.AsyncClient(base_url=dist.api_url, auth=basic(dist)) as client:
        hidden = await client.post("/internal/calls/user_registry/register", json={})
    assert hidden.status_code in (401, 404)  # never through the gateway


async def test_a_portal_signup_in_the_token_process_creates_the_user_in_the_directory(dist):
    """The hosted portal runs in the token process; the user it signs up is the directory's
    (a call to the directory's process), and the new user is signed in at once."""
    admin = admin_of(dist)
    issuer = await admin.issuers.create({"name": f"signup-{uuid.uuid4().hex[:6]}"})
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    base = f"{dist.idp_url}/{issuer.id}"
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as browser:

        async def form() -> str | None:
            page = await browser.get(f"{base}/signup")
            found = re.search(r'name="csrf" value="([^"]+)"', page.text)
            return found.group(1) if page.status_code == 200 and found else None

        csrf = await eventually(form)  # the issuer's signing keys exist
        created = await browser.post(
            f"{base}/signup",
            data={"email": address, "password": "correct horse battery staple", "name": "Ada",
                  "csrf": csrf},
        )  # fmt: skip
    assert created.status_code == 303, created.text
    assert "authpi_session=" in created.headers["set-cookie"]
    users = (await admin.issuer(issuer.id).users.list()).data
    assert [u.status for u in users] == ["active"]
