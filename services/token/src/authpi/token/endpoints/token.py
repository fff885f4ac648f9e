"""The token endpoint (RFC 6749 section 3.2; idp-api.md 5): checks `grant_type` (section 4.4.2,
section 5.2 `unsupported_grant_type`), authenticates the client (section 2.3.1) and hands the
request to its grant. Agents (`agt_` ids) use client_credentials with a secret verifier
(idp-api.md 5.5)."""

from __future__ import annotations

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.client_auth import ClientAuthenticator, presented_credentials
from authpi.token.endpoints.errors import InvalidRequest, UnsupportedGrantType
from authpi.token.endpoints.params import Form
from authpi.token.grants.access_token import TokenResponse
from authpi.token.grants.client_credentials import ClientCredentialsGrant

AGENT_PREFIX = "agt_"
GRANTS_LATER = frozenset({"authorization_code", "refresh_token"})


def grant_type(form: Form) -> str:
    grant = form.get("grant_type")
    if grant is None:
        raise InvalidRequest("grant_type is required")
    if grant == "client_credentials":
        return grant
    if grant in GRANTS_LATER:
        raise UnsupportedGrantType(f"{grant} is not available on this server yet")
    raise UnsupportedGrantType("unsupported grant_type")


class TokenEndpoint:
    def __init__(self, auth: ClientAuthenticator, client_credentials: ClientCredentialsGrant):
        self.auth = auth
        self.client_credentials = client_credentials

    async def answer(self, issuer: IssuerKeys, form: Form) -> TokenResponse:
        grant_type(form)
        creds = presented_credentials(form)
        if creds.client_id.startswith(AGENT_PREFIX):
            agent, verifier_id = await self.auth.agent(issuer.issuer_id, creds)
            return self.client_credentials.issue_agent(issuer, agent, verifier_id, form)
        client = await self.auth.confidential(issuer.issuer_id, creds)
        return self.client_credentials.issue(issuer, client, form)
