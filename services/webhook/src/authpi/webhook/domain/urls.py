"""Webhook URL rules and the SSRF guard (platform.md 7.1). Pure: no I/O, no DNS.

At registration (`check_url`): `https` only, plain `http` when the deployment allows insecure
URLs (AUTHPI_WEBHOOKS_ALLOW_INSECURE, development); no credentials in the URL; no fragment; at
most 2048 characters; the host is a DNS name (IDN names are stored in their ASCII form) or a
literal address written canonically (dotted-decimal IPv4, bracketed IPv6 without a zone). A
literal address, and `localhost`, is checked at once with the rule below; a name is checked when
it is resolved, at delivery time, by the sender (`check_target_address` on every address it
resolves to, connecting only to a checked one), so DNS rebinding gains nothing.

The address rule (`target_refusal`): never the unspecified, multicast, reserved or "this
network" ranges, nor a cloud metadata address; loopback, private, link-local and every other
non-global address only when the deployment allows private targets
(AUTHPI_WEBHOOKS_ALLOW_PRIVATE, development). IPv6 forms that embed an IPv4 address (mapped,
6to4, NAT64, Teredo) are judged by that address.

Hostile forms refused here, because resolvers and HTTP clients read them as addresses while a
naive check reads a name: decimal (`2130706433`), hex (`0x7f000001`), octal (`0177.0.0.1`) and
short (`127.1`) IPv4, and Unicode look-alikes that fold to an address (`１２７.０.０.１`)."""

from __future__ import annotations

import ipaddress
import re
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
# Cloud instance metadata endpoints (AWS, GCP, Azure, OpenStack: 169.254.169.254; AWS IPv6;
# Alibaba): refused even where private targets are allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
METADATA_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CLASS_E = ipaddress.ip_network("240.0.0.0/4")  # reserved, and the limited broadcast
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlPolicy(Protocol):
    """What the rules read from the deployment's settings (authpi.config.Settings)."""

    @property
    def webhooks_allow_insecure(self) -> bool: ...

    @property
    def webhooks_allow_private(self) -> bool: ...


class UrlRefused(ValueError):
    """A URL breaking a rule: `code` is the `fields[].code` of the 400, the message says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ForbiddenAddress(ValueError):
    """A delivery target address the deployment refuses (the SSRF guard)."""

    def __init__(self, address: Address, reason: str) -> None:
        super().__init__(f"{address} is not an allowed webhook target: {reason}")
        self.address = address
        self.reason = reason


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def target_refusal(address: Address, allow_private: bool) -> str | None:
    """Why `address` may not receive webhooks, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return target_refusal(embedded, allow_private)
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified or address.is_multicast:
        return "an unspecified or multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK:
        return "a 'this network' address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CLASS_E:
        return "a reserved or broadcast address"
    if address.is_global:
        return None
    local = address.is_loopback or address.is_link_local or address.is_private
    if address.is_reserved and not local:
        return "a reserved address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    return "a private or non-public address"


def check_target_address(address: Address | str, settings: UrlPolicy) -> Address:
    """Delivery time: the checked address, or ForbiddenAddress. The sender calls it on every
    address the URL's host resolves to and connects only to an address it returned."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    reason = target_refusal(ip, settings.webhooks_allow_private)
    if reason is not None:
        raise ForbiddenAddress(ip, reason)
    return ip


def literal_address(host: str) -> Address | None:
    """The address a normalised host (as `check_url` keeps it) names literally, if any."""
    if host.startswith("["):
        return ipaddress.IPv6Address(host[1:-1])
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def check_url(url: str, settings: UrlPolicy) -> str:
    """The URL in its normal form (lower-case scheme and host, IDN in ASCII), or UrlRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused("too_long", f"url must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(url):
        raise UrlRefused("invalid_url", "url must not contain spaces, control characters or \\")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlRefused("invalid_url", "url is not a valid absolute URL") from None
    scheme = parts.scheme.lower()
    _check_scheme(scheme, settings)
    if "@" in parts.netloc:
        raise UrlRefused("credentials_in_url", "url must not contain a user name or password")
    if parts.fragment or url.endswith("#"):
        raise UrlRefused("invalid_url", "url must not contain a fragment")
    if port == 0:
        raise UrlRefused("invalid_url", "url has an invalid port")
    host = _host(parts)
    _check_host(host, settings)
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path or "/"
    query = f"?{parts.query}" if parts.query else ""
    return f"{scheme}://{netloc}{path}{query}"


def _check_scheme(scheme: str, settings: UrlPolicy) -> None:
    if scheme == "https":
        return
    if scheme == "http":
        if settings.webhooks_allow_insecure:
            return
        raise UrlRefused("insecure_url", "url must use https")
    raise UrlRefused("invalid_url", "url must be an https URL")


def _host(parts: SplitResult) -> str:
    """The host in ASCII lower case; IPv6 in brackets, compressed."""
    hostinfo = parts.netloc.rpartition("@")[2]
    if hostinfo.startswith("["):
        raw = hostinfo[1 : hostinfo.find("]")]
        if "%" in raw:
            raise UrlRefused("invalid_host", "url must not name an IPv6 zone")
        try:
            return f"[{ipaddress.IPv6Address(raw).compressed}]"
        except ValueError:
            raise UrlRefused("invalid_host", "url has an invalid IPv6 address") from None
    name = parts.hostname or ""
    if not name:
        raise UrlRefused("invalid_url", "url must name a host")
    try:
        ascii_name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRefused("invalid_host", "url has an invalid host name") from None
    ascii_name = ascii_name.removesuffix(".")
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRefused("invalid_host", "url has an invalid host name")
    if _NUMERIC_LABEL.match(labels[-1]):
        # A numeric last label makes the whole host an IPv4 address for resolvers and HTTP
        # clients (WHATWG URL), in whatever base: only the canonical form is accepted.
        try:
            return str(ipaddress.IPv4Address(ascii_name))
        except ValueError:
            raise UrlRefused(
                "invalid_host", "url must write an IPv4 address in dotted-decimal form"
            ) from None
    return ascii_name


def _check_host(host: str, settings: UrlPolicy) -> None:
    allow_private = settings.webhooks_allow_private
    if host in METADATA_NAMES:
        raise UrlRefused("forbidden_host", "url must not name a cloud metadata service")
    if host == "localhost" or host.endswith(".localhost"):
        if allow_private:
            return
        raise UrlRefused("forbidden_host", "url must not name a loopback host")
    address = literal_address(host)
    if address is None:
        return
    reason = target_refusal(address, allow_private)
    if reason is not None:
        raise UrlRefused("forbidden_host", f"url names {reason}")
