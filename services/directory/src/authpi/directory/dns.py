"""Whether a custom domain points at this deployment (core-api.md 3.3, 7 #24: DNS-based
verification). A host verifies when the system resolver, following its CNAME chain, ends at the
portal host's canonical name or at one of the portal host's addresses. Resolution failures and
timeouts mean "not yet", never an error."""

from __future__ import annotations

import asyncio
import socket
from typing import Protocol


class DomainProbe(Protocol):
    async def points_here(self, host: str) -> bool: ...


class Resolved:
    def __init__(self, canonical: str | None, addresses: frozenset[str]) -> None:
        self.canonical = canonical
        self.addresses = addresses


class DnsProbe:
    """The production probe; `portal_host` is the host name of the hosted portal (the IdP URL)."""

    def __init__(self, portal_host: str, timeout_s: float = 5.0) -> None:
        self.portal_host = portal_host
        self.timeout_s = timeout_s

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
