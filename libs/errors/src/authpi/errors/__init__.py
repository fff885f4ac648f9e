"""The AuthpiError hierarchy: each subclass fixes the public `error` code and HTTP status (spec
core-api.md 2.1). No web-framework imports here; libs/web renders these."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class FieldProblem(msgspec.Struct, frozen=True):
    field: str
    code: str
    message: str


class AuthpiError(Exception):
    error: str = "server_error"
    status: int = 500
    retryable: bool = False

    def __init__(
        self,
        description: str,
        *,
        reason: str = "",
        fields: Sequence[FieldProblem] = (),
        current_etag: str | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.reason = reason or self.error
        self.fields = list(fields)
        self.current_etag = current_etag
        self.retry_after = retry_after
        self.headers = headers or {}


class InvalidRequest(AuthpiError):
    error, status = "invalid_request", 400


class Unprocessable(AuthpiError):
    error, status = "invalid_request", 422


class InvalidContentType(AuthpiError):
    error, status = "invalid_content_type", 415


class Unauthorized(AuthpiError):
    error, status = "unauthorized_client", 401


class InvalidToken(AuthpiError):
    error, status = "invalid_token", 401


class AccessDenied(AuthpiError):
    error, status = "access_denied", 403


class InsufficientScope(AuthpiError):
    error, status = "insufficient_scope", 403


class NotFound(AuthpiError):
    error, status = "not_found", 404


class MethodNotAllowed(AuthpiError):
    error, status = "method_not_allowed", 405


class Conflict(AuthpiError):
    error, status = "conflict", 409


class PaymentRequired(AuthpiError):
    """402 (platform.md 5.6): a write of a gated account out of prepaid credit, or a payment that
    failed. The body is an AuthPI error and, with `accepts`, an x402 v1 challenge; the v2
    challenge travels in the `PAYMENT-REQUIRED` header (in `headers`)."""

    error, status, retryable = "payment_required", 402, True

    def __init__(
        self,
        description: str,
        *,
        reason: str = "",
        x402_version: int | None = None,
        accepts: list[dict[str, object]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description, reason=reason, headers=headers)
        self.x402_version = x402_version
        self.accepts = accepts


class PreconditionFailed(AuthpiError):
    error, status = "precondition_failed", 412


class PayloadTooLarge(AuthpiError):
    error, status = "payload_too_large", 413


class RateLimited(AuthpiError):
    error, status, retryable = "rate_limited", 429, True


class ServerError(AuthpiError):
    error, status = "server_error", 500


class TemporarilyUnavailable(AuthpiError):
    error, status, retryable = "temporarily_unavailable", 503, True


class VersionConflict(Exception):
    """Optimistic-concurrency miss on append; handlers retry, then raise Conflict."""

    def __init__(self, stream_id: str, expected: int) -> None:
        super().__init__(f"stream {stream_id} is not at version {expected}")
        self.stream_id = stream_id
        self.expected = expected
