"""Nobody can lock a client or an agent out (issue 9, item 4). Client ids are public, so wrong
secrets sent by an attacker must not make the right secret fail from anywhere else: failures are
throttled per (client, source address), with backoff and Retry-After. And the answers for an
unknown id, a throttled one and a wrong secret read the same, so ids cannot be enumerated.

A platform of its own on a FixedClock (the backoff moves only when the test moves time). Every
request goes through real HTTP from its own loopback address (127.0.0.x: one attacker, one
legitimate caller), and clients and agents are created with the official admin SDK."""

from __future__ import annotations

import time

import httpx
import pytest_asyncio
from authpi_admin import AuthPIAdmin

from authpi.crypto.clock import FixedClock
from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import part, signing_ready
from authpi.testing.plugin import eventually

ATTACKER = "127.0.0.3"
LEGITIMATE = "127.0.0.2"
# Headers that differ on every response whatever the outcome.
PER_RESPONSE = {"date", "x-request-id", "content-length"}


@pytest_asyncio.fixture(scope="module")
async def clocked(infra, tmp_path_factory):
    clock = FixedClock(int(time.time() * 1000))
    async with running_platform(infra, tmp_path_factory.mktemp("lockout"), clock) as platform:
        yield platform, clock


class Issuer:
    def __init__(self, platform, admin: AuthPIAdmin, issuer_id: str) -> None:
        self.platform = platform
        self.admin = admin
        self.id = issuer_id

    async def client(self) -> tuple[str, str]:
        """A confidential M2M client the token service knows (waited for in its cache: a token
        request would count as a failure while it is unknown)."""
        made = await self.admin.issuer(self.id).clients.create(
            {"name": "svc", "type": "m2m", "settings": {"scopes": ["invoices:read"]}}
        )
        cache = part(self.platform, "clients", "token")

        async def known() -> bool:
            return cache.get(made.id) is not None

        await eventually(known)
        return made.id, made.secret

    async def agent(self) -> tuple[str, str]:
        made = await self.admin.issuer(self.id).agents.create({"name": "bot", "scopes": ["a:b"]})
        verifier = (
            await self.admin.issuer(self.id).agent(made.id).verifiers.create({"type": "secret"})
        )
        cache = part(self.platform, "agents", "token")

        async def known() -> bool:
            entry = cache.get(made.id)
            return entry is not None and verifier.id in entry.secrets

        await eventually(known)
        return made.id, verifier.secret

    async def token(
        self, client_id: str, secret: str | None, source: str, *, basic: bool = False
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"}
        auth = None
        if basic:
            auth = (client_id, secret or "")
        else:
            form["client_id"] = client_id
            if secret is not None:
                form["client_secret"] = secret
        transport = httpx.AsyncHTTPTransport(local_address=source)
        async with httpx.AsyncClient(timeout=30, transport=transport) as http:
            return await http.post(f"{self.platform.idp_url}/{self.id}/token", data=form, auth=auth)


@pytest_asyncio.fixture(scope="module")
async def issuer(clocked) -> Issuer:
    platform, _ = clocked
    admin = AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )
    made = await admin.issuers.create({"name": "lockout"})
    await signing_ready(platform, made.id)
    return Issuer(platform, admin, made.id)


def shape(resp: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Everything a caller can compare between two answers: status, body bytes, headers."""
    headers = sorted((k, v) for k, v in resp.headers.items() if k not in PER_RESPONSE)
    return resp.status_code, resp.content, headers


async def test_attacker_failures_never_refuse_the_right_secret_elsewhere(issuer):
    client_id, secret = await issuer.client()
    for _ in range(20):
        wrong = await issuer.token(client_id, "guess", ATTACKER)
        assert wrong.status_code in (401, 429)
        ok = await issuer.token(client_id, secret, LEGITIMATE)
        assert ok.status_code == 200, ok.text
    assert (await issuer.token(client_id, secret, ATTACKER)).status_code == 429


async def test_agent_cannot_be_locked_out_by_another_address(issuer):
    agent_id, secret = await issuer.agent()
    for _ in range(20):
        await issuer.token(agent_id, "guess", ATTACKER)
    ok = await issuer.token(agent_id, secret, LEGITIMATE)
    assert ok.status_code == 200, ok.text
    assert (await issuer.token(agent_id, secret, ATTACKER)).status_code == 429


async def test_attacker_gets_429_with_a_retry_after_that_grows(clocked, issuer):
    _, clock = clocked
    client_id, secret = await issuer.client()
    for _ in range(4):
        assert (await issuer.token(client_id, "guess", ATTACKER)).status_code == 401
    waits = []
    for _ in range(6):
        refused = await issuer.token(client_id, "guess", ATTACKER)
        assert refused.status_code == 429
        assert refused.json() == {
            "error": "rate_limited",
            "error_description": "too many failed authentication attempts; retry later",
        }
        waits.append(int(refused.headers["retry-after"]))
        # While the pair waits, even the right secret from that address is refused unread.
        again = await issuer.token(client_id, secret, ATTACKER)
        assert again.status_code == 429 and int(again.headers["retry-after"]) == waits[-1]
        clock.advance(seconds=waits[-1])
    assert waits == [1, 2, 4, 8, 16, 32]
    assert (await issuer.token(client_id, secret, LEGITIMATE)).status_code == 200


async def test_unknown_throttled_and_wrong_secret_answers_are_indistinguishable(issuer):
    client_id, secret = await issuer.client()
    unknown = "c_" + "0" * (len(client_id) - 2)
    for basic, sources in ((False, ("127.0.0.4", "127.0.0.5")), (True, ("127.0.0.6", "127.0.0.7"))):
        # The same attempts from two fresh addresses, one per id: answer for answer the same.
        answers = {}
        for some_id, source in zip((client_id, unknown), sources, strict=True):
            answers[some_id] = [
                shape(await issuer.token(some_id, f"guess-{i}", source, basic=basic))
                for i in range(6)
            ]
        assert answers[client_id] == answers[unknown]
        assert [a[0] for a in answers[client_id]] == [401, 401, 401, 401, 429, 429]
    # Throttled: the right secret of the real client reads like any guess for an unknown id.
    locked = shape(await issuer.token(client_id, secret, "127.0.0.6"))
    assert locked == shape(await issuer.token(unknown, secret, "127.0.0.7"))
    assert locked[0] == 429
