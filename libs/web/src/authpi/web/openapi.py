"""Responses in the generated OpenAPI documents, as the ports send them. litestar documents a 400
of its own (`detail`, `status_code`, `extra`) that no route ever sends; every error is rendered by
authpi.web.errors (Core API, core-api-contract.md 5.2) or authpi.web.oauth (IdP API, idp-api.md
1.5). Each operation documents the statuses any request can meet, plus a `default`. litestar also
gives a 204 a JSON `null` body; a 204 has no body and no Content-Type (RFC 9110 15.3.5)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

import msgspec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

_STRING = Schema(type=OpenAPIType.STRING)
_FIELD_ERROR = Schema(
    type=OpenAPIType.OBJECT,
    required=["field", "code", "message"],
    properties={"field": _STRING, "code": _STRING, "message": _STRING},
)
_API_ERROR_PROPERTIES: dict[str, Schema | Reference] = {
    "error": _STRING,
    "error_description": _STRING,
    "retryable": Schema(type=OpenAPIType.BOOLEAN),
    "reference": _STRING,
    "retry_after": Schema(type=OpenAPIType.INTEGER),
    "fields": Schema(type=OpenAPIType.ARRAY, items=Reference("#/components/schemas/FieldError")),
}


class ErrorDocs(msgspec.Struct, frozen=True, kw_only=True):
    """Which error schemas a port documents, and on which statuses."""

    schemas: Mapping[str, Schema]
    default: str  # the schema of every error status
    statuses: tuple[int, ...] = ()  # documented on every operation
    if_match: str | None = None  # the 412 schema of operations taking If-Match
    # Operations a browser navigates to (tagged so) answer errors with an HTML page, not JSON.
    page_tag: str | None = None


CORE_ERRORS = ErrorDocs(
    schemas={
        "FieldError": _FIELD_ERROR,
        "ApiError": Schema(
            type=OpenAPIType.OBJECT,
            required=["error", "error_description", "retryable"],
            properties=_API_ERROR_PROPERTIES,
        ),
        "PreconditionFailedError": Schema(
            type=OpenAPIType.OBJECT,
            required=["error", "error_description", "retryable"],
            properties={**_API_ERROR_PROPERTIES, "current_etag": _STRING},
        ),
    },
    default="ApiError",
    statuses=(400, 401, 403, 404, 422, 429),
    if_match="PreconditionFailedError",
)

BROWSER_PAGES = "Browser pages"

IDP_ERRORS = ErrorDocs(
    schemas={
        "OAuthError": Schema(
            type=OpenAPIType.OBJECT,
            required=["error", "error_description"],
            properties={"error": _STRING, "error_description": _STRING},
        ),
    },
    default="OAuthError",
    statuses=(400,),
    page_tag=BROWSER_PAGES,
)


def document_responses(document: OpenAPI, docs: ErrorDocs) -> None:
    """Replace every operation's error responses with `docs`, and drop 204 bodies (in place)."""
    components = document.components
    components.schemas = {**components.schemas, **docs.schemas}
    for path_item in (document.paths or {}).values():
        for operation in _operations(path_item):
            _document(operation, docs)


def _operations(path_item: object) -> list[Operation]:
    methods = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    found = (getattr(path_item, method, None) for method in methods)
    return [op for op in found if isinstance(op, Operation)]


def _document(operation: Operation, docs: ErrorDocs) -> None:
    kept = {code: r for code, r in (operation.responses or {}).items() if code[0] in "123"}
    for code, response in kept.items():
        if code == "204" and isinstance(response, OpenAPIResponse):
            response.content = None
    page = docs.page_tag is not None and docs.page_tag in (operation.tags or [])
    respond = _page if page else _response
    errors = {str(status): respond(status, docs.default) for status in docs.statuses}
    if docs.if_match is not None and _takes_if_match(operation):
        errors["412"] = respond(412, docs.if_match)
    errors["default"] = respond(None, docs.default)
    operation.responses = {**kept, **errors}


def _takes_if_match(operation: Operation) -> bool:
    params = operation.parameters or []
    return any(getattr(p, "name", "").lower() == "if-match" for p in params)


def _response(status: int | None, schema: str) -> OpenAPIResponse:
    description = HTTPStatus(status).phrase if status is not None else "Error"
    ref = Reference(f"#/components/schemas/{schema}")
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIMediaType(schema=ref)}
    )


def _page(status: int | None, schema: str) -> OpenAPIResponse:
    """An error shown to a person as an HTML page (`schema` does not apply to it)."""
    description = HTTPStatus(status).phrase if status is not None else "Error"
    html = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
    return OpenAPIResponse(description=description, content={"text/html": html})
