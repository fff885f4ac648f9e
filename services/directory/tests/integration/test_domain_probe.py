"""The production DNS probe of domain verification (core-api.md 3.3, 7 #24) against the machine's
own resolver: a host resolving to the portal host's addresses points here; names that never
resolve (RFC 6761 `.invalid`) do not, and a failed lookup is "not yet", never an error."""

from __future__ import annotations

from authpi.directory.dns import DnsProbe


async def test_a_host_resolving_to_the_portal_addresses_points_here():
    assert await DnsProbe("127.0.0.1").points_here("localhost") is True
    assert await DnsProbe("localhost").points_here("localhost") is True


async def test_names_that_do_not_resolve_do_not_point_here():
    probe = DnsProbe("127.0.0.1")
    assert await probe.points_here("nothing-here.invalid") is False
    assert await DnsProbe("nothing-here.invalid").points_here("localhost") is False


async def test_a_host_resolving_elsewhere_does_not_point_here():
    assert await DnsProbe("192.0.2.1").points_here("localhost") is False
