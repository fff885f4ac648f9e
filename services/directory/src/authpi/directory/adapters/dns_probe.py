"""DNS lookups of custom domains (core-api.md 3.3, 7 #24: DNS-based verification). A host
verifies when its `_authpi-challenge` TXT record publishes the account's challenge
(`txt_values`). Resolution failures and timeouts mean "not yet", never an error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.rdatatype


class DomainProbe(Protocol):
    async def txt_values(self, name: str) -> frozenset[str]: ...


class DnsProbe:
    """The production probe."""

    def __init__(self, timeout_s: float = 5.0, nameservers: Sequence[tuple[str, int]] = ()) -> None:
        """`nameservers`: (address, port) pairs to ask instead of the system's resolvers."""
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
