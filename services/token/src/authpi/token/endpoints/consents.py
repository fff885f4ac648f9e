"""Consent withdrawal (idp-api.md 9, 14 #18): `DELETE /{issuer_id}/consents/{client_id}` with a
Bearer access token of this issuer; the user is the token's `sub`. Revokes every consent of that
user for the client (`user.consent.revoked`) and that user's refresh-token families for the
client, so nothing renews silently; the next authorization asks for consent again. Idempotent:
200 `{"revoked": true}` also when there was nothing to revoke."""

from __future__ import annotations

from authpi.contracts.base import Actor, Meta
from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.endpoints.userinfo import BearerCheck, bearer
from authpi.token.handlers.consents import Consents


class ConsentsEndpoint:
    def __init__(self, check: BearerCheck, consents: Consents) -> None:
        self.check = check
        self.consents = consents

    async def revoke(
        self, issuer: IssuerKeys, client_id: str, authorization: str | None
    ) -> dict[str, bool]:
        claims, user = await self.check.user_token(issuer, bearer(authorization))
        meta = Meta(
            account_id=issuer.account_id,
            issuer_id=issuer.issuer_id,
            actor=Actor(type="user", user_id=user.id, client_id=str(claims.get("client_id"))),
            trigger="idp",
            subject={"user_id": user.id},
        )
        await self.consents.revoke(
            issuer_id=issuer.issuer_id, user_id=user.id, client_id=client_id, meta=meta
        )
        return {"revoked": True}
