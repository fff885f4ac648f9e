"""Grants the token endpoint answers. `client_credentials` (idp-api.md 5.5, 11.2, 11.5, 11.7):
everything comes from memory (issuer keys, the client cache); the only side effect is a fact
added to the in-process batch.

Claims: iss, sub (= client id), aud, exp, iat, auth_time (= iat), jti (18 characters), client_id
and scope. No `sid` (no session). No `dat` for a plain client: the spec defines `dat.type` only
for user, agent, key and personal-token subjects and recommends leaving it out for `c_` clients
(idp-api.md 14 #10); resource servers key on the `c_` prefix of `sub`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from authpi.contracts.facts import MachineTokenIssued
from authpi.crypto.clock import Clock
from authpi.crypto.ids import base62_secret
from authpi.token.agents import AGENT_TOKEN_TTL, AgentEntry
from authpi.token.api.discovery import issuer_url
from authpi.token.cache import IssuerKeys
from authpi.token.clients import ClientEntry
from authpi.token.facts import FactPublisher
from authpi.token.keys import sign_jwt
from authpi.token.oauth import Form
from authpi.token.rotation import MAX_TOKEN_TTL_S
from authpi.web.oauth import OAuthError

MAX_SCOPES = 256


def new_jti() -> str:
    """18 random base62 characters (13 bytes: 104 bits)."""
    return base62_secret(13)


def requested_scopes(form: Form, allowed: tuple[str, ...]) -> list[str]:
    """The requested scopes, all within `allowed`; the whole allowed set when none is asked."""
    raw = form.get("scope")
    if raw is None:
        return list(allowed)
    wanted = list(dict.fromkeys(raw.split()))
    if len(wanted) > MAX_SCOPES:
        raise OAuthError("invalid_scope", f"at most {MAX_SCOPES} scopes may be requested")
    permitted = set(allowed)
    extra = [s for s in wanted if s not in permitted]
    if extra:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {extra[0]}")
    return wanted


def audience(form: Form, client_id: str, allowed: tuple[str, ...]) -> str:
    """RFC 8707 `resource` -> `aud`, else the client id (idp-api.md 11.5, 14 #9)."""
    resources = form.all("resource")
    if not resources:
        return client_id
    if len(resources) > 1:
        raise OAuthError("invalid_target", "request one resource per token")
    resource = resources[0]
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc or parts.fragment or len(resource) > 2048:
        raise OAuthError("invalid_target", "resource must be an absolute URI without a fragment")
    if allowed and resource not in allowed:
        raise OAuthError("invalid_target", "resource not allowed for this client")
    return resource


class ClientCredentialsGrant:
    def __init__(self, idp_base: str, clock: Clock, facts: FactPublisher) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.facts = facts

    def issue(self, issuer: IssuerKeys, client: ClientEntry, form: Form) -> dict[str, Any]:
        if "client_credentials" not in client.grant_types:
            raise OAuthError(
                "unauthorized_client", "the client_credentials grant is not enabled for this client"
            )
        return self._mint(
            issuer,
            subject=client.id,
            account_id=client.account_id,
            scopes=requested_scopes(form, client.scopes),
            aud=audience(form, client.id, client.audiences),
            alg=client.alg,
            ttl=min(client.access_token_ttl, MAX_TOKEN_TTL_S),
        )

    def issue_agent(
        self, issuer: IssuerKeys, agent: AgentEntry, verifier_id: str, form: Form
    ) -> dict[str, Any]:
        """Agent tokens (idp-api.md 5.5): exactly 300 s, scopes within the agent's, `dat.type`
        agent, the issuer's default algorithm, never a refresh or ID token."""
        return self._mint(
            issuer,
            subject=agent.id,
            account_id=agent.account_id,
            scopes=requested_scopes(form, agent.scopes),
            aud=audience(form, agent.id, ()),
            alg=issuer.default_alg,
            ttl=AGENT_TOKEN_TTL,
            agent=True,
            verifier_id=verifier_id,
        )

    def _mint(
        self,
        issuer: IssuerKeys,
        *,
        subject: str,
        account_id: str,
        scopes: list[str],
        aud: str,
        alg: str,
        ttl: int,
        agent: bool = False,
        verifier_id: str | None = None,
    ) -> dict[str, Any]:
        signer = issuer.signers.get(alg) or issuer.signers.get(issuer.default_alg)
        if signer is None:
            raise OAuthError(
                "temporarily_unavailable", "no signing key for this client yet", status=503
            )
        now_ms = self.clock.now_ms()
        iat = now_ms // 1000
        jti = new_jti()
        scope = " ".join(scopes)
        claims: dict[str, Any] = {
            "iss": issuer_url(self.idp_base, issuer.issuer_id),
            "sub": subject,
            "aud": aud,
            "exp": iat + ttl,
            "iat": iat,
            "auth_time": iat,
            "jti": jti,
            "client_id": subject,
            "scope": scope,
        }
        if agent:
            claims["dat"] = {"type": "agent"}
        token = sign_jwt(signer.key, signer.kid, signer.alg, claims, "at+jwt")
        self.facts.add(
            MachineTokenIssued(
                account_id=account_id,
                issuer_id=issuer.issuer_id,
                client_id=subject,
                agent_id=subject if agent else None,
                verifier_id=verifier_id,
                scope=scope,
                aud=aud,
                jti=jti,
                issued_at=now_ms,
                expires_at=(iat + ttl) * 1000,
                dat_type="agent" if agent else None,
            )
        )
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": ttl}
        if scope:
            body["scope"] = scope
        return body
