"""Envelope encryption with AES-256-GCM: data keys wrapped by the key-encryption key (KEK) from
configuration. Used for signing keys at rest and per-user PII keys (crypto-shredding)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


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


class WrongKek(InvalidTag):
    """No configured key-encryption key opens this wrapped key: fail closed, never guess. An
    InvalidTag, as any other key that does not authenticate its ciphertext."""


def kek_id(key: bytes) -> str:
    """A KEK's id, stored with every key it wraps: a digest of the key, so that ids need no
    configuration and never name a different key."""
    return "k" + hashlib.sha256(b"authpi.kek-id:" + key).hexdigest()[:12]


class Kek:
    """The key-encryption keys: wrap data keys, never leave the process. Several versions may
    be loaded (oldest first): the newest wraps, every one unwraps. A wrapped key reads
    `<kek id>:<sealed>`; a wrapped key without an id predates versions and is tried with each.
    `derive` uses the first (oldest) key, so that derived secrets (username peppers, the
    idempotency sealing key, personal-token signing keys) survive a rotation."""

    def __init__(self, key: bytes, *older: bytes) -> None:
        keys = [*older, key]
        if any(len(k) != 32 for k in keys):
            raise ValueError("a key-encryption key must be 32 bytes")
        self._keys = {kek_id(k): k for k in keys}
        self._root = keys[0]
        self.current_id = kek_id(key)
        self._current = key

    @classmethod
    def from_text(cls, text: str) -> Kek:
        """Base64 (urlsafe) keys, oldest first, separated by commas, spaces or lines; lines
        starting with `#` are comments (the format of AUTHPI_KEK and of AUTHPI_KEK_FILE)."""
        lines = [line.split("#", 1)[0] for line in text.splitlines()]
        keys = [b64d(k) for k in " ".join(lines).replace(",", " ").split()]
        if not keys:
            raise ValueError("no key-encryption key given")
        return cls(keys[-1], *keys[:-1])

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def wrap(self, dek: bytes, context: str) -> str:
        return f"{self.current_id}:{seal(self._current, dek, context.encode())}"

    def unwrap(self, wrapped: str, context: str) -> bytes:
        kid, sep, sealed = wrapped.partition(":")
        if not sep:  # before versions: whichever configured key made it
            for key in self._keys.values():
                with contextlib.suppress(InvalidTag):
                    return unseal(key, wrapped, context.encode())
            raise WrongKek(
                "no configured key-encryption key opens this (unversioned) data key; "
                "check AUTHPI_KEK / AUTHPI_KEK_FILE"
            )
        key = self._keys.get(kid)
        if key is None:
            raise WrongKek(
                f"key-encryption key {kid} is not configured (configured: "
                f"{', '.join(self._keys)}); add it to AUTHPI_KEK / AUTHPI_KEK_FILE"
            )
        try:
            return unseal(key, sealed, context.encode())
        except InvalidTag:
            raise WrongKek(f"key-encryption key {kid} does not open this data key") from None

    def is_current(self, wrapped: str) -> bool:
        return wrapped.partition(":")[0] == self.current_id

    def derive(self, context: str) -> bytes:
        """A stable 32-byte secret for `context` (e.g. a per-issuer username pepper)."""
        return hmac.new(self._root, context.encode(), hashlib.sha256).digest()

    def hkdf_each(self, label: str) -> dict[str, bytes]:
        """A 32-byte HKDF-SHA256 secret for `label` from every configured key, by KEK id, newest
        last: a secret that must keep working across a KEK rotation (made with the newest,
        accepted with any one both sides still hold)."""
        return {
            kid: HKDF(hashes.SHA256(), 32, salt=None, info=label.encode()).derive(key)
            for kid, key in self._keys.items()
        }
