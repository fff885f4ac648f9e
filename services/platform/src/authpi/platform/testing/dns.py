"""A tiny authoritative DNS server on 127.0.0.1 for the tests that verify domains through the
platform's real DNS probe, over the DNS wire protocol: `zone.txt[name] = [values]` and
`zone.a[name] = address` publish records. `open_zone()` starts one; `dns_zone(platform)` also
points the running platform's SSO domain probe at it while it is open."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from authpi.directory.adapters.dns_probe import DnsProbe
from authpi.platform.testing.running import RunningPlatform
from authpi.platform.testing.tenants import part


class Zone(asyncio.DatagramProtocol):
    """Answers the TXT and A records a test publishes; every other question is NXDOMAIN."""

    def __init__(self) -> None:
        self.txt: dict[str, list[str]] = {}
        self.a: dict[str, str] = {}
        self.transport: Any = None
        self.port = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        if question.rdtype == dns.rdatatype.TXT and name in self.txt:
            values = [f'"{v}"' for v in self.txt[name]]
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "TXT", *values))
        elif question.rdtype == dns.rdatatype.A and name in self.a:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", self.a[name]))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)

    def probe(self) -> DnsProbe:
        """The platform's DNS probe, asking this zone only."""
        return DnsProbe(timeout_s=2, nameservers=[("127.0.0.1", self.port)])


@contextlib.asynccontextmanager
async def open_zone() -> AsyncIterator[Zone]:
    loop = asyncio.get_running_loop()
    transport, zone = await loop.create_datagram_endpoint(Zone, local_addr=("127.0.0.1", 0))
    try:
        yield zone
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def dns_zone(platform: RunningPlatform) -> AsyncIterator[Zone]:
    """A zone of the test's own, asked by the platform's SSO domain verification while open."""
    sso = part(platform, "organization_sso")
    real = sso.probe
    async with open_zone() as zone:
        sso.probe = zone.probe()
        try:
            yield zone
        finally:
            sso.probe = real
