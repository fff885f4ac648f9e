"""Request-wide checks for strings PostgreSQL cannot store: NUL characters (text and jsonb refuse
them) and lone surrogates (not encodable as UTF-8). Such input is never a 500: in a body it is a
422; in a path parameter it names no resource (404); in the query string it is a 400."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import parse_qsl

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable


def check_storable(body: Any) -> None:
    """Walk the decoded request (keys and values) and refuse unstorable strings."""
    stack: list[tuple[object, str]] = [(msgspec.to_builtins(body), "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            _check(value, path or "body")
        elif isinstance(value, Mapping):
            for key, item in cast("Mapping[object, object]", value).items():
                _check(str(key), path or "body")
                stack.append((item, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list | tuple):
            items = cast("Sequence[object]", value)
            stack.extend((item, f"{path}.{i}") for i, item in enumerate(items))


def _check(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(field, "is not valid Unicode text") from None
    if "\x00" in text:
        raise _refuse(field, "must not contain NUL characters")


def _refuse(field: str, text: str) -> Unprocessable:
    problem = FieldProblem(field=field, code="invalid_value", message=f"{field} {text}")
    return Unprocessable(problem.message, reason="body.unstorable_text", fields=[problem])


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_path_params(params: Mapping[str, object]) -> None:
    """An unstorable path parameter names no resource: 404."""
    if not all(storable(v) for v in params.values() if isinstance(v, str)):
        raise NotFound("no such resource", reason="path.unstorable_text")


class StorableTarget(ASGIMiddleware):
    """On the Core API, refuse a routed request whose path parameters or query string hold
    unstorable text before any layer or handler can pass it to PostgreSQL (`/users/%00` once
    answered 500). The IdP port resolves issuers in memory and checks its form fields itself."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        check_path_params(cast("Mapping[str, object]", scope["path_params"]))
        query = scope["query_string"].decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True, errors="surrogateescape"):
            if not (storable(name) and storable(value)):
                problem = FieldProblem(
                    field=name if storable(name) else "query",
                    code="invalid_value",
                    message="query parameters must be text without NUL characters",
                )
                raise InvalidRequest(
                    problem.message, reason="query.unstorable_text", fields=[problem]
                )
        await next_app(scope, receive, send)
