"""The delivery-time SSRF guard (platform.md 7.1): the addresses a webhook may be sent to. A
target's host is resolved at every connection and only addresses that pass are connected to;
link-local (the cloud metadata services among them), unspecified and multicast addresses never
pass, loopback and private ones only where the deployment allows them (development)."""

from __future__ import annotations

import ipaddress

_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)


def address_allowed(ip: str, allow_private: bool) -> bool:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _METADATA or addr.is_link_local or addr.is_unspecified or addr.is_multicast:
        return False
    if addr.is_global:
        return True
    return allow_private and (addr.is_loopback or addr.is_private or _shared(addr))


def _shared(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """100.64.0.0/10 (carrier-grade NAT) is neither global nor private to `ipaddress`."""
    return isinstance(addr, ipaddress.IPv4Address) and addr in ipaddress.ip_network("100.64.0.0/10")
