"""Read-your-writes (DESIGN.md 3, issue item 9): once a Core API write has answered 2xx, the very
next request of any kind reflects it. 500 create-then-use loops back to back, with no wait in
between, while a background load writes and issues tokens: a new issuer's discovery answers, a new
client and a new agent secret verifier get tokens, a suspended agent and a deleted client are
refused, and a revoked API key gets 401. Zero failures. Once on the session platform (one
process), once on `authpi up` with an IdP worker process beside the main one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from authpi_admin import AuthPIAdmin

from authpi.testing.infra import Infra, new_namespace
from authpi.testing.plugin import eventually

LOOPS = 500
PACE_S = 0.01  # between two requests of one background flow: load, not a CPU hog
ES256_ONLY = {"access": {}, "security": {"signing": {"algorithms": ["ES256"]}}}


class Tenant:
    def __init__(
        self, api_url: str, idp_url: str, account_id: str, key: tuple[str, str], *,
        spread: bool = False,
    ) -> None:  # fmt: skip
        self.api_url = api_url
        self.idp_url = idp_url
        self.account_id = account_id
        self.admin = AuthPIAdmin(
            api_key=key, account_id=account_id, base_url=api_url, retries=False, timeout=30
        )
        # `spread`: a new connection per IdP request, so the kernel hands requests to every
        # process accepting on the IdP socket, IdP workers included.
        limits = httpx.Limits(max_keepalive_connections=0) if spread else httpx.Limits()
        self.idp = httpx.AsyncClient(timeout=30, limits=limits)
        self.api = httpx.AsyncClient(base_url=api_url, timeout=30)
        self.issuer_id = ""

    async def open(self) -> None:
        self.issuer_id = (
            await self.admin.issuers.create({"name": "ryw", "settings": ES256_ONLY})
        ).id

    async def close(self) -> None:
        await self.idp.aclose()
        await self.api.aclose()

    @property
    def issuer(self):
        return self.admin.issuer(self.issuer_id)

    async def token(self, client_id: str, secret: str) -> httpx.Response:
        return await self.idp.post(
            f"{self.idp_url}/{self.issuer_id}/token",
            data={"grant_type": "client_credentials", "client_id": client_id,
                  "client_secret": secret},
        )  # fmt: skip

    async def m2m(self) -> tuple[str, str]:
        client = await self.issuer.clients.create(
            {"name": "svc", "type": "m2m", "settings": {"scopes": ["orders:read"]}}
        )
        return client.id, client.secret

    async def agent(self) -> tuple[str, str]:
        agent = await self.issuer.agents.create({"name": "bot", "scopes": ["orders:read"]})
        verifier = await self.issuer.agent(agent.id).verifiers.create({"type": "secret"})
        return agent.id, verifier.secret


def _expect(resp: httpx.Response, status: int, what: str) -> str | None:
    if resp.status_code == status:
        return None
    return f"{what}: {resp.status_code} {resp.text[:200]}"


async def issuer_then_discovery(t: Tenant) -> str | None:
    made = await t.admin.issuers.create({"name": "fresh", "settings": ES256_ONLY})
    resp = await t.idp.get(f"{t.idp_url}/{made.id}/.well-known/openid-configuration")
    if (failed := _expect(resp, 200, "discovery of a new issuer")) is not None:
        return failed
    jwks = await t.idp.get(resp.json()["jwks_uri"])
    return _expect(jwks, 200, "jwks of a new issuer") or (
        None if jwks.json()["keys"] else "jwks of a new issuer: no keys"
    )


async def client_then_token(t: Tenant) -> str | None:
    client_id, secret = await t.m2m()
    return _expect(await t.token(client_id, secret), 200, "token of a new client")


async def verifier_then_agent_token(t: Tenant) -> str | None:
    agent_id, secret = await t.agent()
    return _expect(await t.token(agent_id, secret), 200, "token of a new agent verifier")


async def suspend_then_refused(t: Tenant) -> str | None:
    agent_id, secret = await t.agent()
    if (failed := _expect(await t.token(agent_id, secret), 200, "agent token")) is not None:
        return failed
    await t.issuer.agents.update(agent_id, {"status": "suspended"})
    return _expect(await t.token(agent_id, secret), 401, "token of a suspended agent")


async def delete_then_refused(t: Tenant) -> str | None:
    client_id, secret = await t.m2m()
    if (failed := _expect(await t.token(client_id, secret), 200, "client token")) is not None:
        return failed
    await t.issuer.clients.delete(client_id)
    return _expect(await t.token(client_id, secret), 401, "token of a deleted client")


async def revoke_then_unauthorized(t: Tenant) -> str | None:
    key = await t.admin.api_keys.create(
        {"name": f"k-{uuid.uuid4().hex[:6]}", "restrictions": {"scopes": ["issuers:read"]}}
    )
    auth = (key.id, key.secret_plain)
    path = f"/v1/accounts/{t.account_id}/issuers/{t.issuer_id}"
    if (failed := _expect(await t.api.get(path, auth=auth), 200, "new key")) is not None:
        return failed
    await t.admin.api_keys.revoke(key.id)
    return _expect(await t.api.get(path, auth=auth), 401, "request with a revoked key")


LOOP_KINDS: list[Callable[[Tenant], Awaitable[str | None]]] = [
    issuer_then_discovery,
    client_then_token,
    verifier_then_agent_token,
    suspend_then_refused,
    delete_then_refused,
    revoke_then_unauthorized,
]


@contextlib.asynccontextmanager
async def background_load(t: Tenant) -> AsyncIterator[list[int]]:
    """Concurrent writers and token requests for the whole run; yields the counts done."""
    stop = asyncio.Event()
    done = [0, 0]
    client_id, secret = await t.m2m()

    async def writes() -> None:
        while not stop.is_set():
            await t.issuer.agents.create({"name": "load", "scopes": ["orders:read"]})
            done[0] += 1
            await asyncio.sleep(PACE_S)

    async def tokens() -> None:
        while not stop.is_set():
            resp = await t.token(client_id, secret)
            assert resp.status_code == 200, resp.text
            done[1] += 1
            await asyncio.sleep(PACE_S)

    tasks = [asyncio.create_task(writes()), asyncio.create_task(tokens())]
    try:
        yield done
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def run_loops(t: Tenant) -> None:
    await t.open()
    failures: list[str] = []
    async with background_load(t) as done:
        for i in range(LOOPS):
            failed = await LOOP_KINDS[i % len(LOOP_KINDS)](t)
            if failed is not None:
                failures.append(f"loop {i}: {failed}")
    assert done[0] > 0 and done[1] > 0  # the load really ran beside the loops
    assert failures == []


async def test_create_then_use_500_times_under_load(platform):
    t = Tenant(
        platform.api_url, platform.idp_url, platform.account_id,
        (platform.api_key_id, platform.api_key_secret),
    )  # fmt: skip
    try:
        await run_loops(t)
    finally:
        await t.close()


@contextlib.asynccontextmanager
async def up_with_idp_workers(infra: Infra, tmp_path: Path) -> AsyncIterator[Tenant]:
    """`authpi up` with AUTHPI_IDP_WORKERS=2 (the main process and one IdP worker process on the
    IdP socket), ready once /readyz counts the worker; a tenant on its bootstrap account. Its own
    embedded NATS, as `make run` has it: every process on the bus with its own credentials."""
    data_dir = tmp_path / ".authpi"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPI_")}
    env.update(
        AUTHPI_DATA_DIR=str(data_dir), AUTHPI_DATABASE_URL=infra.dsn,
        AUTHPI_NAMESPACE=new_namespace(),
        AUTHPI_API_URL="http://127.0.0.1:0", AUTHPI_IDP_URL="http://127.0.0.1:0",
        AUTHPI_OPS_URL="http://127.0.0.1:0", AUTHPI_IDP_WORKERS="2",
        AUTHPI_RATE_LIMIT_MULTIPLIER="1000",
    )  # fmt: skip
    with open(tmp_path / "authpi-up.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "authpi.platform.cli", "up", env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        boot = data_dir / "bootstrap.json"

        async def bootstrapped() -> bool:
            assert proc.returncode is None, (tmp_path / "authpi-up.log").read_text()[-3000:]
            return boot.exists()

        await eventually(bootstrapped, timeout=180, interval=0.2)
        creds = json.loads(boot.read_text())

        async def ready() -> bool:
            ops_url = json.loads((data_dir / "runtime.json").read_text())["ops_url"]
            async with httpx.AsyncClient(timeout=5) as http:
                with contextlib.suppress(httpx.HTTPError):
                    resp = await http.get(f"{ops_url}/readyz")
                    return resp.status_code == 200 and resp.json()["checks"]["idp_workers"]
            return False

        await eventually(ready, timeout=60)
        t = Tenant(
            creds["api_url"], creds["idp_url"], creds["account_id"],
            (creds["api_key_id"], creds["api_key_secret"]), spread=True,
        )  # fmt: skip
        try:
            yield t
        finally:
            await t.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_create_then_use_500_times_with_an_idp_worker(infra, tmp_path):
    async with up_with_idp_workers(infra, tmp_path) as t:
        await run_loops(t)
