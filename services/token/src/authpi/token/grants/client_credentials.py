"""The client_credentials grant (RFC 6749 section 4.4; idp-api.md 5.5, 11.2, 11.5, 11.7), for
confidential clients and for agents: everything comes from memory (issuer keys, the client and
agent caches); the only side effect is a fact added to the in-process batch.

Claims (RFC 9068): iss, sub (= client id), aud, exp, iat, auth_time (= iat), jti (18
characters), client_id and scope. No `sid` (no session). No `dat` for a plain client: the spec
defines `dat.type` only for user, agent, key and personal-token subjects and recommends leaving it
out for `c_` clients (idp-api.md 14 #10); resource servers key on the `c_` prefix of `sub`."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.facts import MachineTokenIssued
from authpi.crypto.clock import Clock
from authpi.token.adapters.facts import FactPublisher
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.domain.rotation import MAX_TOKEN_TTL_S
from authpi.token.endpoints.discovery import issuer_url
from authpi.token.endpoints.errors import TemporarilyUnavailable
from authpi.token.endpoints.params import Form
from authpi.token.grants.access_token import TokenResponse, new_jti
from authpi.token.grants.checks import audience, grant_enabled, requested_scopes
from authpi.token.reactions.agents import AGENT_TOKEN_TTL, AgentEntry
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.keys import sign_jwt

GRANT = "client_credentials"


class ClientCredentialsGrant:
    def __init__(self, idp_base: str, clock: Clock, facts: FactPublisher) -> None:
        self.idp_base = idp_base
        self.clock = clock
        self.facts = facts

    def issue(self, issuer: IssuerKeys, client: ClientEntry, form: Form) -> TokenResponse:
        grant_enabled(GRANT, client.grant_types)
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
    ) -> TokenResponse:
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
    ) -> TokenResponse:
        signer = issuer.signers.get(alg) or issuer.signers.get(issuer.default_alg)
        if signer is None:
            raise TemporarilyUnavailable("no signing key for this client yet")
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
        return TokenResponse(
            access_token=token,
            token_type="Bearer",
            expires_in=ttl,
            scope=scope if scope else msgspec.UNSET,
        )
