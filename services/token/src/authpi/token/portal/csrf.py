"""CSRF protection of the portal's forms: a double submit bound to the flow. The browser holds a
random `authpi_csrf` cookie (HttpOnly, SameSite=Lax, path-scoped to the issuer); every form
carries `csrf` = HMAC(key, flow id + cookie), the key derived from the KEK ("portal-csrf"). A
POST whose field does not match its cookie, or whose cookie is missing, changes nothing: another
site can neither read the cookie nor compute the field."""

from __future__ import annotations

import hashlib
import hmac
import os

from authpi.crypto.envelope import b64e

COOKIE = "authpi_csrf"
MAX_COOKIE_CHARS = 64


class Csrf:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @staticmethod
    def new_cookie() -> str:
        return b64e(os.urandom(24))

    @staticmethod
    def usable(cookie: str | None) -> bool:
        return bool(cookie) and len(cookie or "") <= MAX_COOKIE_CHARS

    def field(self, binding: str, cookie: str) -> str:
        mac = hmac.new(self._key, f"{binding}\n{cookie}".encode(), hashlib.sha256).digest()
        return b64e(mac)

    def valid(self, binding: str, cookie: str | None, presented: str | None) -> bool:
        if not cookie or not presented or not self.usable(cookie):
            return False
        return hmac.compare_digest(self.field(binding, cookie), presented)
