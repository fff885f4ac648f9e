"""Rate limits on both ports and the client address they key on (issue 9, "Also fix"). The IdP
port has a per-address limit answering 429 with Retry-After in the OAuth error form; a forwarded
header (X-Forwarded-For / Forwarded) names the client only when the peer is a configured trusted
proxy, so a caller cannot dodge a limit by inventing addresses; IPv6 clients share a bucket per
/64. The anonymous x402 facilitator routes are limited like the credentialed ones.

A platform of its own with tiny limits (multiplier 0.01: IdP token endpoints 5 a minute,
discovery and JWKS 10, Core API reads 12) and 127.0.0.2 as its only trusted proxy. Requests go
through real HTTP from chosen loopback addresses (127.0.0.x), one address per test."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from authpi_admin import AuthPIAdmin

from authpi.crypto.clock import FixedClock
from authpi.gateway.edge.ratelimit import IdpRateLimits, TokenBuckets
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import part, signing_ready
from authpi.testing.plugin import eventually
from authpi.web.addresses import ClientAddresses, address_key

PROXY = "127.0.0.2"


@pytest_asyncio.fixture(scope="module")
async def limited(infra, tmp_path_factory):
    async with running_platform(
        infra, tmp_path_factory.mktemp("limits"),
        rate_limit_multiplier=0.01, idp_rate_limit=500, trusted_proxies=(f"{PROXY}/32",),
    ) as platform:  # fmt: skip
        yield platform


@pytest_asyncio.fixture(scope="module")
async def issuer_id(limited) -> str:
    """An issuer with signing keys, waited for in the key cache (no request spends a token)."""
    admin = AuthPIAdmin(
        api_key=(limited.api_key_id, limited.api_key_secret),
        account_id=limited.account_id,
        base_url=limited.api_url,
        retries=False,
    )
    made = await admin.issuers.create({"name": "limits"})
    await signing_ready(limited, made.id)
    return made.id


def client_from(source: str, **kw) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(timeout=30, transport=transport, **kw)


async def bad_token_requests(url: str, source: str, count: int, **kw) -> list[httpx.Response]:
    """POSTs to /token that stop at parsing (no grant_type): only the rate limit sees them."""
    async with client_from(source) as http:
        return [await http.post(url, data={"scope": "x"}, **kw) for _ in range(count)]


async def test_idp_token_endpoint_over_the_limit_is_429_with_retry_after(limited, issuer_id):
    url = f"{limited.idp_url}/{issuer_id}/token"
    answers = await bad_token_requests(url, "127.0.0.10", 6)
    assert [r.status_code for r in answers] == [400] * 5 + [429]
    limited_answer = answers[-1]
    assert limited_answer.json() == {
        "error": "rate_limited",
        "error_description": "too many requests; retry later",
    }
    assert int(limited_answer.headers["retry-after"]) == 12  # one request per 12 s refills
    assert limited_answer.headers["cache-control"] == "no-store"
    async with client_from("127.0.0.10") as http:
        # Discovery has a bucket of its own; health is never limited.
        discovery = await http.get(
            f"{limited.idp_url}/{issuer_id}/.well-known/openid-configuration"
        )
        assert discovery.status_code == 200
        assert (await http.get(f"{limited.idp_url}/healthz")).status_code == 200
    other = await bad_token_requests(url, "127.0.0.11", 1)
    assert other[0].status_code == 400


async def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(limited, issuer_id):
    url = f"{limited.idp_url}/{issuer_id}/token"
    async with client_from("127.0.0.1") as http:
        codes = []
        for i in range(6):
            spoofed = {"X-Forwarded-For": f"203.0.113.{i}"}
            codes.append((await http.post(url, data={"scope": "x"}, headers=spoofed)).status_code)
    assert codes == [400] * 5 + [429]
    # The Core API too (uvicorn itself used to trust X-Forwarded-For from 127.0.0.1).
    auth = (limited.api_key_id, limited.api_key_secret)
    async with client_from("127.0.0.1", auth=auth) as http:
        codes = []
        for i in range(13):
            spoofed = {"X-Forwarded-For": f"203.0.113.{i}"}
            codes.append((await http.get(f"{limited.api_url}/v1/me", headers=spoofed)).status_code)
    assert codes == [200] * 12 + [429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(limited, issuer_id):
    url = f"{limited.idp_url}/{issuer_id}/token"
    one = {"X-Forwarded-For": "198.51.100.7, 198.51.100.200"}  # spoofed left part, real right
    answers = await bad_token_requests(url, PROXY, 6, headers=one)
    assert [r.status_code for r in answers] == [400] * 5 + [429]
    other = {"X-Forwarded-For": "198.51.100.7, 198.51.100.201"}
    assert (await bad_token_requests(url, PROXY, 1, headers=other))[0].status_code == 400


async def test_credential_throttle_keys_on_the_forwarded_client(limited, issuer_id):
    admin = AuthPIAdmin(
        api_key=(limited.api_key_id, limited.api_key_secret),
        account_id=limited.account_id,
        base_url=limited.api_url,
        retries=False,
    )
    client = await admin.issuer(issuer_id).clients.create({"name": "svc", "type": "m2m"})
    cache = part(limited, "clients", "token")

    async def known() -> bool:
        return cache.get(client.id) is not None

    await eventually(known)
    url = f"{limited.idp_url}/{issuer_id}/token"
    form = {"grant_type": "client_credentials", "client_id": client.id}
    async with client_from(PROXY) as http:
        attacker = {"X-Forwarded-For": "192.0.2.66"}
        codes = [
            (
                await http.post(url, data={**form, "client_secret": "no"}, headers=attacker)
            ).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 401, 429]
        ok = await http.post(
            url, data={**form, "client_secret": client.secret},
            headers={"X-Forwarded-For": "192.0.2.67"},
        )  # fmt: skip
    assert ok.status_code == 200, ok.text


async def test_anonymous_x402_routes_are_limited_per_client(limited):
    """The facilitator routes take no credential and call the chain's node: once outside every
    limit. `/verify` and `/settle` share the auth-sensitive bucket (1 a minute here); x402 is not
    configured on this platform, so the first answers 422 and the next is over the limit."""
    body = {"paymentPayload": {}, "paymentRequirements": {}}
    async with client_from("127.0.0.30") as http:
        first = await http.post(f"{limited.api_url}/x402/verify", json=body)
        again = await http.post(f"{limited.api_url}/x402/settle", json=body)
        assert (await http.get(f"{limited.api_url}/healthz")).status_code == 200
    assert first.status_code == 422, first.text
    assert again.status_code == 429 and again.json()["error"] == "rate_limited"
    assert int(again.headers["retry-after"]) >= 1
    async with client_from("127.0.0.31") as http:
        supported = [await http.get(f"{limited.api_url}/x402/supported") for _ in range(13)]
    assert [r.status_code for r in supported] == [422] * 12 + [429]


def test_two_ipv6_addresses_in_one_64_share_a_bucket():
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"
    buckets = TokenBuckets(IdpRateLimits(token=1), FixedClock())
    assert buckets.retry_after("2001:db8:1:2::1", "token") == 0
    assert buckets.retry_after("2001:db8:1:2:abcd::9", "token") == 60
    assert buckets.retry_after("2001:db8:1:3::1", "token") == 0


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        ("10.0.0.9", [(b"x-forwarded-for", b"1.2.3.4")], "10.0.0.9"),  # untrusted peer
        ("10.1.0.1", [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4")], "1.2.3.4"),
        (
            "10.1.0.1",
            [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"1.2.3.4")],
            "1.2.3.4",
        ),
        ("10.1.0.1", [(b"x-forwarded-for", b"1.2.3.4, 10.1.0.2")], "1.2.3.4"),  # two proxies
        ("10.1.0.1", [(b"x-forwarded-for", b"garbage")], "10.1.0.1"),
        ("10.1.0.1", [(b"x-forwarded-for", b"[2001:db8::1]:443")], "2001:db8::1"),
        ("10.1.0.1", [(b"forwarded", b"for=1.2.3.4")], "10.1.0.1"),  # not the configured header
        ("10.1.0.1", [], "10.1.0.1"),
    ],
)
def test_client_address_behind_trusted_proxies(peer, headers, client):
    assert ClientAddresses(["10.1.0.0/16"]).client(peer, headers) == client


def test_rfc_7239_forwarded_when_configured():
    addresses = ClientAddresses(["10.1.0.0/16"], "forwarded")
    headers = [(b"forwarded", b'for=6.6.6.6, for="[2001:db8::7]:80";proto=https, for=10.1.0.3')]
    assert addresses.client("10.1.0.1", headers) == "2001:db8::7"
    spoofed = [(b"x-forwarded-for", b"6.6.6.6"), (b"forwarded", b"for=1.2.3.4")]
    assert addresses.client("10.1.0.1", spoofed) == "1.2.3.4"
