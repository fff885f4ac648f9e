"""The introspection endpoint (RFC 7662 sections 2.1, 2.2; idp-api.md 7): a confidential client
learns whether one of its own tokens is active, and its claims. A token of another client, one
that does not verify, has expired or was revoked is `{"active": false}` and nothing else."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from authpi.token.caches.issuer_keys import IssuerKeys
from authpi.token.caches.revoked_tokens import DenyList
from authpi.token.endpoints.client_auth import ClientAuthenticator, presented_credentials
from authpi.token.endpoints.errors import InvalidRequest
from authpi.token.endpoints.params import Form
from authpi.token.signing.verifier import TokenVerifier

_encode = msgspec.json.Encoder().encode
Unset = msgspec.UnsetType
UNSET = msgspec.UNSET


class Introspection(msgspec.Struct, frozen=True, kw_only=True):
    """RFC 7662 section 2.2; a claim the token does not carry is left out."""

    active: bool
    iss: str | Unset = UNSET
    sub: str | Unset = UNSET
    aud: str | list[str] | Unset = UNSET
    exp: int | Unset = UNSET
    iat: int | Unset = UNSET
    jti: str | Unset = UNSET
    client_id: str | Unset = UNSET
    scope: str | Unset = UNSET
    sid: str | Unset = UNSET
    org_id: str | Unset = UNSET
    token_type: str | Unset = UNSET
    organizations: Any = UNSET


INACTIVE = Introspection(active=False)


class LiveState(Protocol):
    """Whether a user token's session (and, for a refresh token, its family) still holds."""

    async def refresh_live(self, family_id: str, jti: str) -> bool: ...

    async def session_live(self, session_id: str) -> bool: ...


class IntrospectionEndpoint:
    def __init__(
        self,
        auth: ClientAuthenticator,
        verifier: TokenVerifier,
        revoked: DenyList,
        live: LiveState | None = None,
    ) -> None:
        self.auth = auth
        self.verifier = verifier
        self.revoked = revoked
        self.live = live

    async def answer(self, issuer: IssuerKeys, form: Form) -> Introspection | bytes:
        """The answer; an active one as its encoded bytes, kept with the verified token."""
        client = await self.auth.confidential(issuer.issuer_id, presented_credentials(form))
        token = form.get("token")
        if not token:
            raise InvalidRequest("token is required")
        verified = self.verifier.verified(issuer, token)
        if verified is None:
            return INACTIVE
        claims = verified.public
        if claims.get("client_id") != client.id or claims["token_type"] == "id_token":
            return INACTIVE
        if self.revoked.revoked(str(claims.get("jti", ""))):
            return INACTIVE
        sid = claims.get("sid")
        if self.live is not None and isinstance(sid, str):
            # idp-api.md 14 #25: a token of a revoked, suspended or lapsed session is inactive;
            # a refresh token also once rotated or its family ended.
            if claims["token_type"] == "refresh_token":
                fid = verified.claims.get("fid")
                if not await self.live.refresh_live(str(fid), str(claims.get("jti"))):
                    return INACTIVE
            if not await self.live.session_live(sid):
                return INACTIVE
        if verified.answer is None:
            verified.answer = _encode(Introspection(active=True, **claims))
        return verified.answer
