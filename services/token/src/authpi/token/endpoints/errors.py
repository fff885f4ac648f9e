"""The OAuth errors the IdP endpoints raise, one class per RFC 6749 section 5.2 (or AuthPI) error
code. The api/ layer renders any of them as `{error, error_description}` (authpi.web.oauth)."""

from __future__ import annotations

from authpi.web.oauth import OAuthError

THROTTLED = "too many failed authentication attempts; retry later"


class InvalidRequest(OAuthError):
    def __init__(self, description: str, *, status: int = 400) -> None:
        super().__init__("invalid_request", description, status=status)


class InvalidContentType(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_content_type", description, status=415)


class InvalidClient(OAuthError):
    """401; `basic`: the client tried HTTP Basic, so the challenge is Basic too."""

    def __init__(
        self, description: str = "Client authentication failed", *, basic: bool = False
    ) -> None:
        super().__init__("invalid_client", description, status=401, basic=basic)


class Throttled(OAuthError):
    """429 with Retry-After: the (client, source) pair is in backoff (idp-api.md 1.5)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate_limited", THROTTLED, status=429, retry_after=retry_after)


class UnauthorizedClient(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("unauthorized_client", description)


class UnsupportedGrantType(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("unsupported_grant_type", description)


class InvalidGrant(OAuthError):
    """RFC 6749 section 5.2: a code or refresh token that is invalid, expired, revoked, used,
    or issued to another client or redirect URI."""

    def __init__(self, description: str) -> None:
        super().__init__("invalid_grant", description)


class InvalidToken(OAuthError):
    """RFC 6750 section 3.1: a Bearer token that is missing, malformed, expired or revoked."""

    def __init__(self, description: str = "the access token is invalid") -> None:
        super().__init__("invalid_token", description, status=401)


class InsufficientScope(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("insufficient_scope", description, status=403)


class InvalidScope(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("invalid_scope", description)


class InvalidTarget(OAuthError):
    """RFC 8707 section 2: a `resource` the server will not issue a token for."""

    def __init__(self, description: str) -> None:
        super().__init__("invalid_target", description)


class TemporarilyUnavailable(OAuthError):
    def __init__(self, description: str) -> None:
        super().__init__("temporarily_unavailable", description, status=503)


class UnknownIssuer(OAuthError):
    def __init__(self) -> None:
        super().__init__("not_found", "unknown issuer", status=404)


class ServerError(OAuthError):
    def __init__(self) -> None:
        super().__init__("server_error", "unexpected error", status=500)
