"""Strict JSON request bodies (core-api.md 1.3): 415, 400, and 422 with dotted field paths."""

from __future__ import annotations

from typing import Annotated

import msgspec
import pytest

from authpi.errors import InvalidContentType, InvalidRequest, Unprocessable
from authpi.web.body import decode_json, is_json


class Restrictions(msgspec.Struct, frozen=True):
    scopes: list[str] = []


class Create(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(max_length=5)]
    count: int = 1
    restrictions: Restrictions = Restrictions()


def problem(raw: bytes) -> tuple[str, str]:
    with pytest.raises(Unprocessable) as caught:
        decode_json(raw, Create, "application/json")
    [field] = caught.value.fields
    assert caught.value.status == 422
    return field.field, field.code


def test_valid_body_decodes_and_ignores_unknown_fields():
    got = decode_json(b'{"name": "a", "extra": {"x": 1}}', Create, "application/json")
    assert got == Create(name="a")


def test_json_media_types():
    assert is_json("application/json") and is_json("application/merge-patch+json")
    assert not is_json("text/plain") and not is_json("application/x-www-form-urlencoded")


def test_other_media_type_is_415():
    with pytest.raises(InvalidContentType):
        decode_json(b"name=a", Create, "application/x-www-form-urlencoded")


@pytest.mark.parametrize("raw", [b"{", b'{"name": "a",}', b"\xff", b'["name"]', b'"x"'])
def test_malformed_or_non_object_body_is_400(raw):
    with pytest.raises(InvalidRequest) as caught:
        decode_json(raw, Create, "application/json")
    assert caught.value.status == 400


def test_missing_field_is_required():
    assert problem(b"{}") == ("name", "required")


def test_wrong_type_is_invalid_type_and_strict():
    assert problem(b'{"name": "a", "count": "2"}') == ("count", "invalid_type")


def test_constraint_is_invalid_value():
    assert problem(b'{"name": "toolong"}') == ("name", "invalid_value")


def test_nested_paths_are_dotted():
    raw = b'{"name": "a", "restrictions": {"scopes": ["x", 1]}}'
    assert problem(raw) == ("restrictions.scopes.1", "invalid_type")
