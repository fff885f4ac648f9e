"""Envelope encryption with AES-256-GCM: data keys wrapped by the key-encryption key (KEK) from
configuration. Used for signing keys at rest and per-user PII keys (crypto-shredding)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes = b"") -> str:
    nonce = os.urandom(12)
    return b64e(nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def unseal(key: bytes, token: str, aad: bytes = b"") -> bytes:
    raw = b64d(token)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


class Kek:
    """The key-encryption key. Wraps data keys; never leaves the process."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes")
        self._key = key

    @classmethod
    def from_text(cls, text: str) -> Kek:
        return cls(b64d(text))

    def wrap(self, dek: bytes, context: str) -> str:
        return seal(self._key, dek, context.encode())

    def unwrap(self, wrapped: str, context: str) -> bytes:
        return unseal(self._key, wrapped, context.encode())

    def derive(self, context: str) -> bytes:
        """A stable 32-byte secret for `context` (e.g. a per-issuer username pepper)."""
        return hmac.new(self._key, context.encode(), hashlib.sha256).digest()
