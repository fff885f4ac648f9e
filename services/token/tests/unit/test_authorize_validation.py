"""/authorize validation (idp-api.md 4.2, 12.1, 12.2): the order of the checks, which errors are
pages and which redirect, PKCE S256 only, exact redirect URIs with the RFC 8252 loopback port
relaxation."""

from __future__ import annotations

import msgspec
import pytest

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.authorize import (
    RedirectError,
    client_and_redirect,
    error_redirect,
    needs_login,
    redirect_uri_matches,
    validate,
)
from authpi.token.endpoints.flow import ErrorPage, OpSession
from authpi.token.endpoints.params import Form
from authpi.token.reactions.clients import ClientEntry

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
ISSUER = IssuerKeys(
    issuer_id="i_1", account_id="acc_1", status="active", available_scopes=["invoices:read"],
    access_token_ttl=1800, refresh_token_ttl=604800, id_token_ttl=1800, signing_algs=["ES256"],
    default_alg="ES256", jwks=b"{}", jwks_etag="x", signers={},
)  # fmt: skip
SPA = ClientEntry(
    id="c_spa", issuer_id="i_1", account_id="acc_1", status="active", confidential=False,
    grant_types=frozenset({"authorization_code", "refresh_token"}),
    scopes=("openid", "profile", "email"), audiences=("https://api.example.com",),
    access_token_ttl=1800, alg="ES256", secret_sha256=None, version=1, name="SPA",
    redirect_uris=("https://app.example.com/callback", "http://127.0.0.1/cb"),
)  # fmt: skip
WEB = msgspec.structs.replace(SPA, id="c_web", confidential=True, secret_sha256="d")


def form(**values: str | list[str]) -> Form:
    return Form({k: v if isinstance(v, list) else [v] for k, v in values.items()})


def good(**overrides: str | list[str]) -> Form:
    base: dict[str, str | list[str]] = {
        "client_id": "c_spa", "redirect_uri": "https://app.example.com/callback",
        "response_type": "code", "scope": "openid profile", "state": "st",
        "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    }  # fmt: skip
    base.update(overrides)
    return form(**{k: v for k, v in base.items() if v != "-"})


def lookup(client_id: str) -> ClientEntry | None:
    return {"c_spa": SPA, "c_web": WEB}.get(client_id)


def run(f: Form):
    client, redirect_uri = client_and_redirect("i_1", f, lookup)
    return validate(ISSUER, client, redirect_uri, f)


def test_a_good_request_validates():
    req = run(good(nonce="n1", resource="https://api.example.com", org="org_abc"))
    assert req.scopes == ["openid", "profile"]
    assert (req.state, req.nonce, req.org) == ("st", "n1", "org_abc")
    assert req.resources == ["https://api.example.com"]
    assert req.code_challenge == CHALLENGE


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "-"},
        {"client_id": "c_unknown"},
        {"redirect_uri": "https://app.example.com/callbacK"},
        {"redirect_uri": "https://app.example.com/callback/"},
        {"redirect_uri": "https://app.example.com/callback#x"},
        {"redirect_uri": "https://evil@app.example.com/callback"},
        {"redirect_uri": "-"},  # two registered URIs: it must be given
        {"client_id": ["c_spa", "c_spa"]},
    ],
)
def test_client_and_redirect_errors_are_pages_never_redirects(overrides):
    with pytest.raises(ErrorPage) as caught:
        run(good(**overrides, response_type="token"))  # a later error does not win
    assert caught.value.status == 400


def test_a_client_of_another_issuer_is_unknown():
    with pytest.raises(ErrorPage):
        client_and_redirect("i_2", good(), lookup)


def test_the_single_registered_uri_is_used_when_none_is_given():
    single = msgspec.structs.replace(SPA, redirect_uris=("https://only.example.com/cb",))
    f = good(redirect_uri="-")
    client, uri = client_and_redirect("i_1", f, lambda _: single)
    assert uri == "https://only.example.com/cb"
    assert validate(ISSUER, client, uri, f).redirect_uri_given is False
    assert run(good()).redirect_uri_given is True


def test_loopback_port_relaxation_rfc8252():
    assert redirect_uri_matches(SPA.redirect_uris, "http://127.0.0.1:53012/cb")
    assert not redirect_uri_matches(SPA.redirect_uris, "http://127.0.0.1:53012/cb2")
    assert not redirect_uri_matches(SPA.redirect_uris, "https://127.0.0.1:53012/cb")
    assert not redirect_uri_matches(
        ("https://app.example.com/cb",), "https://app.example.com:444/cb"
    )


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "-"}, "unsupported_response_type"),
        ({"code_challenge": "-", "code_challenge_method": "-"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": "-"}, "invalid_request"),  # absent means plain
        ({"code_challenge": "short"}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"org": "acme"}, "access_denied"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "-5"}, "invalid_request"),
        ({"resource": "https://other.example.com"}, "invalid_target"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"state": ["a", "b"]}, "invalid_request"),
    ],
)
def test_later_errors_redirect(overrides, error):
    with pytest.raises(RedirectError) as caught:
        run(good(**overrides))
    assert caught.value.error == error


def test_order_response_type_before_pkce_before_scope():
    with pytest.raises(RedirectError) as caught:
        run(good(response_type="token", code_challenge="-", scope="admin"))
    assert caught.value.error == "unsupported_response_type"
    with pytest.raises(RedirectError) as caught:
        run(good(code_challenge_method="plain", scope="admin"))
    assert caught.value.error == "invalid_request"


def test_grant_not_enabled_is_unauthorized_client():
    no_code = msgspec.structs.replace(SPA, grant_types=frozenset({"client_credentials"}))
    f = good()
    with pytest.raises(RedirectError) as caught:
        validate(ISSUER, no_code, "https://app.example.com/callback", f)
    assert caught.value.error == "unauthorized_client"


def test_confidential_client_may_skip_pkce_but_never_plain():
    req = run(good(client_id="c_web", code_challenge="-", code_challenge_method="-"))
    assert req.code_challenge is None
    with pytest.raises(RedirectError):
        run(good(client_id="c_web", code_challenge_method="plain"))


def test_error_redirect_echoes_state_and_keeps_the_registered_query():
    url = error_redirect("https://app.example.com/cb?x=1", "access_denied", "no", "s 1")
    assert (
        url == "https://app.example.com/cb?x=1&error=access_denied&error_description=no&state=s+1"
    )
    assert "state" not in error_redirect("https://a.example/cb", "e", "d", None)


def test_needs_login():
    s = OpSession(
        id="s_1", issuer_id="i_1", account_id="acc_1", user_id="usr_1", auth_time=1_000_000,
        auth_method="password", browser_state="b", expires_at=10**13,
    )  # fmt: skip
    assert needs_login(None, [], None, 2_000_000)
    assert needs_login(s, ["login"], None, 2_000_000)
    assert not needs_login(s, [], None, 2_000_000)
    assert not needs_login(s, [], 1000, 2_000_000)
    assert needs_login(s, [], 999, 2_000_000)
