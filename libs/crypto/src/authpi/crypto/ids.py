"""Public identifiers with the prefixes spec/platform.md 1.3 assigns, and high-entropy secrets.

Formats: `acc_`-style ids are a UUIDv7 as 25 lowercase base36 characters; `agt_`/`key_`/`ptk_`
are a UUIDv7 as 32 lowercase hex; `evt_` is a 26-character ULID (Crockford base32)."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import time
import uuid
from typing import Protocol

_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two digits per lookup: the id and secret encoders run on every token request, and a lookup of
# ten bits (base32) or of one base-3844 digit (base62) halves the Python-level steps.
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_CROCKFORD_SHIFTS = tuple(range(120, -1, -10))
_B62_PAIRS = [_B62[i % 62] + _B62[i // 62] for i in range(62 * 62)]  # least significant first

BASE36_PREFIXES = frozenset({"acc", "i", "c", "usr", "org", "wh", "inv", "s", "grp", "ver", "req"})
HEX_PREFIXES = frozenset({"agt", "key", "ptk"})


_HEX_BODY = re.compile(r"[0-9a-f]{32}")
_BASE36_BODY = re.compile(r"[0-9a-z]{25}")


def minted_at(public_id: str, prefix: str) -> int | None:
    """The creation time (epoch ms) of a `<prefix>_…` id minted here as a UUIDv7, else None: 32
    hex digits or 25 base36 characters, and only the format its prefix has when it is a public
    id's (HEX_PREFIXES, BASE36_PREFIXES; other prefixes, such as key ids read as `kid_…`, may use
    either). Lets a miss on a fresh id wait for its event while a random or old id is refused at
    once."""
    head, sep, body = public_id.partition("_")
    if not sep or head != prefix:
        return None
    if _HEX_BODY.fullmatch(body) and prefix not in BASE36_PREFIXES:
        value = int(body, 16)
    elif _BASE36_BODY.fullmatch(body) and prefix not in HEX_PREFIXES:
        value = int(body, 36)
    else:
        return None
    if value >> 128 or (value >> 76) & 0xF != 7 or (value >> 62) & 0b11 != 0b10:
        return None  # not a UUIDv7
    return value >> 80


def uuid7(ms: int, rand: bytes) -> int:
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    r = int.from_bytes(rand[:10], "big")
    value |= ((r >> 68) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62
    value |= r & ((1 << 62) - 1)  # rand_b
    return value


def base36(value: int, width: int = 25) -> str:
    out: list[str] = []
    for _ in range(width):
        value, rem = divmod(value, 36)
        out.append(_B36[rem])
    return "".join(reversed(out))


def ulid(ms: int, rand: bytes) -> str:
    return crockford32((ms << 80) | int.from_bytes(rand[:10], "big"))


def crockford32(value: int) -> str:
    """A 128-bit value as 26 Crockford base32 characters, most significant first (a ULID)."""
    pairs = _CROCKFORD_PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _CROCKFORD_SHIFTS])


class MonotonicUlids:
    """ULIDs of one process in the spec's monotonic mode: the first of a millisecond takes 80
    random bits and each next one in the same millisecond adds one, so ids of one process sort
    in the order they were made. Cheap enough for every request: the time part is encoded once a
    millisecond and the upper 60 random bits only when a carry reaches them. Not secrets: the
    next id of a millisecond is predictable (request ids are references, nothing more)."""

    __slots__ = ("_head", "_ms", "_rand", "_upper")

    def __init__(self) -> None:
        self._ms = -1
        self._rand = 0
        self._head = ""  # the time part and the upper random part of the current id
        self._upper = -1

    def new(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms = ms
            self._rand = int.from_bytes(os.urandom(10), "big")
            self._upper = -1
        else:
            self._rand = (self._rand + 1) & _RAND_MASK
        rand = self._rand
        upper = rand >> 20
        if upper != self._upper:
            self._upper = upper
            value = (ms << 80) | rand
            self._head = crockford32(value)[:22]
        pairs = _CROCKFORD_PAIRS
        return self._head + pairs[(rand >> 10) & 1023] + pairs[rand & 1023]


_RAND_MASK = (1 << 80) - 1


class Ids(Protocol):
    def new(self, prefix: str) -> str: ...
    def event_uuid(self) -> uuid.UUID: ...
    def secret(self, nbytes: int = 32) -> str: ...


class RandomIds:
    """Production ids: UUIDv7 time-ordered, OS randomness."""

    def new(self, prefix: str) -> str:
        ms = time.time_ns() // 1_000_000
        rand = os.urandom(10)
        if prefix in HEX_PREFIXES:
            return f"{prefix}_{uuid7(ms, rand):032x}"
        if prefix == "evt":
            return f"evt_{ulid(ms, rand)}"
        return f"{prefix}_{base36(uuid7(ms, rand))}"

    def event_uuid(self) -> uuid.UUID:
        return uuid.UUID(int=uuid7(time.time_ns() // 1_000_000, os.urandom(10)))

    def secret(self, nbytes: int = 32) -> str:
        return base62_secret(nbytes)


def base62_secret(nbytes: int = 32) -> str:
    """`nbytes` of OS randomness in base62 (32 bytes: 43 characters, 256 bits)."""
    value = int.from_bytes(secrets.token_bytes(nbytes), "big")
    width = math.ceil(nbytes * 8 / math.log2(62))
    out: list[str] = []
    for _ in range(width // 2):
        value, rem = divmod(value, 62 * 62)
        out.append(_B62_PAIRS[rem])
    if width % 2:
        out.append(_B62[value % 62])
    return "".join(out)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def digest_matches(presented: str, stored_hex: str) -> bool:
    return hmac.compare_digest(sha256_hex(presented), stored_hex)
