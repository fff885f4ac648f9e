"""The machine endpoints' form parser reads exactly what `urllib.parse.parse_qsl` (strict UTF-8,
no blank values, at most 64 fields) reads, and refuses what it refuses."""

import random
from urllib.parse import parse_qsl

import pytest

from authpi.token.api.forms import MAX_FIELDS, parse_form
from authpi.token.endpoints.errors import InvalidRequest

PIECES = ["a", "b", "grant_type", "=", "&", "%", "+", "%2", "%20", "%3D", "%26", "%e2%82%ac",
          "%C3", "%zz", "é", " ", "client_credentials", "scope", "x:y"]  # fmt: skip


def reference(body: bytes) -> list[tuple[str, str]] | None:
    try:
        return parse_qsl(
            body.decode("utf-8"), keep_blank_values=False, strict_parsing=False,
            max_num_fields=MAX_FIELDS, errors="strict",
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        return None


def ours(body: bytes) -> list[tuple[str, str]] | None:
    try:
        return parse_form(body)
    except InvalidRequest:
        return None


@pytest.mark.parametrize(
    "body",
    [
        b"grant_type=client_credentials&scope=bench%3Aread&resource=https%3A%2F%2Fapi.test%2F",
        b"", b"&", b"=", b"a=", b"=b", b"a", b"a=b=c", b"a+b=c+d", b"a=%E2%82%AC", b"a=%C3",
        b"a=%zz", b"\xff=1", b"a=1&&b=2&", b"&".join([b"a=1"] * MAX_FIELDS),
        b"&".join([b"a=1"] * (MAX_FIELDS + 1)), b"&" * MAX_FIELDS,
    ],
)  # fmt: skip
def test_examples_read_as_parse_qsl_reads_them(body):
    assert ours(body) == reference(body)


def test_random_bodies_read_as_parse_qsl_reads_them():
    rng = random.Random(5)
    for _ in range(20_000):
        body = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))).encode()
        assert ours(body) == reference(body), body


def test_only_plain_parameters_are_remembered_decoded_and_never_a_secret():
    """The decoded values of `grant_type`, `scope` and `resource` are kept for the next request
    (bounded); a client secret, a code or a refresh token never is, whatever its shape."""
    from authpi.token.api import forms

    body = (
        b"grant_type=refresh_token&scope=a%3Ab&resource=https%3A%2F%2Fr.test%2F"
        b"&client_secret=s%3Acret&refresh_token=t%2Bk&code=c%2Fd&password=p%25w"
    )
    assert parse_form(body) == parse_form(body) == reference(body)
    kept = set(forms._PLAIN_DECODED.values())  # pyright: ignore[reportPrivateUsage]
    assert {"a:b", "https://r.test/"} <= kept
    assert not kept & {"s:cret", "t+k", "c/d", "p%w"}
