"""The cache of verified tokens (authpi.token.signing.verifier `decode_cached`): a hit gives the
same claims as a full check, never for an expired token, never once the key that verified it is
no longer published for the issuer (rotated out, removed, or the issuer reloaded with new key
objects), never for another issuer; its size stays within its bound. Real ES256 signatures."""

from __future__ import annotations

import base64

import jwt
import msgspec

from authpi.crypto.clock import FixedClock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.signing.keys import generate, public_jwk, sign_jwt
from authpi.token.signing.verifier import TokenVerifier

IDP = "https://idp.example.test"
KEY = generate("ES256")
JWK = public_jwk(KEY, "k1", "ES256")


def issuer(issuer_id: str = "i_1", jwks: list[dict] | None = None) -> IssuerKeys:
    return IssuerKeys(
        issuer_id=issuer_id, account_id="acc_1", status="active", available_scopes=[],
        access_token_ttl=1800, refresh_token_ttl=604800, id_token_ttl=1800,
        signing_algs=["ES256"], default_alg="ES256", jwks=b"{}", jwks_etag="x", signers={},
        public={k["kid"]: jwt.PyJWK(k) for k in (jwks if jwks is not None else [JWK])},
    )  # fmt: skip


def token(clock: FixedClock, issuer_id: str = "i_1", jti: str = "t1", ttl: int = 600) -> str:
    now = clock.now_ms() // 1000
    claims = {
        "iss": f"{IDP}/{issuer_id}", "sub": "c_1", "client_id": "c_1", "jti": jti,
        "iat": now, "exp": now + ttl,
    }  # fmt: skip
    return sign_jwt(KEY, "k1", "ES256", claims, typ="at+jwt")


def test_a_hit_answers_as_a_full_check():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    keys, t = issuer(), token(clock)
    first = verifier.decode_cached(keys, t)
    second = verifier.decode_cached(keys, t)
    assert first is not None and first == verifier.decode(keys, t)
    assert second == first
    assert (verifier.hits, verifier.misses) == (1, 1)


def test_an_expired_token_is_refused_even_when_cached():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    keys, t = issuer(), token(clock, ttl=60)
    assert verifier.decode_cached(keys, t) is not None
    clock.advance(seconds=60)
    assert verifier.decode_cached(keys, t) is None
    assert verifier.hits == 1  # refused from the cache, by the clock


def test_a_key_no_longer_published_is_not_trusted_from_the_cache():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    t = token(clock)
    assert verifier.decode_cached(issuer(), t) is not None
    other = public_jwk(generate("ES256"), "k2", "ES256")
    assert verifier.decode_cached(issuer(jwks=[other]), t) is None  # k1 removed
    assert verifier.decode_cached(issuer(jwks=[]), t) is None
    # The issuer reloaded with k1 still published: a full check again, then cached.
    reloaded = issuer(jwks=[JWK, other])
    misses = verifier.misses
    assert verifier.decode_cached(reloaded, t) is not None
    assert verifier.misses == misses + 1


def test_another_issuer_gets_no_hit():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    t = token(clock)
    keys = issuer()
    assert verifier.decode_cached(keys, t) is not None
    # The same key object published for another issuer: still refused (its `iss` differs).
    assert verifier.decode_cached(msgspec.structs.replace(keys, issuer_id="i_2"), t) is None


def test_garbage_is_refused_and_not_kept():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    keys, t = issuer(), token(clock)
    tampered = t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB")
    for bad in ("", "a.b", "a.b.c", tampered, "x" * 9000):
        assert verifier.decode_cached(keys, bad) is None
    assert len(verifier._verified) == 0


def test_the_cache_is_bounded():
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock, cache_size=8)
    keys = issuer()
    tokens = [token(clock, jti=f"t{n}") for n in range(20)]
    for t in tokens:
        assert verifier.decode_cached(keys, t) is not None
    assert len(verifier._verified) == 8
    assert verifier.decode_cached(keys, tokens[-1]) is not None  # the newest stays
    assert verifier.hits == 1


def test_deeply_nested_segments_are_refused_not_raised():
    """A header or claims segment is read before the signature is checked, so it is anyone's
    text: nesting deeper than the JSON decoder goes is a refusal like any other garbage."""
    clock = FixedClock()
    verifier = TokenVerifier(IDP, clock)
    keys, good = issuer(), token(clock)
    head, _, rest = good.partition(".")
    signature = rest.rpartition(".")[2]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    deep = b"[" * 2500 + b"]" * 2500
    for forged in (f"{head}.{b64(deep)}.{signature}", f"{b64(deep)}.{rest}"):
        assert len(forged) <= 8192
        assert verifier.parse(keys, forged) is None
        assert verifier.decode(keys, forged) is None
