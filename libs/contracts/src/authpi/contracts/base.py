"""Base Structs of the catalogue: the event base (tagged on `type`), envelope metadata and the
wire envelope the relay publishes. Payloads never carry metadata; metadata never carries payload."""

from __future__ import annotations

from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every domain event; each subclass sets `tag=` to its spec event type."""


class Fact(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """High-volume facts (token issued, request metered): batched to JetStream, never stored."""


class Actor(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    type: str  # api_key | user | agent | client | system
    key_id: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    client_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


SYSTEM = Actor(type="system")


class Meta(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Envelope metadata stored beside each event (DESIGN.md 3, 7: region on every event)."""

    account_id: str
    issuer_id: str | None = None
    actor: Actor = SYSTEM
    trigger: str = "api"  # api | idp | system
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    region: str = "default"
    subject: dict[str, str] = {}


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """What travels on JetStream: one stored event with its store coordinates."""

    source: str  # owning service, e.g. "directory"
    position: int
    tx_id: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    recorded_at: int  # epoch ms
    meta: Meta
    data: msgspec.Raw


class EnvelopeAny(msgspec.Struct, frozen=True, kw_only=True):
    """Envelope decoded without a schema for `data` (audit tooling, dead letters)."""

    source: str
    position: int
    tx_id: int
    event_id: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    recorded_at: int
    meta: dict[str, Any]
    data: dict[str, Any]
