"""The revocation endpoint (RFC 7009 sections 2.1, 2.2; idp-api.md 7): a client revokes one of
its own tokens (a confidential client by its secret, a public one by its id: idp-api.md 5.2).
Revoking a refresh token ends its whole rotation family; an access token goes on the deny-list.
The answer is a success whatever the token was (unknown, another client's, already revoked), so
it tells nothing about other tokens."""

from __future__ import annotations

from typing import Any

from authpi.contracts.base import Actor, Meta
from authpi.crypto.clock import Clock
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.domain.commands import RevokeToken
from authpi.token.endpoints.client_auth import ClientAuthenticator, presented_credentials
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.params import Form
from authpi.token.handlers.refresh_families import FamilyRevocations
from authpi.token.handlers.revoked_tokens import Revocations
from authpi.token.reactions.clients import ClientEntry
from authpi.token.signing.verifier import TokenVerifier, public_claims


class RevocationEndpoint:
    def __init__(
        self,
        auth: ClientAuthenticator,
        verifier: TokenVerifier,
        revocations: Revocations,
        clock: Clock,
        families: FamilyRevocations | None = None,
    ) -> None:
        self.auth = auth
        self.verifier = verifier
        self.revocations = revocations
        self.clock = clock
        self.families = families

    async def answer(self, issuer: IssuerKeys, form: Form) -> None:
        creds = presented_credentials(form)
        client = await (
            self.auth.client(issuer.issuer_id, creds)
            if self.families is not None
            else self.auth.confidential(issuer.issuer_id, creds)
        )
        token = form.get("token")
        if not token:
            raise InvalidRequest("token is required")
        decoded = self.verifier.decode(issuer, token)
        claims = public_claims(*decoded) if decoded is not None else None
        if claims is None or claims.get("client_id") != client.id:
            return
        fid = decoded[1].get("fid") if decoded is not None else None
        if claims["token_type"] == "refresh_token" and self.families and isinstance(fid, str):
            # idp-api.md 7.2: revoking a refresh token ends its whole rotation family.
            await self.families.revoke(
                issuer_id=issuer.issuer_id, family_id=fid, client_id=client.id,
                reason="revoked", now=self.clock.now_ms(), meta=_meta(issuer, client),
            )  # fmt: skip
            return
        if claims["token_type"] == "id_token":
            return
        await self.revocations.revoke(self._command(issuer, client, claims), _meta(issuer, client))

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
