"""Pure rules of the user grants: PKCE S256 checks (RFC 7636), at_hash (OIDC Core 3.1.3.6),
session_state (OIDC Session Management), the op session cookie, scope narrowing, the audience
of a refresh, and the refresh token's lifetime cap (idp-api.md 14 #33)."""

from __future__ import annotations

import base64
import hashlib

import msgspec
import pytest

from authpi.token.endpoints.errors import InvalidGrant, InvalidScope, InvalidTarget
from authpi.token.endpoints.flow import cookie_header, session_state
from authpi.token.endpoints.params import Form
from authpi.token.grants.authorization_code import VERIFIER, _check_pkce, s256, token_audience
from authpi.token.grants.id_token import at_hash, refresh_exp
from authpi.token.grants.refresh_token import narrowed
from authpi.token.reactions.clients import ClientEntry

VERIFIER_43 = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r7WOEjz9e1mCmG"
CHALLENGE_43 = "ll1OFtjgEfu2ShxozUYuMFwnVg3JirxE5Ki2Iotw9Fs"


def test_s256_is_unpadded_base64url_of_sha256():
    assert s256(VERIFIER_43) == CHALLENGE_43


def test_pkce_checks():
    _check_pkce(CHALLENGE_43, VERIFIER_43)
    _check_pkce(None, None)  # a confidential client that sent no challenge
    with pytest.raises(InvalidGrant):
        _check_pkce(CHALLENGE_43, None)  # a challenge was stored: the verifier is mandatory
    with pytest.raises(InvalidGrant):
        _check_pkce(CHALLENGE_43, VERIFIER_43[:-1] + "H")
    with pytest.raises(InvalidGrant):
        _check_pkce(None, VERIFIER_43)  # a verifier without a challenge
    with pytest.raises(InvalidGrant):
        _check_pkce(CHALLENGE_43, CHALLENGE_43)  # `plain`: the challenge itself


def test_verifier_syntax():
    assert VERIFIER.fullmatch(VERIFIER_43)
    assert not VERIFIER.fullmatch(VERIFIER_43[:42])
    assert not VERIFIER.fullmatch("a" * 129)
    assert not VERIFIER.fullmatch(VERIFIER_43[:42] + "+")


def test_at_hash_left_half_of_the_algorithms_hash():
    token = "eyJhbGciOi.payload.sig"
    sha256 = hashlib.sha256(token.encode()).digest()[:16]
    sha512 = hashlib.sha512(token.encode()).digest()[:32]
    assert at_hash(token, "ES256") == base64.urlsafe_b64encode(sha256).rstrip(b"=").decode()
    assert at_hash(token, "RS256") == at_hash(token, "ES256")
    assert at_hash(token, "EdDSA") == base64.urlsafe_b64encode(sha512).rstrip(b"=").decode()


def test_session_state_formula():
    state = session_state("c_1", "https://app.example.com/cb?x=1", "browser", "salt")
    digest = hashlib.sha256(b"c_1 https://app.example.com browser salt").digest()
    assert state == base64.urlsafe_b64encode(digest).rstrip(b"=").decode() + ".salt"
    assert state != session_state("c_1", "https://app.example.com/cb", "other", "salt")


def test_cookie_attributes():
    secure = cookie_header("https://idp.example.com", "i_1", "s_1.secret")
    assert secure == "authpi_session=s_1.secret; Path=/i_1; HttpOnly; SameSite=Lax; Secure"
    local = cookie_header("http://127.0.0.1:8080", "i_1", "v")
    assert "Secure" not in local and "Path=/i_1" in local
    assert "Secure" in cookie_header("http://idp.example.com", "i_1", "v")
    cleared = cookie_header("https://idp.example.com/base", "i_1", None)
    assert cleared.startswith("authpi_session=;") and "Path=/base/i_1" in cleared
    assert cleared.endswith("Max-Age=0")


def test_scope_narrowing_never_widens():
    grant = ["openid", "profile", "email"]
    assert narrowed(None, grant) == grant
    assert narrowed("openid email", grant) == ["openid", "email"]
    with pytest.raises(InvalidScope):
        narrowed("openid phone", grant)


def test_refresh_audience_is_one_granted_resource():
    granted = ["https://a.example", "https://b.example"]
    assert token_audience(Form({}), granted, "c_1") == "https://a.example"
    assert token_audience(Form({}), [], "c_1") == "c_1"
    assert token_audience(Form({"resource": ["https://b.example"]}), granted, "c_1") == (
        "https://b.example"
    )
    with pytest.raises(InvalidTarget):
        token_audience(Form({"resource": ["https://c.example"]}), granted, "c_1")
    with pytest.raises(InvalidTarget):
        token_audience(Form({"resource": granted}), granted, "c_1")


def test_refresh_exp_is_capped_by_21_days_and_the_session():
    client = ClientEntry(
        id="c_1", issuer_id="i_1", account_id="acc_1", status="active", confidential=False,
        grant_types=frozenset(), scopes=(), audiences=(), access_token_ttl=1800, alg="ES256",
        secret_sha256=None, version=1, refresh_token_ttl=7 * 86400,
    )  # fmt: skip
    far = 10**12
    assert refresh_exp(client, 1000, far) == 1000 + 7 * 86400
    long = msgspec.structs.replace(client, refresh_token_ttl=365 * 86400)
    assert refresh_exp(long, 1000, far) == 1000 + 21 * 86400
    assert refresh_exp(client, 1000, 5_000_000) == 5000  # the session ends first
