"""The parameters of one request to an IdP endpoint (RFC 6749 section 3.1, 3.2; idp-api.md 1.5):
a parameter sent twice is `invalid_request`, except `resource`, which RFC 8707 makes repeatable;
a value with control characters is `invalid_request`. Reading them off the wire is the api/
layer's work (authpi.token.api.forms)."""

from __future__ import annotations

from authpi.token.endpoints.errors import InvalidRequest

REPEATABLE = frozenset({"resource"})


class Form:
    """The parameters of one request; `get` refuses a parameter given twice. It also keeps the
    request's Authorization header (client_secret_basic) and client address (throttling)."""

    __slots__ = ("_values", "authorization", "source")

    def __init__(
        self,
        values: dict[str, list[str]],
        authorization: str | None = None,
        source: str | None = None,
    ) -> None:
        self._values = values
        self.authorization = authorization
        self.source = source

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequest(f"parameter {name!r} was given more than once")
        return values[0]

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])


def checked_form(
    values: dict[str, list[str]], authorization: str | None = None, source: str | None = None
) -> Form:
    """The request's parameters, once every one is given at most once (unless repeatable) and
    holds no control characters."""
    for name, vals in values.items():
        if len(vals) > 1 and name not in REPEATABLE:
            raise InvalidRequest(f"parameter {name!r} was given more than once")
        if any(not v.isprintable() for v in vals):
            raise InvalidRequest(f"parameter {name!r} has control characters")
    return Form(values, authorization, source)
