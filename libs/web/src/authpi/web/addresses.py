"""The client address of a request, the same on both ports. The TCP peer is the client unless it
is one of the trusted proxies (`AUTHPI_TRUSTED_PROXIES`, CIDRs): then the forwarded header those
proxies append (`X-Forwarded-For`, or RFC 7239 `Forwarded`) is read from the right, trusted hops
skipped, and the first untrusted hop is the client. From any other peer the header is ignored,
so a client cannot pick its own address. Rate limits and lockouts key on `address_key`: the IPv4
address, or the /64 of an IPv6 address (one subscriber's allocation, RFC 6177)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import Any

Network = IPv4Network | IPv6Network

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
    """The bucket of a client address: IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as IPv4.
    Parsed with inet_pton (the ipaddress module costs microseconds per request)."""
    if not address:
        return "-"
    if ":" not in address:
        return address  # IPv4, the common case: no parsing at all
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
    except OSError:
        return address[:64]
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed[:8] + _ZERO_HALF) + "/64"


_V4_MAPPED = b"\0" * 10 + b"\xff\xff"
_ZERO_HALF = b"\0" * 8


def _canonical(text: str) -> str | None:
    """One hop as a canonical address string, or None: `1.2.3.4`, `1.2.3.4:80`, `::1`,
    `[::1]:80`, `"[::1]"`; an IPv4-mapped IPv6 address as IPv4."""
    value = text.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        value = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        if ":" not in value:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
        packed = socket.inet_pton(socket.AF_INET6, value)
    except OSError:
        return None
    if packed[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    return socket.inet_ntop(socket.AF_INET6, packed)


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
        self._verdicts: dict[str, bool] = {}  # canonical address -> trusted

    def is_trusted(self, address: str) -> bool:
        verdict = self._verdicts.get(address)
        if verdict is None:
            ip = ipaddress.ip_address(address)
            verdict = any(ip in net for net in self.trusted)
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()  # bounded: many distinct clients behind the proxies
            self._verdicts[address] = verdict
        return verdict

    def client(self, peer: str | None, headers: Iterable[tuple[bytes, bytes]]) -> str | None:
        """The client address of a request from `peer` with these raw headers."""
        if not self.trusted or peer is None:
            return peer
        canonical = _canonical(peer)
        if canonical is None or not self.is_trusted(canonical):
            return peer
        values = [v.decode("latin-1") for k, v in headers if k == self.header]
        if not values:
            return peer
        hops = [h for v in values for h in self._hops(v)][-MAX_HOPS:]
        client = peer
        for hop in reversed(hops):
            address = _canonical(hop)
            if address is None:
                break  # garbage or "unknown": the last good hop is as far as we can see
            client = address
            if not self.is_trusted(address):
                break
        return client


_MAX_VERDICTS = 4096


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

    resolve.__wrapped__ = app  # type: ignore[attr-defined]  # the functools convention
    return resolve
