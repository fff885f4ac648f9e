"""Time-dependent token rules on a platform of its own, driven by a FixedClock (DESIGN.md 7):
the rotated secret's 15-minute grace, the failure throttle's backoff, token expiry at
introspection, and
an endpoint-issued token that still verifies against the JWKS 44 days and several rotations
later, until its key leaves after the 45-day overlap."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import pytest_asyncio

from authpi.crypto.clock import FixedClock
from authpi.crypto.ids import sha256_hex
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import part
from authpi.testing.plugin import eventually
from authpi.token.domain.rotation import DAY_MS, OVERLAP_MS, next_rotation_after

MINUTE_MS = 60_000


@pytest_asyncio.fixture(scope="module")
async def clocked(infra, tmp_path_factory):
    clock = FixedClock(int(time.time() * 1000))
    async with running_platform(infra, tmp_path_factory.mktemp("clocked"), clock) as platform:
        yield platform, clock


@pytest_asyncio.fixture(scope="module")
async def issuer(clocked, issuer_with_keys):
    platform, _ = clocked
    return await issuer_with_keys(platform, "clocked")


async def new_client(clocked, issuer) -> tuple[str, str]:
    """A client the token service knows. Waited for in its cache, not by asking for tokens: a
    refusal counts as a failure, and the backoff would not end while the clock stands still."""
    platform, _ = clocked
    admin, issuer_id = issuer
    client = await admin.issuer(issuer_id).clients.create({"name": "svc", "type": "m2m"})

    async def known() -> bool:
        return part(platform, "clients", "token").get(client.id) is not None

    await eventually(known)
    return client.id, client.secret


async def token(clocked, issuer_id: str, client_id: str, secret: str) -> httpx.Response:
    platform, _ = clocked
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(
            f"{platform.idp_url}/{issuer_id}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )


async def introspect(clocked, issuer_id: str, client_id: str, secret: str, tok: str) -> dict:
    platform, _ = clocked
    async with httpx.AsyncClient(timeout=30) as http:
        resp = await http.post(
            f"{platform.idp_url}/{issuer_id}/introspect",
            data={"token": tok},
            auth=(client_id, secret),
        )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_previous_secret_stops_after_the_15_minute_grace(clocked, issuer):
    platform, clock = clocked
    admin, issuer_id = issuer
    client_id, old = await new_client(clocked, issuer)
    rotated = await admin.issuer(issuer_id).clients.rotate_secret(client_id)

    async def new_secret_known() -> bool:
        entry = part(platform, "clients", "token").get(client_id)
        return entry is not None and entry.secret_sha256 == sha256_hex(rotated.secret)

    await eventually(new_secret_known)
    clock.advance(ms=14 * MINUTE_MS)
    assert (await token(clocked, issuer_id, client_id, old)).status_code == 200
    clock.advance(ms=MINUTE_MS + 1000)
    refused = await token(clocked, issuer_id, client_id, old)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert (await token(clocked, issuer_id, client_id, rotated.secret)).status_code == 200


async def test_throttle_backs_off_up_to_15_minutes(clocked, issuer):
    _, clock = clocked
    _, issuer_id = issuer
    client_id, secret = await new_client(clocked, issuer)
    for _ in range(4):
        assert (await token(clocked, issuer_id, client_id, "nope")).status_code == 401
    waits = []
    for _ in range(14):
        refused = await token(clocked, issuer_id, client_id, "nope")
        assert refused.status_code == 429
        waits.append(int(refused.headers["retry-after"]))
        assert (await token(clocked, issuer_id, client_id, secret)).status_code == 429
        clock.advance(seconds=waits[-1])
    assert waits[:4] == [1, 2, 4, 8] and waits[-1] == 15 * 60
    assert (await token(clocked, issuer_id, client_id, secret)).status_code == 200
    # The success cleared the counter: one new failure does not throttle again.
    assert (await token(clocked, issuer_id, client_id, "nope")).status_code == 401
    assert (await token(clocked, issuer_id, client_id, secret)).status_code == 200


async def test_expired_token_is_inactive(clocked, issuer):
    _, clock = clocked
    _, issuer_id = issuer
    client_id, secret = await new_client(clocked, issuer)
    tok = (await token(clocked, issuer_id, client_id, secret)).json()["access_token"]
    assert (await introspect(clocked, issuer_id, client_id, secret, tok))["active"] is True
    clock.advance(ms=30 * MINUTE_MS)
    assert await introspect(clocked, issuer_id, client_id, secret, tok) == {"active": False}


def verify(tok: str, keys: dict) -> dict:
    header = jwt.get_unverified_header(tok)
    jwk = next(k for k in keys["keys"] if k["kid"] == header["kid"])
    return jwt.decode(
        tok,
        jwt.PyJWK(jwk).key,
        algorithms=[header["alg"]],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
    )


async def test_endpoint_token_outlives_rotations_for_44_days(clocked, issuer, jwks_of):
    platform, clock = clocked
    _, issuer_id = issuer
    keys = next(p.exports["keys"] for p in platform.handle.parts if "keys" in p.exports)
    client_id, secret = await new_client(clocked, issuer)
    old = (await token(clocked, issuer_id, client_id, secret)).json()["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    born = clock.now_ms()

    async def rotate_at(instant: int) -> None:
        clock.advance(ms=instant - clock.now_ms())
        await keys.rotate(clock.now_ms(), [issuer_id])

    async def published(expected: int) -> dict | None:
        doc = await jwks_of(platform, issuer_id)
        return doc if len(doc.get("keys", [])) == expected else None

    await rotate_at(next_rotation_after(born) + MINUTE_MS)
    await eventually(lambda: published(6))
    newer = (await token(clocked, issuer_id, client_id, secret)).json()["access_token"]
    assert jwt.get_unverified_header(newer)["kid"] != old_kid
    while next_rotation_after(clock.now_ms()) <= born + 44 * DAY_MS:
        await rotate_at(next_rotation_after(clock.now_ms()) + MINUTE_MS)
    clock.advance(ms=born + 44 * DAY_MS - clock.now_ms())
    doc = await jwks_of(platform, issuer_id)
    assert old_kid in {k["kid"] for k in doc["keys"]}
    assert len(doc["keys"]) % 3 == 0 and len(doc["keys"]) >= 6
    assert verify(old, doc)["sub"] == client_id
    while next_rotation_after(clock.now_ms()) - born <= OVERLAP_MS:
        await rotate_at(next_rotation_after(clock.now_ms()) + MINUTE_MS)
    await rotate_at(next_rotation_after(clock.now_ms()) + MINUTE_MS)

    async def old_kid_gone() -> dict | None:
        doc = await jwks_of(platform, issuer_id)
        return doc if old_kid not in {k["kid"] for k in doc.get("keys", [])} else None

    doc = await eventually(old_kid_gone)
    with pytest.raises(StopIteration):
        verify(old, doc)
    # Unknown kid at introspection: inactive, whatever the claims say.
    fresh = (await token(clocked, issuer_id, client_id, secret)).json()["access_token"]
    assert (await introspect(clocked, issuer_id, client_id, secret, fresh))["active"] is True
    assert await introspect(clocked, issuer_id, client_id, secret, old) == {"active": False}
