"""Request bodies on the Core API (core-api.md 1.3): JSON only, decoded strictly into the
handler's request Struct.

Handlers declare `data: JSONBody[SomeRequest]` (litestar.params) and the Core API app's DTO,
`JsonBody`, decodes it (and documents it in the OpenAPI schema):

* a body with a media type other than JSON -> 415 `invalid_content_type`;
* malformed JSON, or a body that is not a JSON object -> 400 `invalid_request`;
* wrong types or invalid values -> 422 with `fields` (dotted paths, e.g. `restrictions.scopes.0`);
* unknown fields are ignored, except in the Structs that forbid them (e.g. an organization's
  `sso` object): there a 422 names the field (`sso.x`, code `unknown_field`); over 1 MiB -> 413
  (the app's body limit);
* nested deeper than 64 arrays/objects -> 400 `invalid_request` (`body.too_deep`), found by a
  linear scan of the bytes before any parser sees them.

The depth bound protects every JSON parser in the process: C decoders recurse once per level,
and a dependency may raise Python's recursion limit far beyond what the C stack holds, so a
body of 100,000 `[` would crash the process instead of failing. Every reader of a JSON request
body (this DTO, the idempotency fingerprint, the IdP's JSON forms) calls `check_depth` or
`decode_json` first.

An absent body (the SDK's bodiless action POSTs: no body, no content-type) never reaches the
decoder. For an optional body declare a default: `data: JSONBody[Block] = Block()` (the Struct
must be `frozen=True`); a required body that is absent is a 400."""

from __future__ import annotations

import operator
import re
from collections.abc import Generator
from itertools import accumulate, count
from typing import Any, TypeVar, cast

import msgspec
from litestar.connection import ASGIConnection
from litestar.dto import AbstractDTO, DTOConfig, DTOFieldDefinition
from litestar.handlers import BaseRouteHandler
from litestar.typing import FieldDefinition

from authpi.errors import FieldProblem, InvalidContentType, InvalidRequest, Unprocessable

T = TypeVar("T")

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[([^\]]*)\]")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_WRONG_TYPE = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")


MAX_DEPTH = 64
_ESCAPE = re.compile(rb"\\[\s\S]")  # `\x`: an escaped character, `\"` included
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
# An opening bracket weighs 2, a closing one 0: the depth after the i-th bracket (1-based) is
# the running sum of weights minus i.
_WEIGHT = bytes.maketrans(b"[]{}", b"\x02\x00\x02\x00")


def too_deep(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `raw` nest deeper than `limit`. Linear in time, with no
    recursion and no backtracking: escapes go first, then everything between quotes (strings),
    then everything but brackets; malformed input is measured all the same."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    outside_strings = b"".join(_ESCAPE.sub(b"", raw).split(b'"')[::2])
    weights = outside_strings.translate(_WEIGHT, _NOT_BRACKET)
    return max(map(operator.sub, accumulate(weights), count(1)), default=0) > limit


def check_depth(raw: bytes, limit: int = MAX_DEPTH) -> None:
    """Refuse a body nested deeper than `limit` (400 `invalid_request`) before it is parsed."""
    if too_deep(raw, limit):
        raise InvalidRequest(
            f"the request body nests arrays and objects deeper than {limit} levels",
            reason="body.too_deep",
        )


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def decode_json(raw: bytes, type_: type[T], media_type: str) -> T:
    """Decode a non-empty request body into `type_` with the rules above."""
    if not is_json(media_type):
        raise InvalidContentType(
            "the request body must be application/json", reason="body.content_type"
        )
    check_depth(raw)
    try:
        return msgspec.json.decode(raw, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise _unprocessable(str(exc)) from None
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise InvalidRequest(
            "the request body is not valid JSON", reason="body.malformed"
        ) from None


def _unprocessable(error: str) -> InvalidRequest | Unprocessable:
    match = _AT.match(error)
    assert match is not None  # the pattern matches any string
    message, path = match["message"], match["path"]
    parts = [a or b for a, b in _PATH_PART.findall(path or "")]
    if missing := _MISSING.match(message):
        problem = _problem([*parts, missing["name"]], "required", "is required")
    elif unknown := _UNKNOWN.match(message):
        problem = _problem([*parts, unknown["name"]], "unknown_field", "is not a known field")
    elif not parts:
        return InvalidRequest("the request body must be a JSON object", reason="body.not_object")
    elif wrong := _WRONG_TYPE.match(message):
        text = f"must be {wrong['expected']}, not {wrong['got']}"
        problem = _problem(parts, "invalid_type", text)
    else:
        problem = _problem(parts, "invalid_value", message.replace("`", "").lower())
    return Unprocessable(
        f"{problem.field}: {problem.message}", reason="body.invalid", fields=[problem]
    )


def _problem(parts: list[str], code: str, text: str) -> FieldProblem:
    field = ".".join(parts)
    return FieldProblem(field=field, code=code, message=f"{field} {text}")


class JsonBody(AbstractDTO[T]):
    """The Core API app's DTO: decodes `data` with `decode_json` into the handler's annotation
    and documents that annotation as the request body. It never touches responses."""

    config = DTOConfig()

    @classmethod
    def generate_field_definitions(
        cls, model_type: type[Any]
    ) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def is_supported_model_type_field(cls, field_definition: FieldDefinition) -> bool:
        return False  # so that it is never chosen as a return DTO

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        return None

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        return schema_creator.for_field_definition(field_definition)

    def decode_bytes(self, value: bytes) -> Any:
        # litestar annotates AbstractDTO.asgi_connection as a bare ASGIConnection (no type args).
        connection = cast(
            "ASGIConnection[BaseRouteHandler, Any, Any, Any]",
            self.asgi_connection,  # pyright: ignore[reportUnknownMemberType]
        )
        field = connection.route_handler.parsed_data_field
        assert field is not None, "JsonBody decodes only for handlers with a `data` parameter"
        media_type = connection.headers.get("content-type", "").split(";")[0].strip().lower()
        return decode_json(value, field.annotation, media_type)
