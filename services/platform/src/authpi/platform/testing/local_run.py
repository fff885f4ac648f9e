"""The local distributed run for tests (`authpi up --distributed` in this process's event loop,
every service a child process, its own PostgreSQL and NATS cluster): the `local_run` fixture's
SharedRun, once per session and only for the tests that ask for it; a client loop of token
requests and Core API writes (`Load`) that the fault tests run throughout each case; and the
probe that says which process holds a lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from authpi.config import Settings
from authpi.embedded.servers import free_port
from authpi.platform.distributed import Distributed
from authpi.platform.testing.running import RunningPlatform
from authpi.platform.testing.tenants import basic


@contextlib.asynccontextmanager
async def distributed_run(data_dir: Path) -> AsyncIterator[tuple[Distributed, RunningPlatform]]:
    """The topology on free loopback ports, its own PostgreSQL and NATS cluster, bootstrapped;
    as a RunningPlatform (no `handle`: nothing of it runs in this process)."""
    settings = Settings(
        data_dir=data_dir,
        api_url=f"http://127.0.0.1:{free_port()}",
        idp_url=f"http://127.0.0.1:{free_port()}",
    )
    # One client IP runs every test; SSO upstreams of tests are plain http on loopback.
    env = {"AUTHPI_RATE_LIMIT_MULTIPLIER": "1000", "AUTHPI_SSO_ALLOW_INSECURE": "1",
           "AUTHPI_TRUSTED_PROXIES": "127.0.0.1/32", "AUTHPI_LOG_FORMAT": "json"}  # fmt: skip
    run = Distributed(settings, env=env)
    await run.start()
    try:
        creds = json.loads(settings.bootstrap_path.read_text())
        yield run, RunningPlatform(
            api_url=settings.api_url, idp_url=settings.idp_url, ops_url="",
            account_id=creds["account_id"], api_key_id=creds["api_key_id"],
            api_key_secret=creds["api_key_secret"], namespace=settings.namespace,
            dsn=run.owner_dsn, nats_url=run.nats.url if run.nats else "",
        )  # fmt: skip
    finally:
        await run.stop()


class SharedRun:
    """One distributed run for a whole test session, started on first use (`get`)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._stack = contextlib.AsyncExitStack()
        self._run: tuple[Distributed, RunningPlatform] | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> tuple[Distributed, RunningPlatform]:
        async with self._lock:
            if self._run is None:
                self._run = await self._stack.enter_async_context(distributed_run(self.data_dir))
            return self._run

    async def close(self) -> None:
        await self._stack.aclose()


async def lock_holder(dsn: str, key: str) -> str | None:
    """The process (its application name, `authpi-<process>`) whose session holds the advisory
    lock `key` (eventstore.locks), or None."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
            " AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295)",
            [key],
        )
        row = await cur.fetchone()
    return row[0].removeprefix("authpi-") if row else None


@dataclass
class Load:
    """Token requests and Core API writes (users, each with an idempotency key, retried with the
    same key until acknowledged) in a loop, counting what failed on the way."""

    platform: RunningPlatform
    issuer_id: str
    client: tuple[str, str]
    tokens_ok: int = 0
    token_failures: int = 0
    write_failures: int = 0  # attempts that failed and were tried again
    in_doubt: int = 0  # writes given up unacknowledged (their first attempt's process died)
    acknowledged: list[str] = field(default_factory=list[str])  # user ids
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _tokens(self) -> None:
        url = f"{self.platform.idp_url}/{self.issuer_id}/token"
        form = {"grant_type": "client_credentials", "client_id": self.client[0],
                "client_secret": self.client[1]}  # fmt: skip
        async with httpx.AsyncClient(timeout=5) as http:
            while not self._stop.is_set():
                try:
                    ok = (await http.post(url, data=form)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.tokens_ok += ok
                self.token_failures += not ok
                await asyncio.sleep(0.005)

    async def _writes(self) -> None:
        key = (self.platform.api_key_id, self.platform.api_key_secret)
        path = f"/v1/accounts/{self.platform.account_id}/issuers/{self.issuer_id}/users"
        async with httpx.AsyncClient(base_url=self.platform.api_url, timeout=10) as http:
            while not self._stop.is_set():
                body = {"username_type": "email", "username": f"l-{uuid.uuid4().hex[:12]}@e.test"}
                headers = {**basic(*key), "Idempotency-Key": uuid.uuid4().hex}
                # The same write, with the same key, until acknowledged. A key whose first
                # attempt died with the process serving it stays claimed for the gateway's lease
                # (409, edge/idempotency.py): that write is in doubt, and the loop moves on.
                while not self._stop.is_set():
                    try:
                        resp = await http.post(path, json=body, headers=headers)
                        if resp.status_code in (200, 201):
                            self.acknowledged.append(resp.json()["data"]["id"])
                            break
                        if resp.status_code == 409:
                            self.in_doubt += 1
                            break
                    except httpx.HTTPError:
                        pass
                    self.write_failures += 1
                    await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Load]:
        tasks = [asyncio.create_task(self._tokens()), asyncio.create_task(self._writes())]
        try:
            yield self
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    async def progress(self, tokens: int = 50, writes: int = 5, timeout: float = 120) -> None:
        """Until the loop has got `tokens` more tokens and `writes` more acknowledged writes."""
        goal = (self.tokens_ok + tokens, len(self.acknowledged) + writes)
        deadline = time.monotonic() + timeout
        while self.tokens_ok < goal[0] or len(self.acknowledged) < goal[1]:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no progress: {self.tokens_ok} tokens, {len(self.acknowledged)} writes"
                )
            await asyncio.sleep(0.05)
