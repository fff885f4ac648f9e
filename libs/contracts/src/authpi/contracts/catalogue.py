"""The one catalogue: every event type in one tagged union, with decoders built once."""

from __future__ import annotations

from typing import get_args

import msgspec

from authpi.contracts.agent import AgentEvent
from authpi.contracts.base import Envelope, Event
from authpi.contracts.billing import BillingEvent
from authpi.contracts.directory import DirectoryEvent
from authpi.contracts.token import TokenEvent
from authpi.contracts.webhook import WebhookServiceEvent

AnyEvent = DirectoryEvent | TokenEvent | AgentEvent | WebhookServiceEvent | BillingEvent

EVENT_TYPES: dict[str, type[Event]] = {
    cls.__struct_config__.tag: cls  # type: ignore[misc]
    for cls in get_args(AnyEvent)
}

_event_decoder = msgspec.json.Decoder(AnyEvent)
_envelope_decoder = msgspec.json.Decoder(Envelope)
_encoder = msgspec.json.Encoder()


def encode(value: object) -> bytes:
    return _encoder.encode(value)


def decode_event(raw: bytes | str) -> Event:
    return _event_decoder.decode(raw)


def decode_envelope(raw: bytes) -> Envelope:
    return _envelope_decoder.decode(raw)
