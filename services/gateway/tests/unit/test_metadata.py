"""Metadata and custom-field limits and the PATCH merge rule (core-api.md 2.6)."""

from __future__ import annotations

import msgspec
import pytest

from authpi.errors import Unprocessable
from authpi.web.metadata import check_custom_fields, check_metadata, merge_metadata


def code_of(value, check=check_metadata) -> str:
    with pytest.raises(Unprocessable) as caught:
        check(value)
    return caught.value.fields[0].code


def test_values_within_the_limits_pass():
    check_metadata(None)
    check_metadata({"crm.id": "123", "flags": [1, {"a": {"b": 2}}], "x-y_z": None})


def test_limits():
    assert code_of({f"k{i}": i for i in range(51)}) == "too_many_keys"
    assert code_of({"": 1}) == "invalid_key"
    assert code_of({"k" * 41: 1}) == "invalid_key"
    assert code_of({"bad key": 1}) == "invalid_key"
    assert code_of({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}) == "too_deep"
    assert code_of({"big": "x" * 9000}) == "too_large"


def test_custom_fields_report_their_own_field_name():
    with pytest.raises(Unprocessable) as caught:
        check_custom_fields({"bad key": 1})
    assert caught.value.fields[0].field == "custom_fields"


def test_depth_five_is_allowed():
    check_metadata({"a": {"b": {"c": {"d": {"e": 1}}}}, "f": [[[[1]]]]})


def test_patch_merge_rule():
    stored = {"a": 1, "b": 2}
    assert merge_metadata(stored, msgspec.UNSET) == stored
    assert merge_metadata(stored, None) == {}
    assert merge_metadata(stored, {"b": None, "c": 3}) == {"a": 1, "c": 3}
