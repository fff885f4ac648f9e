"""Metering end to end (platform.md 5.5): 10,000 tokens issued over HTTP by the token endpoint of
`authpi up` (client_credentials, 32 requests in flight), 5,000 before a restart of the platform
process (SIGTERM right after the last answer: the IdP's fact publisher flushes once more on
stop) and 5,000 after it, on the same data. The account's machine_auth usage, read with the
official SDK, is then exactly 10,000 x the rate card's rate.

An hour closes into a ledger entry only once it has ended (plus AUTHPI_BILLING_CLOSE_GRACE_S), so
within the test's time the tokens are mostly in open hours: the usage estimate route counts them
(closed hours from the ledger, open ones priced at the current rate card). Any hour that did
close meanwhile is checked against its ledger entry too."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from authpi_admin import AuthPIAdmin

from authpi.embedded.servers import free_port
from authpi.platform.testing.process import Running, platform_process
from authpi.testing.infra import new_namespace
from authpi.testing.plugin import eventually

RATE = 7
HALF = 5_000
IN_FLIGHT = 32
RATES = json.dumps(
    {"version": "metering-e2e", "rates": {"machine_auth": RATE}, "monthly_credit_μusd": 0}
)


def admin_of(running: Running) -> AuthPIAdmin:
    creds = running.creds
    return AuthPIAdmin(
        api_key=(creds["api_key_id"], creds["api_key_secret"]), account_id=creds["account_id"],
        base_url=running.api_url, retries=False,
    )  # fmt: skip


async def machine_client(running: Running) -> tuple[str, dict[str, str]]:
    """An issuer and an M2M client of the bootstrap account: its token URL and form."""
    async with admin_of(running) as admin:
        issuer = await admin.issuers.create({"name": "metered"})
        client = await admin.issuer(issuer.id).clients.create(
            {"name": "metered", "type": "m2m",
             "settings": {"grant_types": ["client_credentials"], "scopes": ["a:read"]}}
        )  # fmt: skip
    form = {"grant_type": "client_credentials", "client_id": str(client.id),
            "client_secret": str(client.secret)}  # fmt: skip
    return f"/{issuer.id}/token", form


async def issue(running: Running, path: str, form: dict[str, str], count: int) -> None:
    """`count` tokens, IN_FLIGHT at a time on raw keep-alive connections (a light client: the
    machine's time goes to the platform), once the IdP knows the client; every one a 200."""
    async with httpx.AsyncClient(base_url=running.idp_url, timeout=60) as http:

        async def known() -> bool:  # the client reaches the IdP's view (this one is issued too)
            return (await http.post(path, data=form)).status_code == 200

        await eventually(known, timeout=60)
    url = urlsplit(running.idp_url)
    body = urlencode(form).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    data = head.encode() + body
    todo = iter(range(count - 1))
    statuses: list[int] = []

    async def worker() -> None:
        """One keep-alive HTTP/1.1 connection, one request in flight."""
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            for _ in todo:
                writer.write(data)
                lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
                statuses.append(int(lines[0].split(b" ")[1]))
                sized = [int(line.split(b":")[1]) for line in lines
                         if line.lower().startswith(b"content-length:")]  # fmt: skip
                if sized:
                    await reader.readexactly(sized[0])
                else:  # chunked
                    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                        await reader.readexactly(size + 2)
                    await reader.readuntil(b"\r\n")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
    assert statuses == [200] * (count - 1), sorted(set(statuses))


def machine_lines(lines: list[dict[str, Any]]) -> tuple[int, int]:
    """(count, amount) of the machine_auth lines of a usage estimate."""
    ours = [line for line in lines if line["dimension"] == "machine_auth"]
    return sum(line["count"] for line in ours), sum(line["amount_μusd"] for line in ours)


async def test_ten_thousand_issued_tokens_charge_exactly_across_a_restart(
    infra, tmp_path: Path, kit
) -> None:
    namespace = new_namespace()
    ports = {name: free_port() for name in ("API", "IDP", "OPS")}  # the same after the restart
    settings = {
        **{f"AUTHPI_{n}_URL": f"http://127.0.0.1:{p}" for n, p in ports.items()},
        "AUTHPI_BILLING_RATES": RATES,
        "AUTHPI_BILLING_CLOSE_GRACE_S": "1",
    }
    async with platform_process(1, tmp_path, infra, settings, namespace=namespace) as first:
        path, form = await machine_client(first)
        await issue(first, path, form, HALF)
        # Stopped right after the last answer: the IdP publishes what it still batches in
        # memory (every 50 ms, and once more on stop) before it exits.
        first.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(first.proc.wait(), 60) == 0

    async with platform_process(1, tmp_path, infra, settings, namespace=namespace) as second:
        await issue(second, path, form, HALF)
        creds = second.creds
        assert creds["account_id"] == first.creds["account_id"]  # the same deployment
        tenant = kit.Tenant(second, creds["account_id"], (creds["api_key_id"],
                                                         creds["api_key_secret"]))  # fmt: skip
        async with tenant.admin:

            async def all_counted() -> tuple[int, int] | None:
                estimate = await tenant.usage.estimate()
                counted = machine_lines(estimate.lines)
                return counted if counted[0] >= 2 * HALF else None

            await eventually(all_counted, timeout=90)
            await asyncio.sleep(2)  # nothing more arrives: no fact counted twice
            estimate = await tenant.usage.estimate()
            assert machine_lines(estimate.lines) == (2 * HALF, 2 * HALF * RATE)
            assert estimate.total_μusd == 2 * HALF * RATE  # no usage credit in this rate card
            assert {line["config_version"] for line in estimate.lines} == {"metering-e2e"}

            # Hours that closed meanwhile (the test ran across an hour's end): one ledger
            # entry each, priced at the rate, and the same in the usage route's closed lines.
            entries = [e async for e in tenant.credits.ledger_all() if e.type == "usage"]
            assert all(-e.amount_μusd == (e.count or 0) * RATE for e in entries)
            [usage] = [u async for u in tenant.usage.list_all()]
            closed = [line for line in usage.lines if line.dimension == "machine_auth"]
            assert sum(line.amount_μusd for line in closed) == -sum(e.amount_μusd for e in entries)
            assert sum(line.count or 0 for line in closed) == sum(e.count or 0 for e in entries)
