"""Header values built from input (DESIGN.md 7, "Hostile input"): escaped, never copied raw.

A path part such as an issuer id may hold anything once percent-decoded: control characters,
CR/LF, quotes, non-ASCII. Copied into a header it either splits the header (injection) or makes
the HTTP server refuse the response after it has started, which drops the connection with no
answer. So:

* `url_text` percent-encodes a URL built from input (a realm, a Location) down to visible ASCII
  without `"` or `\\`, which also makes it safe inside a quoted-string;
* `safe_value` is the last line of defence on every response of both ports (the request-context
  layer): a value with bytes outside visible ASCII and tab is percent-encoded there, and logged,
  instead of reaching the server."""

from __future__ import annotations

import re
from urllib.parse import quote

# RFC 3986 reserved and unreserved characters, and `%` (already-encoded input stays readable).
_URL_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
_UNSAFE_BYTE = re.compile(rb"[^\t\x20-\x7e]")


def url_text(url: str) -> str:
    """`url` with every character outside the URL-safe visible ASCII set percent-encoded."""
    return quote(url, safe=_URL_SAFE)


def is_safe(value: bytes) -> bool:
    return _UNSAFE_BYTE.search(value) is None


def safe_value(value: bytes) -> bytes:
    """`value` with every byte outside tab and visible ASCII percent-encoded."""
    return _UNSAFE_BYTE.sub(lambda m: b"%%%02X" % m.group()[0], value)
