"""The gateway's signed principal (authpi.web.edge): a service takes the principal of exactly the
request the gateway signed, within its validity, once, with a key derived from a KEK both sides
hold (so either side may move to a new KEK first); `signed_only` refuses anything else in the
spec's error format, before routing and before reading the body."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.clock import FixedClock
from authpi.crypto.envelope import Kek
from authpi.embedded.servers import free_port
from authpi.errors import Unauthorized
from authpi.web.calls import CALLS_PATH, call_routes
from authpi.web.edge import (
    VALIDITY_MS,
    EdgeSigner,
    EdgeVerifier,
    WriteClaims,
    keys_of,
    signed_only,
)
from authpi.web.errors import EXCEPTION_HANDLERS
from authpi.web.principal import Principal, principal_or_none

OLD, NEW = os.urandom(32), os.urandom(32)
SERVES = frozenset({"directory"})
PRINCIPAL = Principal(
    type="api_key", account_id="acc_1", org_id="org_1", scopes=frozenset({"issuers:read"}),
    key_id="key_1", ip="198.51.100.7",
)  # fmt: skip


def scope(method: str = "GET", path: str = "/v1/things", query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": query, "headers": [],
    }  # fmt: skip


def signed(
    signer: EdgeSigner,
    at: dict[str, Any],
    body: bytes = b"",
    rid: str = "req_0000000001",
    to: str = "directory",
) -> dict[str, Any]:
    """`at` as the service receives it from the gateway."""
    pairs = signer.headers(at, rid, body, PRINCIPAL, to=to)  # type: ignore[arg-type]
    headers = [(k.encode(), v.encode()) for k, v in pairs] + [(b"x-request-id", rid.encode())]
    return {**at, "headers": headers}


def reason_of(verifier: EdgeVerifier, at: dict[str, Any], body: bytes = b"") -> str:
    with pytest.raises(Unauthorized) as refused:
        verifier.verify(at, body)  # type: ignore[arg-type]
    return refused.value.reason


def test_the_signed_request_gives_its_principal_once():
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    verifier = EdgeVerifier(keys, clock, SERVES)
    request = signed(EdgeSigner(keys, clock), scope("POST"), b'{"a":1}')
    assert verifier.verify(request, b'{"a":1}') == PRINCIPAL  # type: ignore[arg-type]
    assert reason_of(verifier, request, b'{"a":1}') == "edge.replayed"
    # The same statement with its MAC header reworded (an unknown entry added, spaces) still
    # verifies, and is still the same request: a replay.
    reworded = [
        (k, b" " + v + b", other=x" if k == b"x-authpi-signature" else v)
        for k, v in request["headers"]
    ]
    assert reason_of(verifier, {**request, "headers": reworded}, b'{"a":1}') == "edge.replayed"


def test_a_signature_is_bound_to_method_path_query_request_id_and_body():
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    signer, verifier = EdgeSigner(keys, clock), EdgeVerifier(keys, clock, SERVES)
    base = signed(signer, scope("POST"), b"{}")
    assert reason_of(verifier, {**base, "method": "DELETE"}, b"{}") == "edge.other_request"
    other_path = {**base, "path": "/v1/other", "raw_path": b"/v1/other"}
    assert reason_of(verifier, other_path, b"{}") == "edge.other_request"
    assert reason_of(verifier, {**base, "query_string": b"x=1"}, b"{}") == "edge.other_request"
    assert reason_of(verifier, base, b'{"admin":true}') == "edge.other_body"
    other_id = [(k, b"req_0000000002" if k == b"x-request-id" else v) for k, v in base["headers"]]
    assert reason_of(verifier, {**base, "headers": other_id}, b"{}") == "edge.other_request_id"


def test_a_signature_is_bound_to_the_service_it_was_sent_to():
    """A request signed for one service that reaches another's listener (a wrong service URL,
    or two listeners on one SO_REUSEPORT port) is refused, not answered by the wrong service."""
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    token_process = EdgeVerifier(keys, clock, frozenset({"token", "gateway"}))
    for_directory = signed(EdgeSigner(keys, clock), scope())
    assert reason_of(token_process, for_directory) == "edge.other_service"
    for_token = signed(EdgeSigner(keys, clock), scope(), rid="req_0000000002", to="token")
    assert token_process.verify(for_token, b"") == PRINCIPAL  # type: ignore[arg-type]


def test_an_old_or_future_signature_has_expired():
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    request = signed(EdgeSigner(keys, clock), scope())
    later = EdgeVerifier(keys, FixedClock(1_000_000 + VALIDITY_MS + 1), SERVES)
    earlier = EdgeVerifier(keys, FixedClock(1_000_000 - VALIDITY_MS), SERVES)
    assert reason_of(later, request) == "edge.expired"
    assert reason_of(earlier, request) == "edge.expired"
    assert EdgeVerifier(keys, FixedClock(1_000_000 + VALIDITY_MS), SERVES).verify(request, b"")  # type: ignore[arg-type]


def test_a_signature_of_another_kek_or_an_altered_principal_is_refused():
    clock = FixedClock(1_000_000)
    verifier = EdgeVerifier(keys_of(Kek(NEW)), clock, SERVES)
    assert reason_of(verifier, signed(EdgeSigner(keys_of(Kek(OLD)), clock), scope())) == (
        "edge.bad_signature"
    )
    request = signed(EdgeSigner(keys_of(Kek(NEW)), clock), scope())
    headers = dict(request["headers"])
    other = signed(EdgeSigner(keys_of(Kek(NEW)), clock), scope(path="/v1/other"))
    headers[b"x-authpi-principal"] = dict(other["headers"])[b"x-authpi-principal"]
    assert reason_of(verifier, {**request, "headers": list(headers.items())}) == (
        "edge.bad_signature"
    )
    assert reason_of(verifier, scope()) == "edge.unsigned"


def test_the_hkdf_key_is_its_own_label_not_a_kek_or_another_derivation():
    kek = Kek(NEW)
    (key,) = keys_of(kek).values()
    assert key not in (NEW, kek.derive("authpi.gateway-principal.v1"))
    assert len(key) == 32 and keys_of(Kek(NEW)) == keys_of(kek)


@pytest.mark.parametrize(
    ("gateway", "service"),
    [
        ((NEW, OLD), (OLD,)),  # the gateway moved to the new KEK first
        ((OLD,), (NEW, OLD)),  # the service moved first
        ((NEW, OLD), (NEW, OLD)),
    ],
)
def test_either_side_may_move_to_a_new_kek_first(gateway, service):
    clock = FixedClock(1_000_000)
    signer = EdgeSigner(keys_of(Kek(*gateway)), clock)
    verifier = EdgeVerifier(keys_of(Kek(*service)), clock, SERVES)
    assert verifier.verify(signed(signer, scope()), b"") == PRINCIPAL  # type: ignore[arg-type]


def test_once_both_sides_dropped_a_kek_its_signatures_are_refused():
    clock = FixedClock(1_000_000)
    signer = EdgeSigner(keys_of(Kek(OLD)), clock)
    verifier = EdgeVerifier(keys_of(Kek(NEW)), clock, SERVES)
    assert reason_of(verifier, signed(signer, scope())) == "edge.bad_signature"


@get("/v1/things", sync_to_thread=False)
def things(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_or_none(request.scope)
    return {"key_id": principal.key_id if principal else None}


@post("/v1/things")
async def create(request: Request[Any, Any, Any]) -> Any:
    return await request.json()


async def test_signed_only_serves_the_signed_and_refuses_the_rest_before_routing():
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    app = Litestar([things, create], exception_handlers=EXCEPTION_HANDLERS)
    gate = signed_only(app, EdgeVerifier(keys, clock, SERVES))
    signer = EdgeSigner(keys, clock)
    transport = httpx.ASGITransport(app=gate)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        good = signed(signer, scope("POST"), b'{"n":1}')
        headers = {k.decode(): v.decode() for k, v in good["headers"]}
        answer = await client.post("/v1/things", content=b'{"n":1}', headers=headers)
        assert answer.status_code == 201 and answer.json() == {"n": 1}
        read = {k.decode(): v.decode() for k, v in signed(signer, scope())["headers"]}
        assert (await client.get("/v1/things", headers=read)).json() == {"key_id": "key_1"}
        for refused in (
            await client.get("/v1/things"),
            await client.get("/nowhere"),
            await client.post("/v1/things", content=b'{"n":1}', headers=headers),  # replayed
        ):
            assert refused.status_code == 401
            body = refused.json()
            assert body["error"] == "unauthorized_client" and body["retryable"] is False
            assert body["error_description"]


async def test_a_call_between_services_refuses_a_request_forwarded_for_a_caller():
    """The internal calls route runs a service's contract for another service, which signs with
    no principal; a request the gateway signed for a caller (with the caller's principal) is
    refused there even though its signature is good."""
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    app = Litestar(call_routes({"payments": object()}), exception_handlers=EXCEPTION_HANDLERS)
    gate = signed_only(app, EdgeVerifier(keys, clock, SERVES))
    path = f"{CALLS_PATH}/payments/settle"
    good = signed(EdgeSigner(keys, clock), scope("POST", path), b"{}")
    headers = {k.decode(): v.decode() for k, v in good["headers"]}
    transport = httpx.ASGITransport(app=gate)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
        refused = await client.post(path, content=b"{}", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "access_denied"


async def test_a_write_is_taken_once_by_the_whole_service(pool, namespace, schema):
    """Two replicas of one service (each its own verifier, so its own memory of signatures) over
    the service's PostgreSQL schema: a write the gateway signed, captured and played again at the
    other replica, is refused there too; a read is taken once per replica (it changes nothing)."""
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    app = Litestar([things, create], exception_handlers=EXCEPTION_HANDLERS)
    service = schema.removeprefix(f"{namespace}_")
    serves = frozenset({service})
    replicas = [
        signed_only(app, EdgeVerifier(keys, clock, serves), WriteClaims(pool, namespace))
        for _ in range(2)
    ]
    signer = EdgeSigner(keys, clock)
    write = signed(signer, scope("POST"), b'{"n":1}', to=service)
    write_headers = {k.decode(): v.decode() for k, v in write["headers"]}
    read = signed(signer, scope(), rid="req_0000000002", to=service)
    read_headers = {k.decode(): v.decode() for k, v in read["headers"]}
    answers = []
    for n, replica in enumerate(replicas):
        if n:  # at the other replica, the captured write with its MAC header reworded
            write_headers["x-authpi-signature"] += ",other=x"
        transport = httpx.ASGITransport(app=replica)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            posted = await client.post("/v1/things", content=b'{"n":1}', headers=write_headers)
            got = await client.get("/v1/things", headers=read_headers)
            answers.append((posted.status_code, got.status_code))
            if posted.status_code == 401:
                assert posted.json()["error"] == "unauthorized_client"
    assert answers == [(201, 200), (401, 200)]
    async with pool.connection() as conn:
        cur = await conn.execute(f'SELECT count(*) FROM "{schema}".edge_signatures')
        assert (await cur.fetchone())[0] == 1


async def test_a_write_whose_claim_the_database_cannot_take_is_a_retryable_503_and_not_run():
    """The service's PostgreSQL is unreachable (restarting, say): the write's signature cannot be
    claimed, so the write is refused with a retryable 503 in the spec's format, not an unexpected
    500, and its handler never runs (the gateway or the client sends it again)."""
    clock = FixedClock(1_000_000)
    keys = keys_of(Kek(NEW))
    ran: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append((await receive())["body"])

    down: AsyncConnectionPool = AsyncConnectionPool(
        f"postgresql://authpi@127.0.0.1:{free_port()}/authpi?connect_timeout=1",
        min_size=1, max_size=1, open=False, timeout=1,
    )  # fmt: skip
    await down.open(wait=False)
    try:
        gate = signed_only(app, EdgeVerifier(keys, clock, SERVES), WriteClaims(down, "t"))
        write = signed(EdgeSigner(keys, clock), scope("POST"), b'{"n":1}')
        headers = {k.decode(): v.decode() for k, v in write["headers"]}
        transport = httpx.ASGITransport(app=gate)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            posted = await client.post("/v1/things", content=b'{"n":1}', headers=headers)
    finally:
        await down.close()
    assert posted.status_code == 503
    assert posted.json()["error"] == "temporarily_unavailable"
    assert posted.headers["retry-after"] == "1"
    assert ran == []
