"""Custom domain host names (core-api.md 3.3 rec.): a lower-cased fully qualified domain name,
with no scheme, port or path, not an IP literal and not `localhost`. Internationalised names are
stored in their ASCII (IDNA) form. Pure: the API and the PATCH of an account share it."""

from __future__ import annotations

import re

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_NOT_A_HOST = re.compile(r"[/:@?#\\\s]")


class BadHost(ValueError):
    pass


def normalize(value: str) -> str:
    """The stored form of `value`, or BadHost saying why it is not a custom domain."""
    if _NOT_A_HOST.search(value):
        raise BadHost("must be a host name only, without scheme, port, path or spaces")
    host = value.lower().removesuffix(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadHost("is not a valid internationalised host name") from None
    labels = host.split(".")
    if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise BadHost("must be a fully qualified domain name such as auth.example.com")
    if labels[-1].isdigit():
        raise BadHost("must be a host name, not an IP address")
    if labels[-1] == "localhost":
        raise BadHost("must not be localhost")
    return host
