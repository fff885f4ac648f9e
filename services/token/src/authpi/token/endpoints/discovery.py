"""Discovery (idp-api.md 3, 13.4): the OpenID Provider metadata (OpenID Connect Discovery 1.0
section 3), which is also the OAuth authorization-server metadata (RFC 8414 section 2), built from
the in-memory key cache. The issuer URL every endpoint and token names is AUTHPI_IDP_URL plus the
issuer id (idp-api.md 1.2)."""

from __future__ import annotations

import msgspec

from authpi.errors import NotFound
from authpi.token.caches.issuer_keys import IssuerKeys, KeyCache

DISCOVERY_CACHE = "public, max-age=3600"
HEADERS = {"Cache-Control": DISCOVERY_CACHE, "Access-Control-Allow-Origin": "*"}
BASE_SCOPES = ["openid", "profile", "email", "phone", "address", "offline_access"]
CLAIMS = [
    "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "jti",
    "name", "given_name", "family_name", "picture", "locale",
    "email", "email_verified", "phone_number", "phone_number_verified", "address",
    "organizations", "org_id",
]  # fmt: skip


class OpenIDConfiguration(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    introspection_endpoint: str
    revocation_endpoint: str
    end_session_endpoint: str
    check_session_iframe: str
    response_types_supported: list[str]
    response_modes_supported: list[str]
    grant_types_supported: list[str]
    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    introspection_endpoint_auth_methods_supported: list[str]
    revocation_endpoint_auth_methods_supported: list[str]
    code_challenge_methods_supported: list[str]
    scopes_supported: list[str]
    claims_supported: list[str]
    prompt_values_supported: list[str]
    claims_parameter_supported: bool
    request_parameter_supported: bool
    request_uri_parameter_supported: bool
    frontchannel_logout_supported: bool
    frontchannel_logout_session_supported: bool
    backchannel_logout_supported: bool
    backchannel_logout_session_supported: bool
    authorization_response_iss_parameter_supported: bool


def issuer_url(configured_base: str, issuer_id: str) -> str:
    """AUTHPI_IDP_URL + /{issuer_id}, no trailing slash (idp-api.md 1.2)."""
    return f"{configured_base.rstrip('/')}/{issuer_id}"


def known_issuer(cache: KeyCache, issuer_id: str) -> IssuerKeys:
    entry = cache.get(issuer_id)
    if entry is None:
        raise NotFound(f"unknown issuer {issuer_id!r}", reason="token.unknown_issuer")
    return entry


def discovery_document(issuer: str, entry: IssuerKeys) -> OpenIDConfiguration:
    scopes = BASE_SCOPES + [s for s in entry.available_scopes if s not in BASE_SCOPES]
    return OpenIDConfiguration(
        issuer=issuer,
        authorization_endpoint=f"{issuer}/authorize",
        token_endpoint=f"{issuer}/token",
        userinfo_endpoint=f"{issuer}/userinfo",
        jwks_uri=f"{issuer}/jwks.json",
        introspection_endpoint=f"{issuer}/introspect",
        revocation_endpoint=f"{issuer}/revoke",
        end_session_endpoint=f"{issuer}/logout",
        check_session_iframe=f"{issuer}/check-session.html",
        response_types_supported=["code"],
        response_modes_supported=["query"],
        grant_types_supported=["authorization_code", "refresh_token", "client_credentials"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=list(entry.signing_algs),
        token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post", "none"],
        introspection_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
        revocation_endpoint_auth_methods_supported=[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        code_challenge_methods_supported=["S256"],
        scopes_supported=scopes,
        claims_supported=list(CLAIMS),
        prompt_values_supported=["none", "login", "consent", "select_account"],
        claims_parameter_supported=False,
        request_parameter_supported=False,
        request_uri_parameter_supported=False,
        # Not implemented: RP-initiated logout ends the sessions, no channel notifies clients.
        frontchannel_logout_supported=False,
        frontchannel_logout_session_supported=False,
        backchannel_logout_supported=False,
        backchannel_logout_session_supported=False,
        authorization_response_iss_parameter_supported=False,
    )


def metadata(cache: KeyCache, configured_base: str, issuer_id: str) -> OpenIDConfiguration:
    """The metadata document of a known issuer (any status), or NotFound."""
    entry = known_issuer(cache, issuer_id)
    return discovery_document(issuer_url(configured_base, issuer_id), entry)
