"""DNS lookups of custom domains (core-api.md 3.3, 7 #24: DNS-based verification). A host
verifies when its `_authpi-challenge` TXT record publishes the account's challenge
(`txt_values`); `points_here` tells whether it resolves to the portal host. Resolution failures
and timeouts mean "not yet", never an error."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.rdatatype


class DomainProbe(Protocol):
    async def txt_values(self, name: str) -> frozenset[str]: ...


class Resolved:
    def __init__(self, canonical: str | None, addresses: frozenset[str]) -> None:
        self.canonical = canonical
        self.addresses = addresses


class DnsProbe:
    """The production probe; `portal_host` is the host name of the hosted portal (the IdP URL)."""

    def __init__(
        self, portal_host: str, timeout_s: float = 5.0,
        nameservers: Sequence[tuple[str, int]] = (),
    ) -> None:  # fmt: skip
        """`nameservers`: (address, port) pairs to ask instead of the system's resolvers."""
        self.portal_host = portal_host
        self.timeout_s = timeout_s
        self.nameservers = tuple(nameservers)

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if not self.nameservers:
            resolver = dns.asyncresolver.Resolver()
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [address for address, _ in self.nameservers]
            resolver.port = self.nameservers[0][1]
        resolver.lifetime = self.timeout_s
        return resolver

    async def txt_values(self, name: str) -> frozenset[str]:
        """The TXT values published at `name` (each record's strings joined, RFC 7208 3.3);
        empty when there are none or the lookup fails."""
        try:
            answer = await self._resolver().resolve(name, dns.rdatatype.TXT, search=False)
        except (dns.exception.DNSException, OSError):
            return frozenset()
        return frozenset(
            b"".join(record.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]
            for record in answer
        )

    async def points_here(self, host: str) -> bool:
        target, portal = await asyncio.gather(self._resolve(host), self._resolve(self.portal_host))
        if target is None or portal is None:
            return False
        same_name = target.canonical is not None and target.canonical in (
            portal.canonical,
            self.portal_host.lower(),
        )
        return same_name or bool(target.addresses & portal.addresses)

    async def _resolve(self, host: str) -> Resolved | None:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME),
                self.timeout_s,
            )
        except (OSError, TimeoutError, UnicodeError):
            return None
        canonical = next((info[3] for info in infos if info[3]), None)
        addresses = frozenset(str(info[4][0]) for info in infos)
        return Resolved(canonical.rstrip(".").lower() if canonical else None, addresses)
