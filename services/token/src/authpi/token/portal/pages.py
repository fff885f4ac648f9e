"""Rendering of the portal's pages: Jinja2 with autoescape on for every template, and the
issuer's branding (settings.branding) reduced to values that cannot carry markup or script: a
display name (escaped like everything else), a logo URL only when it is an absolute https URL,
a primary colour only when it is a CSS hex colour. Nothing from settings reaches a page
unescaped, and no raw CSS from settings is ever used.

Every page is sent with a strict Content-Security-Policy (no script at all; the one inline style
block carries a per-response nonce), X-Frame-Options DENY and no-store."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from authpi.crypto.envelope import b64e

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_COLOR = "#2f54eb"
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?")
MAX_NAME_CHARS = 80
MAX_URL_CHARS = 2048


class Branding(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    logo_url: str | None = None
    primary_color: str = DEFAULT_COLOR

    @property
    def mark(self) -> str:
        """The monogram shown without a logo: the name's first letter or digit (a name that
        starts with a quote or a bracket is not shown as that punctuation), or a neutral mark
        when the name has none."""
        return monogram(self.name)


NEUTRAL_MARK = "\u2022"


def monogram(name: str) -> str:
    return next((c for c in name if c.isalnum()), NEUTRAL_MARK)


def branding(issuer_name: str, settings: Mapping[str, Any]) -> Branding:
    raw = settings.get("branding")
    brand: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    name = _text(brand.get("display_name")) or _text(brand.get("name")) or issuer_name
    return Branding(
        name=name[:MAX_NAME_CHARS] or "Sign in",
        logo_url=safe_logo_url(brand.get("logo_url")),
        primary_color=safe_color(brand.get("primary_color")) or DEFAULT_COLOR,
    )


def safe_color(value: Any) -> str | None:
    """A CSS hex colour (#abc or #aabbcc), or None."""
    if isinstance(value, str) and _HEX_COLOR.fullmatch(value):
        return value.lower()
    return None


def safe_logo_url(value: Any) -> str | None:
    """An absolute https URL without credentials, whitespace or quotes, or None."""
    if not isinstance(value, str) or not value or len(value) > MAX_URL_CHARS:
        return None
    if any(c.isspace() or c in "\"'<>\\`" or ord(c) < 0x20 for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme != "https" or parts.username or parts.password:
        return None
    if not parts.hostname or not _HOST.fullmatch(parts.hostname):
        return None
    try:
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return None
    return value


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


SCOPES = {
    "openid": "Confirm who you are",
    "profile": "See your name and profile picture",
    "email": "See your email address",
    "phone": "See your phone number",
    "address": "See your postal address",
    "offline_access": "Stay connected while you are not using it",
}


def scope_text(scope: str) -> str:
    """What a scope lets the client do, in words a person reads on the consent page; a scope
    the portal does not know is named as it is."""
    return SCOPES.get(scope, f"Use the \u201c{scope}\u201d permission")


class Rendered(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    html: str
    headers: dict[str, str]


class Pages:
    def __init__(self, templates: Path = TEMPLATES) -> None:
        self.env = Environment(
            loader=FileSystemLoader(str(templates)),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["scope_text"] = scope_text

    def render(
        self, template: str, status: int, brand: Branding, context: Mapping[str, Any]
    ) -> Rendered:
        nonce = b64e(os.urandom(18))
        values = {
            "brand": brand, "nonce": nonce, "title": "", "error": None, "notice": None,
            "detail": None, "secondary": None,
        }  # fmt: skip
        values.update(context)
        html = self.env.get_template(template).render(values)
        return Rendered(status=status, html=html, headers=security_headers(nonce, brand))


def security_headers(nonce: str, brand: Branding) -> dict[str, str]:
    img = "img-src 'self' data:"
    if brand.logo_url:  # safe_logo_url allowed only a plain host name and a numeric port
        parts = urlsplit(brand.logo_url)
        port = f":{parts.port}" if parts.port else ""
        img = f"img-src 'self' data: https://{parts.hostname}{port}"
    # No form-action: browsers apply it to the redirect after a POST, and the sign-in POST
    # redirects to the client's registered redirect_uri.
    policy = "; ".join(
        (
            "default-src 'none'",
            f"style-src 'nonce-{nonce}'",
            img,
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
