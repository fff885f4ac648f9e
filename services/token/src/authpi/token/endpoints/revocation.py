"""The revocation endpoint (RFC 7009 sections 2.1, 2.2; idp-api.md 7): a confidential client
revokes one of its own tokens. The answer is a success whatever the token was (unknown, another
client's, already revoked), so it tells nothing about other tokens."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Actor, Meta
from authpi.crypto.clock import Clock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.domain.commands import RevokeToken
from authpi.token.endpoints.client_auth import ClientAuthenticator, presented_credentials
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.params import Form
from authpi.token.handlers.revoked_tokens import Revocations
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.verifier import TokenVerifier


class RevocationEndpoint:
    def __init__(
        self,
        auth: ClientAuthenticator,
        verifier: TokenVerifier,
        revocations: Revocations,
        clock: Clock,
    ) -> None:
        self.auth = auth
        self.verifier = verifier
        self.revocations = revocations
        self.clock = clock

    async def answer(self, issuer: IssuerKeys, form: Form) -> None:
        client = await self.auth.confidential(issuer.issuer_id, presented_credentials(form))
        token = form.get("token")
        if not token:
            raise InvalidRequest("token is required")
        claims = self.verifier.verify(issuer, token)
        if claims is not None and claims.get("client_id") == client.id:
            await self.revocations.revoke(
                self._command(issuer, client, claims), _meta(issuer, client)
            )

    def _command(
        self, issuer: IssuerKeys, client: ClientEntry, claims: dict[str, Any]
    ) -> RevokeToken:
        return RevokeToken(
            jti=str(claims["jti"]),
            issuer_id=issuer.issuer_id,
            client_id=client.id,
            token_type=str(claims["token_type"]),
            expires_at=int(claims["exp"]) * 1000,
            revoked_at=self.clock.now_ms(),
        )


def _meta(issuer: IssuerKeys, client: ClientEntry) -> Meta:
    return Meta(
        account_id=issuer.account_id,
        issuer_id=issuer.issuer_id,
        actor=Actor(type="client", client_id=client.id),
        trigger="idp",
    )
