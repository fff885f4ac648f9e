"""The client_credentials grant, introspection and revocation over real HTTP on the IdP port
(idp-api.md 5.2, 5.5, 7, 11). Clients are created through the Core API with the official
authpi-admin SDK; the token service learns them from JetStream only. Tokens are requested with
the official authpi-idp SDK (or httpx for malformed input) and verified with PyJWT against the
JWKS found through discovery."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import jwt
import msgspec
import pytest
from authpi_admin import AuthPIAdmin
from authpi_idp import IdpClient
from authpi_idp.errors import OAuthError

from authpi.platform.testing.tenants import basic
from authpi.testing.plugin import eventually

# Public APIs only: also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Tenant:
    def __init__(self, platform, admin: AuthPIAdmin, issuer_id: str) -> None:
        self.platform = platform
        self.admin = admin
        self.issuer_id = issuer_id

    @property
    def issuer_url(self) -> str:
        return f"{self.platform.idp_url}/{self.issuer_id}"

    async def m2m(self, **settings) -> tuple[str, str]:
        base = {"scopes": ["invoices:read", "invoices:write"], **settings}
        client = await self.admin.issuer(self.issuer_id).clients.create(
            {"name": "svc", "type": "m2m", "settings": base}
        )
        await self.until_known(client.id, client.secret)
        return client.id, client.secret

    async def until_known(self, client_id: str, secret: str) -> None:
        async def known() -> bool:
            resp = await self.token({"client_id": client_id, "client_secret": secret})
            return resp.status_code not in (401, 429)

        await eventually(known)

    async def token(self, data: dict, source: str | None = None, **kw) -> httpx.Response:
        """POST /token, from the loopback address `source` when given (127.0.0.2, ...)."""
        transport = httpx.AsyncHTTPTransport(local_address=source) if source else None
        async with httpx.AsyncClient(timeout=30, transport=transport) as http:
            return await http.post(
                f"{self.issuer_url}/token",
                data={"grant_type": "client_credentials", **data},
                **kw,
            )

    async def post(self, path: str, **kw) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(f"{self.issuer_url}/{path}", **kw)

    async def jwks(self) -> jwt.PyJWKClient:
        async with httpx.AsyncClient(timeout=30) as http:
            config = (await http.get(f"{self.issuer_url}/.well-known/openid-configuration")).json()
        return jwt.PyJWKClient(config["jwks_uri"], cache_keys=False)


@pytest.fixture
def new_tenant(platform, issuer_with_keys):
    async def make() -> Tenant:
        admin, issuer_id = await issuer_with_keys(platform, "machines")
        return Tenant(platform, admin, issuer_id)

    return make


@pytest.fixture
async def tenant(new_tenant) -> Tenant:
    return await new_tenant()


async def verify(tenant: Tenant, token: str) -> tuple[dict, dict]:
    jwks = await tenant.jwks()
    key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token, key.key, algorithms=[header["alg"]], issuer=tenant.issuer_url,
        options={"verify_aud": False},
    )  # fmt: skip
    return header, claims


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_sdk_client_credentials_token_verifies_against_discovered_jwks(tenant, alg):
    client_id, secret = await tenant.m2m(response_signature_alg=alg, access_token_ttl=900)
    async with IdpClient(tenant.issuer_url, client_id, client_secret=secret) as idp:
        agent = await idp.client_credentials(["invoices:read"])
    assert agent.id == client_id and agent.tokens.scope == "invoices:read"
    header, claims = await verify(tenant, agent.tokens.access_token)
    assert header["alg"] == alg and header["typ"] == "at+jwt" and header["kid"]
    assert claims["sub"] == client_id and claims["client_id"] == client_id
    assert claims["aud"] == client_id and claims["scope"] == "invoices:read"
    assert claims["exp"] - claims["iat"] == 900 and claims["auth_time"] == claims["iat"]
    assert len(claims["jti"]) == 18 and claims["jti"].isalnum()
    assert "sid" not in claims and "dat" not in claims
    assert abs(claims["iat"] - time.time()) < 60


async def test_basic_auth_resource_and_full_scope_by_default(tenant):
    client_id, secret = await tenant.m2m(audiences=["https://api.acme.test"])
    resp = await tenant.token(
        {"resource": "https://api.acme.test"}, headers=basic(client_id, secret)
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["scope"] == "invoices:read invoices:write" and "refresh_token" not in body
    assert resp.headers["cache-control"] == "no-store"
    _, claims = await verify(tenant, body["access_token"])
    assert claims["aud"] == "https://api.acme.test"
    other = await tenant.token({"resource": "https://evil.test"}, headers=basic(client_id, secret))
    assert other.status_code == 400 and other.json()["error"] == "invalid_target"


async def test_wider_scope_is_invalid_scope(tenant):
    client_id, secret = await tenant.m2m()
    async with IdpClient(tenant.issuer_url, client_id, client_secret=secret) as idp:
        with pytest.raises(OAuthError) as caught:
            await idp.client_credentials(["invoices:read", "admin"])
    assert caught.value.error == "invalid_scope"


async def test_client_of_issuer_a_is_unknown_at_issuer_b(tenant, new_tenant):
    client_id, secret = await tenant.m2m()
    other = await new_tenant()
    resp = await other.token({"client_id": client_id, "client_secret": secret})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


async def test_client_a_secret_for_client_b_is_refused(tenant):
    a_id, a_secret = await tenant.m2m()
    b_id, _ = await tenant.m2m()
    resp = await tenant.token({}, headers=basic(b_id, a_secret))
    assert resp.status_code == 401
    assert resp.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }
    assert resp.headers["www-authenticate"].startswith("Basic realm=")
    assert (await tenant.token({}, headers=basic(a_id, a_secret))).status_code == 200


async def test_five_wrong_secrets_throttle_that_source_only(tenant):
    client_id, secret = await tenant.m2m()
    for _ in range(4):
        resp = await tenant.token({"client_id": client_id, "client_secret": "wrong"})
        assert resp.status_code == 401
    fifth = await tenant.token({"client_id": client_id, "client_secret": "wrong"})
    assert fifth.status_code == 429 and fifth.json()["error"] == "rate_limited"
    assert int(fifth.headers["retry-after"]) >= 1
    throttled = await tenant.token({"client_id": client_id, "client_secret": secret})
    assert throttled.status_code == 429
    elsewhere = await tenant.token({"client_id": client_id, "client_secret": secret}, "127.0.0.2")
    assert elsewhere.status_code == 200
    other_id, other_secret = await tenant.m2m()
    ok = await tenant.token({"client_id": other_id, "client_secret": other_secret})
    assert ok.status_code == 200


async def test_deleted_and_disabled_clients_stop_within_a_second(tenant):
    clients = tenant.admin.issuer(tenant.issuer_id).clients
    client_id, secret = await tenant.m2m()
    await clients.update(client_id, {"status": "disabled"})

    async def refused() -> bool:
        resp = await tenant.token({"client_id": client_id, "client_secret": secret})
        return resp.status_code == 401

    await eventually(refused, timeout=1.0)
    await clients.update(client_id, {"status": "active"})

    async def accepted() -> bool:
        resp = await tenant.token({"client_id": client_id, "client_secret": secret})
        return resp.status_code == 200

    await eventually(accepted, timeout=1.0)
    await clients.delete(client_id)
    await eventually(refused, timeout=1.0)


async def test_rotated_secret_works_at_once_and_old_one_during_grace(tenant):
    clients = tenant.admin.issuer(tenant.issuer_id).clients
    client_id, old = await tenant.m2m()
    rotated = await clients.rotate_secret(client_id)
    await tenant.until_known(client_id, rotated.secret)
    assert (await tenant.token({"client_id": client_id, "client_secret": old})).status_code == 200


async def test_introspection_sees_only_own_tokens_and_revocation(tenant, new_tenant):
    a_id, a_secret = await tenant.m2m()
    b_id, b_secret = await tenant.m2m()
    token = (await tenant.token({"client_id": a_id, "client_secret": a_secret})).json()[
        "access_token"
    ]
    own = await tenant.post("introspect", data={"token": token}, headers=basic(a_id, a_secret))
    assert own.status_code == 200
    body = own.json()
    assert body["active"] is True and body["client_id"] == a_id and body["sub"] == a_id
    assert body["token_type"] == "access_token" and body["scope"] == "invoices:read invoices:write"
    assert {"exp", "iat", "jti", "iss", "aud"} <= set(body)
    foreign = await tenant.post("introspect", data={"token": token}, headers=basic(b_id, b_secret))
    assert foreign.json() == {"active": False}
    garbage = await tenant.post(
        "introspect", data={"token": "x.y.z"}, headers=basic(a_id, a_secret)
    )
    assert garbage.json() == {"active": False}
    other = await new_tenant()
    c_id, c_secret = await other.m2m()
    cross = await other.post("introspect", data={"token": token}, headers=basic(c_id, c_secret))
    assert cross.json() == {"active": False}
    # Someone else's revocation is ignored, still 200.
    ignored = await tenant.post("revoke", data={"token": token}, headers=basic(b_id, b_secret))
    assert ignored.status_code == 200
    again = await tenant.post("introspect", data={"token": token}, headers=basic(a_id, a_secret))
    assert again.json()["active"] is True
    async with IdpClient(tenant.issuer_url, a_id, client_secret=a_secret) as idp:
        await idp.revoke_token(token, "access_token")
        await idp.revoke_token(token, "access_token")  # twice: still fine
        await idp.revoke_token("not-a-token")
    gone = await tenant.post("introspect", data={"token": token}, headers=basic(a_id, a_secret))
    assert gone.json() == {"active": False}


async def test_unknown_kid_is_inactive(tenant):
    client_id, secret = await tenant.m2m()
    token = (await tenant.token({"client_id": client_id, "client_secret": secret})).json()[
        "access_token"
    ]
    _, payload, signature = token.split(".")
    forged_header = (
        base64.urlsafe_b64encode(
            b'{"alg":"ES256","kid":"00000000-0000-0000-0000-000000000000","typ":"at+jwt"}'
        )
        .rstrip(b"=")
        .decode()
    )
    forged = f"{forged_header}.{payload}.{signature}"
    resp = await tenant.post("introspect", data={"token": forged}, headers=basic(client_id, secret))
    assert resp.json() == {"active": False}


@pytest.mark.parametrize(
    ("kwargs", "status", "error"),
    [
        ({"data": {"client_id": "c_x"}}, 400, "invalid_request"),  # no grant_type
        ({"content": b"grant_type=client_credentials&grant_type=client_credentials",
          "headers": FORM}, 400, "invalid_request"),  # duplicate
        ({"content": b"grant_type=password", "headers": FORM}, 400, "unsupported_grant_type"),
        ({"content": b"grant_type=urn:ietf:params:oauth:grant-type:device_code",
          "headers": FORM}, 400, "unsupported_grant_type"),
        ({"content": b"<xml/>", "headers": {"Content-Type": "text/xml"}}, 415,
         "invalid_content_type"),
        ({"content": b"grant_type=client_credentials"}, 415, "invalid_content_type"),
        ({"content": b"a=" + b"x" * 200_000, "headers": FORM}, 413, "invalid_request"),
        ({"content": b"grant_type=client_credentials&client_id=%FF%FE", "headers": FORM},
         400, "invalid_request"),
        ({"content": b"\xff\xfe", "headers": FORM}, 400, "invalid_request"),
        ({"content": b"[1,2]", "headers": {"Content-Type": "application/json"}}, 400,
         "invalid_request"),
        ({"content": b'{"grant_type": 5}', "headers": {"Content-Type": "application/json"}},
         400, "invalid_request"),
        ({"content": b"grant_type=client_credentials",
          "headers": {**FORM, "Authorization": "Basic !!!notbase64"}}, 401, "invalid_client"),
        ({"content": b"grant_type=client_credentials",
          "headers": {**FORM, "Authorization": "Basic " + base64.b64encode(b"nocolon").decode()}},
         401, "invalid_client"),
        ({"content": b"grant_type=client_credentials",
          "headers": {**FORM, "Authorization": "Bearer abc"}}, 401, "invalid_client"),
        ({"content": b"grant_type=client_credentials&client_id=c_nope&client_secret=x",
          "headers": FORM}, 401, "invalid_client"),
        ({"content": b"grant_type=client_credentials", "headers": FORM}, 401, "invalid_client"),
    ],
)  # fmt: skip
async def test_bad_input_gets_the_right_oauth_error(tenant, kwargs, status, error):
    resp = await tenant.post("token", **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error
    assert resp.json()["error_description"]


async def test_both_auth_methods_or_mismatched_ids_are_refused(tenant):
    client_id, secret = await tenant.m2m()
    both = await tenant.token(
        {"client_id": client_id, "client_secret": secret}, headers=basic(client_id, secret)
    )
    assert both.status_code == 401 and both.json()["error"] == "invalid_client"
    mismatch = await tenant.token({"client_id": "c_other"}, headers=basic(client_id, secret))
    assert mismatch.status_code == 401 and mismatch.json()["error"] == "invalid_client"
    json_body = await tenant.post(
        "token",
        json={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert json_body.status_code == 200, json_body.text


async def test_client_without_the_grant_and_unknown_issuer(tenant, platform):
    web = await tenant.admin.issuer(tenant.issuer_id).clients.create(
        {"name": "web", "type": "web", "settings": {"redirect_uris": ["https://app.test/cb"]}}
    )

    async def answered() -> bool:
        resp = await tenant.token({"client_id": web.id, "client_secret": web.secret})
        return resp.status_code == 400

    await eventually(answered)
    resp = await tenant.token({"client_id": web.id, "client_secret": web.secret})
    assert resp.json()["error"] == "unauthorized_client"
    async with httpx.AsyncClient(timeout=30) as http:
        missing = await http.post(
            f"{platform.idp_url}/i_doesnotexist/token", data={"grant_type": "client_credentials"}
        )
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def issue_and_read_facts(tenant, platform, nc, client_id: str, secret: str):
    """20 tokens at once, then the machine.token.issued facts read from the stream until all of
    theirs: (the tokens' jtis, every fact read by jti, the batches read)."""
    from authpi.contracts.facts import decode_batch
    from authpi.contracts.subjects import fact_subject, facts_stream

    responses = await asyncio.gather(
        *(tenant.token({"client_id": client_id, "client_secret": secret}) for _ in range(20))
    )
    jtis = {jwt.decode(r.json()["access_token"], options={"verify_signature": False})["jti"]
            for r in responses}  # fmt: skip
    assert len(jtis) == len(responses)  # a jti of its own for every token
    subject = fact_subject("machine.token.issued", platform.namespace)
    sub = await nc.jetstream().subscribe(
        subject, stream=facts_stream(platform.namespace), ordered_consumer=True
    )
    seen: dict[str, object] = {}
    batches = 0
    try:
        while not jtis <= set(seen):
            msg = await sub.next_msg(timeout=10)
            try:
                batch = decode_batch(msg.data)
            except msgspec.DecodeError:
                continue  # another suite's deliberately malformed batch on the shared stream
            batches += 1
            for fact in batch.facts:
                seen[fact.jti] = fact
    finally:
        await sub.unsubscribe()
    return jtis, seen, batches


async def test_issued_tokens_reach_the_facts_stream_in_batches(tenant, platform, nc):
    """machine.token.issued facts (platform.md 6.3) are published in batches, not per request,
    and carry no token, only its jti."""
    client_id, secret = await tenant.m2m()
    jtis, seen, batches = await issue_and_read_facts(tenant, platform, nc, client_id, secret)
    assert batches < len(seen)
    fact = seen[next(iter(jtis))]
    assert fact.client_id == client_id and fact.issuer_id == tenant.issuer_id
    assert fact.account_id == platform.account_id and fact.agent_id is None
    assert fact.scope == "invoices:read invoices:write" and fact.expires_at > fact.issued_at


async def test_concurrent_failures_all_count_toward_the_throttle(tenant):
    """Failures racing each other (compare-and-set on the shared counter) are all counted."""
    client_id, secret = await tenant.m2m()
    wrong = await asyncio.gather(
        *(tenant.token({"client_id": client_id, "client_secret": f"no-{i}"}) for i in range(5))
    )
    assert sorted(r.status_code for r in wrong) == [401, 401, 401, 401, 429]
    locked = await tenant.token({"client_id": client_id, "client_secret": secret})
    assert locked.status_code == 429 and locked.headers["retry-after"]


async def test_concurrent_revocations_of_one_token_append_one_event(tenant, platform, pool):
    client_id, secret = await tenant.m2m()
    token = (await tenant.token({"client_id": client_id, "client_secret": secret})).json()[
        "access_token"
    ]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    answers = await asyncio.gather(
        *(tenant.post("revoke", data={"token": token}, headers=basic(client_id, secret))
          for _ in range(8))
    )  # fmt: skip
    assert [r.status_code for r in answers] == [200] * 8
    async with pool.connection() as conn:
        cur = await conn.execute(
            f'SELECT count(*) FROM "{platform.namespace}_token".events WHERE stream_id = %s',
            [f"revoked-token:{jti}"],
        )
        assert (await cur.fetchone())[0] == 1
    gone = await tenant.post("introspect", data={"token": token}, headers=basic(client_id, secret))
    assert gone.json() == {"active": False}


async def test_each_issued_token_reaches_the_audit_log_exactly_once(tenant, platform, nc):
    """Every token's machine.token.issued fact becomes one public event in the audit log (the
    Events API, platform.md 6.2, 8), keyed by its jti: a batch delivered again adds nothing."""
    import uuid

    from authpi.contracts.facts import FactBatch, encode_batch
    from authpi.contracts.subjects import fact_subject

    client_id, secret = await tenant.m2m()
    jtis, seen, _ = await issue_and_read_facts(tenant, platform, nc, client_id, secret)
    facts = {jti: seen[jti] for jti in jtis}
    subject = fact_subject("machine.token.issued", platform.namespace)
    # The same facts again under a new batch id (JetStream's dedup does not hide them), then one
    # new fact: once it is in the log, the repeated ones have been applied before it.
    marker = msgspec.structs.replace(facts[next(iter(jtis))], jti=uuid.uuid4().hex[:18])
    for again in (list(facts.values()), [marker]):
        batch = FactBatch(batch_id=uuid.uuid4().hex, facts=again)
        await platform.handle.rt.js.publish(
            subject, encode_batch(batch), headers={"Nats-Msg-Id": batch.batch_id}
        )

    async def logged() -> list[str] | None:
        events = tenant.admin.events.list_all(
            client_id=client_id, event_types="machine.token.issued", limit=100
        )
        found = [e.data["jti"] async for e in events]
        return found if marker.jti in found else None

    found = await eventually(logged)
    assert len(found) == len(set(found))  # not one twice (the readiness probe's tokens count too)
    assert jtis | {marker.jti} <= set(found)


async def test_direct_and_routed_token_requests_answer_alike(tenant):
    """POST /{issuer}/token is answered before the router (authpi.web.direct); with a trailing
    slash the router answers it. Both give the same answers, refusals included."""
    client_id, secret = await tenant.m2m()
    answers = {}
    for path in ("token", "token/"):
        good = await tenant.post(path, data={"grant_type": "client_credentials"},
                                 auth=(client_id, secret))  # fmt: skip
        bad = await tenant.post(path, data={"grant_type": "client_credentials"},
                                auth=(client_id, "wrong"))  # fmt: skip
        assert good.status_code == 200 and bad.status_code == 401
        header, claims = await verify(tenant, good.json()["access_token"])
        assert claims["client_id"] == client_id and header["typ"] == "at+jwt"
        assert good.headers["x-request-id"].startswith("req_")
        answers[path] = (
            sorted(good.json()), good.headers["cache-control"], good.headers["content-type"],
            bad.json(), bad.headers["www-authenticate"], bad.headers["cache-control"],
        )  # fmt: skip
    assert answers["token"] == answers["token/"]
