"""The catalogue: every event round-trips through JSON, carries its spec type as the tag, and
the committed proto/ matches the code (`make proto` regenerates it)."""

from __future__ import annotations

import socket

import msgspec
import pytest
from polyfactory.factories.msgspec_factory import MsgspecFactory

from authpi.contracts.catalogue import EVENT_TYPES, decode_event, encode
from authpi.contracts.subjects import subject_for
from authpi.platform.proto import drift, openapi_documents, render


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_event_round_trips_with_its_type_tag(event_type):
    cls = EVENT_TYPES[event_type]
    factory = MsgspecFactory.create_factory(cls)
    event = factory.build()
    raw = encode(event)
    assert msgspec.json.decode(raw)["type"] == event_type
    assert decode_event(raw) == event


def test_event_types_are_dotted_lower_case_names():
    for event_type in EVENT_TYPES:
        assert event_type == event_type.lower() and "." in event_type and " " not in event_type


def test_subjects_put_account_and_type_tokens_in_place():
    assert subject_for("acc_x", "api-key.created") == "authpi.evt.acc_x.api-key.created"
    assert subject_for(None, "account.created", "t1") == "t1.evt._.account.created"
    with pytest.raises(ValueError):
        subject_for("acc x.y", "user.created")


async def test_contracts_build_without_any_server(monkeypatch):
    """`authpi proto` needs only the route and event declarations: no address is resolved and
    no socket connects while the OpenAPI documents are built."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access while building the contracts: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    documents = await openapi_documents()
    assert set(documents) == {"openapi/core-api.json", "openapi/idp-api.json"}


async def test_committed_proto_matches_the_code():
    files = render(await openapi_documents())
    assert drift(files) == [], "proto/ is out of date: run `make proto`"
