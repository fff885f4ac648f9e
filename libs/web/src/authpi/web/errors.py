"""One exception handler renders every error in the spec's body (core-api.md 2.1): `error`,
`error_description`, `retryable`, `reference` (the request id), plus typed extras."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import Send

from authpi.errors import AuthpiError, FieldProblem, PaymentRequired
from authpi.observability import REQUEST_ID, get_logger

log = get_logger("authpi.web")

_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthorized_client",
    403: "access_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "invalid_content_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "temporarily_unavailable",
}


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    error_description: str
    retryable: bool  # always present (spec 2.1), so no default for omit_defaults to drop
    reference: str | None = None
    fields: list[FieldProblem] | None = None
    current_etag: str | None = None
    currentETag: str | None = None
    retry_after: int | None = None
    # An x402 v1 challenge in a 402 body (platform.md 5.6).
    x402Version: int | None = None
    accepts: list[dict[str, Any]] | None = None


def render(request: Request[Any, Any, Any], exc: AuthpiError) -> Response[ErrorBody]:
    headers, body = _error_of(exc)
    return Response(body, status_code=exc.status, headers=headers, media_type=MediaType.JSON)


async def send_error(send: Send, exc: AuthpiError) -> None:
    """`exc` as the spec's error response, from plain ASGI code (before any router runs)."""
    headers, body = _error_of(exc)
    raw = msgspec.json.encode(body)
    pairs = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(raw))]
    pairs += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw, "more_body": False})


def _error_of(exc: AuthpiError) -> tuple[dict[str, str], ErrorBody]:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.current_etag is not None:
        headers["ETag"] = exc.current_etag
    body = ErrorBody(
        error=exc.error,
        error_description=exc.description,
        retryable=exc.retryable,
        reference=REQUEST_ID.get(),
        fields=exc.fields or None,
        current_etag=exc.current_etag,
        currentETag=exc.current_etag,
        retry_after=exc.retry_after,
    )
    if isinstance(exc, PaymentRequired):
        body.x402Version = exc.x402_version
        body.accepts = exc.accepts
    if exc.status >= 500:
        log.error("request.failed", reason=exc.reason)
    else:
        log.info("request.refused", reason=exc.reason, status=exc.status)
    return headers, body


def handle_authpi_error(request: Request[Any, Any, Any], exc: AuthpiError) -> Response[ErrorBody]:
    return render(request, exc)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    err = AuthpiError(str(exc.detail) if exc.detail else "request failed", reason="http")
    err.status = status
    err.error = _STATUS_CODES.get(status, "server_error" if status >= 500 else "invalid_request")
    if isinstance(exc, ValidationException):
        err.status, err.error = 400, "invalid_request"
        err.fields = _fields_of(exc)
        err.description = _describe(err.fields) or "the request is malformed"
    elif isinstance(exc, NotFoundException):
        err.description = "no such resource or route"
    elif isinstance(exc, MethodNotAllowedException):
        err.headers = dict(exc.headers or {})
        err.description = "method not allowed on this route"
    return render(request, err)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return render(request, unexpected(exc))


def unexpected(exc: Exception) -> AuthpiError:
    """The 500 answered for an exception that is no AuthpiError (logged with its traceback)."""
    log.exception("request.crashed", error_type=type(exc).__name__)
    return AuthpiError("an unexpected error occurred", reason="unexpected")


def _fields_of(exc: ValidationException) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for raw in extra:
        if not isinstance(raw, dict):
            continue
        item = cast("dict[str, object]", raw)
        key = str(item.get("key") or item.get("source") or "body")
        if key == "data" and item.get("source") == "body":
            # A handler declaring a required `data` received no body at all (authpi.web.body).
            problems.append(FieldProblem("body", "required", "a JSON request body is required"))
            continue
        message = str(item.get("message", "invalid value"))
        problems.append(FieldProblem(field=key, code="invalid", message=message))
    return problems


def _describe(fields: list[FieldProblem]) -> str:
    return "; ".join(f"{f.field}: {f.message}" for f in fields)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    AuthpiError: handle_authpi_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
