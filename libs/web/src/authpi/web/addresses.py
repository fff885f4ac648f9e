"""The client address of a request, the same on both ports. The TCP peer is the client unless it
is one of the trusted proxies (`AUTHPI_TRUSTED_PROXIES`, CIDRs): then the forwarded header those
proxies append (`X-Forwarded-For`, or RFC 7239 `Forwarded`) is read from the right, trusted hops
skipped, and the first untrusted hop is the client. From any other peer the header is ignored,
so a client cannot pick its own address. Rate limits and lockouts key on `address_key`: the IPv4
address, or the /64 of an IPv6 address (one subscriber's allocation, RFC 6177)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

X_FORWARDED_FOR = "x-forwarded-for"
FORWARDED = "forwarded"
HEADERS = (X_FORWARDED_FOR, FORWARDED)
MAX_HOPS = 32  # a longer chain is not one our proxies wrote: only its right end is read


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (or bare addresses) as networks; ValueError names the first bad one."""
    networks: list[Network] = []
    for item in items:
        text = item.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {text!r}") from None
    return tuple(networks)


def address_key(address: str | None) -> str:
    """The bucket of a client address: IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as IPv4."""
    if not address:
        return "-"
    if ":" not in address:
        return address  # IPv4, the common case: no parsing on the hot path
    try:
        ip = IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(IPv6Network((int(ip) >> 64 << 64, 64)))


def _address(text: str) -> Address | None:
    """An address from one hop: `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]:80`, `"[::1]"`."""
    value = text.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        value = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _x_forwarded_for(value: str) -> list[str]:
    return value.split(",")


def _forwarded(value: str) -> list[str]:
    """The `for=` of each element of an RFC 7239 header (an element without one counts as an
    unknown hop, which ends the walk)."""
    hops: list[str] = []
    for element in value.split(","):
        found = ""
        for pair in element.split(";"):
            name, _, param = pair.partition("=")
            if name.strip().lower() == "for":
                found = param
        hops.append(found)
    return hops


class ClientAddresses:
    """Which peers are trusted proxies, and the client address behind one."""

    def __init__(self, trusted: Sequence[str] = (), header: str = X_FORWARDED_FOR) -> None:
        if header not in HEADERS:
            raise ValueError(f"forwarded header must be one of {', '.join(HEADERS)}")
        self.trusted = parse_networks(trusted)
        self.header = header.encode("latin-1")
        self._hops = _forwarded if header == FORWARDED else _x_forwarded_for

    def is_trusted(self, ip: Address | None) -> bool:
        return ip is not None and any(ip in net for net in self.trusted)

    def client(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The client address of a request from `peer` with these raw headers."""
        if not self.trusted or peer is None or not self.is_trusted(_address(peer)):
            return peer
        values = [v.decode("latin-1") for k, v in headers if k == self.header]
        if not values:
            return peer
        hops = [h for v in values for h in self._hops(v)][-MAX_HOPS:]
        client = peer
        for hop in reversed(hops):
            ip = _address(hop)
            if ip is None:
                break  # garbage or "unknown": the last good hop is as far as we can see
            client = str(ip)
            if not self.is_trusted(ip):
                break
        return client


def forwarded_clients(app: Any, addresses: ClientAddresses) -> Any:
    """`app` with `scope["client"]` set to the client behind a trusted proxy; `app` itself when
    no proxy is trusted (nothing to do per request)."""
    if not addresses.trusted:
        return app

    async def resolve(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            peer = scope.get("client")
            if peer:
                client = addresses.client(peer[0], scope["headers"])
                if client != peer[0]:
                    scope["client"] = (client, 0)
        await app(scope, receive, send)

    return resolve
