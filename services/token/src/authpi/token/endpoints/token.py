"""The token endpoint (RFC 6749 section 3.2; idp-api.md 5): checks `grant_type` (section 4.4.2,
section 5.2 `unsupported_grant_type`), authenticates the client (section 2.3.1) and hands the
request to its grant. Agents (`agt_` ids) use client_credentials with a secret verifier
(idp-api.md 5.5). The user grants (authorization_code, refresh_token) accept public clients by
their id alone (PKCE binds their codes) and confidential clients by their secret."""

from __future__ import annotations

import msgspec

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.client_auth import ClientAuthenticator, presented_credentials
from authpi.token.endpoints.errors import InvalidRequest, UnsupportedGrantType
from authpi.token.endpoints.params import Form
from authpi.token.grants.authorization_code import AuthorizationCodeGrant
from authpi.token.grants.client_credentials import ClientCredentialsGrant
from authpi.token.grants.refresh_token import RefreshTokenGrant

AGENT_PREFIX = "agt_"
GRANTS = frozenset({"client_credentials", "authorization_code", "refresh_token"})


def grant_type(form: Form) -> str:
    grant = form.get("grant_type")
    if grant is None:
        raise InvalidRequest("grant_type is required")
    if grant in GRANTS:
        return grant
    raise UnsupportedGrantType("unsupported grant_type")


class TokenEndpoint:
    def __init__(
        self,
        auth: ClientAuthenticator,
        client_credentials: ClientCredentialsGrant,
        authorization_code: AuthorizationCodeGrant | None = None,
        refresh_token: RefreshTokenGrant | None = None,
    ):
        self.auth = auth
        self.client_credentials = client_credentials
        self.authorization_code = authorization_code
        self.refresh_token = refresh_token

    async def answer(self, issuer: IssuerKeys, form: Form) -> msgspec.Struct:
        grant = grant_type(form)
        creds = presented_credentials(form)
        if grant == "client_credentials":
            if creds.client_id.startswith(AGENT_PREFIX):
                agent, verifier_id = await self.auth.agent(issuer.issuer_id, creds)
                return self.client_credentials.issue_agent(issuer, agent, verifier_id, form)
            client = await self.auth.confidential(issuer.issuer_id, creds)
            return self.client_credentials.issue(issuer, client, form)
        user_grant = (
            self.authorization_code if grant == "authorization_code" else self.refresh_token
        )
        if user_grant is None:
            raise UnsupportedGrantType(f"{grant} is not available on this server")
        client = await self.auth.client(issuer.issuer_id, creds)
        return await user_grant.issue(issuer, client, form)
