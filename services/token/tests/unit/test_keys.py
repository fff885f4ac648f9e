"""Key material: public JWKs carry no private parameter, private keys round-trip through the
KEK envelope and only with the right kid, and signatures verify against the published JWK."""

from __future__ import annotations

import jwt
import pytest
from cryptography.exceptions import InvalidTag

from authpi.crypto.envelope import Kek, new_key
from authpi.token.domain.signing_key import ALGORITHMS
from authpi.token.signing.keys import generate, public_jwk, sign_jwt, unwrap_private, wrap_private

EXPECTED = {
    "ES256": {"kty": "EC", "crv": "P-256"},
    "EdDSA": {"kty": "OKP", "crv": "Ed25519"},
    "RS256": {"kty": "RSA"},
}


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_jwk_has_public_parameters_only(alg):
    jwk = public_jwk(generate(alg), "kid-1", alg)
    assert {k: jwk[k] for k in EXPECTED[alg]} == EXPECTED[alg]
    assert jwk["alg"] == alg and jwk["use"] == "sig" and jwk["kid"] == "kid-1" and jwk["ext"]
    assert not {"d", "p", "q", "dp", "dq", "qi", "key_ops"} & set(jwk)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_private_key_round_trips_through_the_kek_and_signs(alg):
    kek = Kek(new_key())
    key = generate(alg)
    wrapped_dek, ciphertext = wrap_private(kek, "kid-1", key)
    restored = unwrap_private(kek, "kid-1", wrapped_dek, ciphertext)
    token = sign_jwt(restored, "kid-1", alg, {"sub": "usr_1"}, typ="at+jwt")
    verifier = jwt.PyJWK(public_jwk(key, "kid-1", alg))
    assert jwt.decode(token, verifier.key, algorithms=[alg]) == {"sub": "usr_1"}
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": "kid-1", "typ": "at+jwt"}


def test_wrapped_key_does_not_open_under_another_kid():
    kek = Kek(new_key())
    wrapped_dek, ciphertext = wrap_private(kek, "kid-1", generate("EdDSA"))
    with pytest.raises(InvalidTag):
        unwrap_private(kek, "kid-2", wrapped_dek, ciphertext)


def test_tokens_without_typ_carry_no_typ_header():
    token = sign_jwt(generate("ES256"), "kid-1", "ES256", {"sub": "usr_1"})
    assert "typ" not in jwt.get_unverified_header(token)
