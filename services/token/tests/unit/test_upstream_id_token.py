"""The checks of an organization's upstream ID token (OIDC Core 3.1.3.7), each refusal on its own:
algorithm, key, signature, issuer, audience and authorized party, time, nonce and subject."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authpi.token.endpoints.upstream_id_token import Expected, IdTokenRefused, check_id_token

NOW = 1_800_000_000
ISSUER = "https://idp.acme.test"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EXPECTED = Expected(
    issuer=ISSUER, client_id="authpi", nonce="n-0S6_WzA2Mj", now_s=NOW,
    algorithms=["RS256", "ES256"],
)  # fmt: skip


def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(key.public_key()))
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


KEYS = [jwk(RSA_KEY, "r1", "RS256"), jwk(EC_KEY, "e1", "ES256")]


def claims(**changes: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": "authpi", "sub": "248289761001", "nonce": EXPECTED.nonce,
            "iat": NOW - 5, "exp": NOW + 300, "email": "jo@acme.test"}  # fmt: skip
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def signed(payload: dict[str, Any], key: Any = RSA_KEY, alg: str = "RS256", kid: str = "r1") -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def refused(token: str) -> str:
    with pytest.raises(IdTokenRefused) as caught:
        check_id_token(token, KEYS, EXPECTED)
    return caught.value.reason


def test_a_good_token_by_either_key_passes():
    assert check_id_token(signed(claims()), KEYS, EXPECTED)["sub"] == "248289761001"
    ec_token = signed(claims(), EC_KEY, "ES256", "e1")
    assert check_id_token(ec_token, KEYS, EXPECTED)["email"] == "jo@acme.test"
    both = claims(aud=["authpi", "other"], azp="authpi")
    assert check_id_token(signed(both), KEYS, EXPECTED)["azp"] == "authpi"


def test_a_tampered_payload_fails_the_signature():
    header, _, signature = signed(claims()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims(sub="admin")).encode()).rstrip(b"=")
    assert refused(f"{header}.{forged.decode()}.{signature}") == "id_token.bad_signature"
    assert refused(signed(claims(), kid="e1")) == "id_token.unknown_key"  # RS256 under EC's id
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(signed(claims(), other)) == "id_token.bad_signature"
    assert refused(signed(claims(), kid="nope")) == "id_token.unknown_key"


def test_unsigned_symmetric_and_unadvertised_algorithms_are_refused():
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    assert refused(unsigned) == "id_token.algorithm"
    assert refused(jwt.encode(claims(), "the client secret" * 2, algorithm="HS256")) == (
        "id_token.algorithm"
    )
    ps = signed(claims(), RSA_KEY, "PS256")
    assert refused(ps) == "id_token.algorithm"  # a real signature, not advertised
    assert refused("not a jwt") == "id_token.malformed"


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"iss": "https://evil.test"}, "id_token.issuer"),
        ({"aud": "another-client"}, "id_token.audience"),
        ({"aud": ["authpi", "other"]}, "id_token.audience"),  # several audiences, no azp
        ({"azp": "other"}, "id_token.audience"),
        ({"exp": NOW - 61}, "id_token.expired"),
        ({"exp": None}, "id_token.expired"),
        ({"iat": NOW + 3600}, "id_token.issued_in_future"),
        ({"nbf": NOW + 3600}, "id_token.not_yet_valid"),
        ({"nonce": "another"}, "id_token.nonce"),
        ({"nonce": None}, "id_token.nonce"),
        ({"sub": ""}, "id_token.subject"),
    ],
)
def test_each_claim_check_refuses_on_its_own(changes: dict[str, Any], reason: str):
    assert refused(signed(claims(**changes))) == reason


def test_clock_skew_within_a_minute_is_tolerated():
    assert check_id_token(signed(claims(exp=NOW - 30, iat=NOW + 30)), KEYS, EXPECTED)
