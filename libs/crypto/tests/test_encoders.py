"""The id and secret encoders of the token path give exactly the digits of the plain
digit-by-digit encodings (ULIDs and evt_ ids in Crockford base32, jti and secrets in base62)."""

import math
import random
import uuid

from authpi.contracts.public import public_event_id
from authpi.crypto.ids import base62_secret, crockford32, ulid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def crockford_digits(value: int) -> str:
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def base62_digits(value: int, nbytes: int) -> str:
    """Least significant digit first, as many digits as `nbytes` random bytes need."""
    width = math.ceil(nbytes * 8 / math.log2(62))
    return "".join(B62[(value // 62**i) % 62] for i in range(width))


def test_crockford32_is_the_26_digit_base32_of_a_128_bit_value():
    rng = random.Random(7)
    for value in [0, 1, 2**127, 2**128 - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert crockford32(value) == crockford_digits(value)
    ms, rand = 1_700_000_000_123, bytes(range(10))
    assert ulid(ms, rand) == crockford_digits(ms << 80 | int.from_bytes(rand, "big"))
    event = uuid.UUID(int=rng.getrandbits(128))
    assert public_event_id(event) == "evt_" + crockford_digits(event.int)
    assert public_event_id(str(event)) == public_event_id(event)


def test_base62_secret_has_the_plain_digits_of_its_random_bytes(monkeypatch):
    rng = random.Random(11)
    for nbytes in (1, 2, 13, 16, 32):
        for _ in range(300):
            raw = rng.randbytes(nbytes)
            monkeypatch.setattr("authpi.crypto.ids.secrets.token_bytes", lambda n, raw=raw: raw)
            assert base62_secret(nbytes) == base62_digits(int.from_bytes(raw, "big"), nbytes)
    monkeypatch.undo()
    assert len(base62_secret(13)) == 18 and len(base62_secret()) == 43
    assert len({base62_secret(13) for _ in range(1000)}) == 1000
