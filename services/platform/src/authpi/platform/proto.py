"""`authpi proto`: the generated contracts in proto/ — one JSON Schema per event type, the
AsyncAPI document of the subjects, and the OpenAPI documents of both ports (DESIGN.md 4). Built
from the event catalogue and the services' route declarations alone: no server is started or
reached."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import yaml

from authpi.contracts.base import Envelope
from authpi.contracts.catalogue import EVENT_TYPES
from authpi.contracts.facts import FactBatch, MachineTokenIssued, SessionTokenRefreshed
from authpi.contracts.public import PublicEvent
from authpi.platform.modules import all_modules
from authpi.platform.serving import build_core_api_app, build_idp_app, offline_runtime
from authpi.webhook.domain.public_events import FACT_DATA, RULES

PUBLIC_FACTS: dict[str, type[msgspec.Struct]] = {
    "machine.token.issued": MachineTokenIssued, "session.token-refreshed": SessionTokenRefreshed,
}  # fmt: skip

ROOT = Path(__file__).resolve().parents[5]
PROTO = ROOT / "proto"


def _dump(value: Any) -> str:
    return (
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=msgspec.to_builtins)
        + "\n"
    )


def event_schemas() -> dict[str, str]:
    return {
        f"events/{event_type}.json": _dump(msgspec.json.schema(cls))
        for event_type, cls in sorted(EVENT_TYPES.items())
    }


def _public_schema(event_type: str, source: dict[str, Any], fields: list[tuple[str, str]]) -> str:
    """The public event of `event_type` (platform.md 6.1): the PublicEvent shape with its `type`
    fixed and `data` holding exactly the translator's allow-listed fields, typed as in `source`
    (the stored event's or fact's JSON Schema)."""
    defs: dict[str, Any] = dict(source.get("$defs", {}))
    ref = source.get("$ref", "")
    # The stored shape itself stays out: only the definitions its public fields refer to.
    own = defs.pop(ref.rsplit("/", 1)[-1], source)
    props: dict[str, Any] = own.get("properties", {})
    public = msgspec.json.schema(PublicEvent)
    defs.update(public.get("$defs", {}))
    shape = dict(defs.pop("PublicEvent"))
    data = {name: props[field] for name, field in fields if field in props}
    shape["properties"] = {
        **shape["properties"],
        "type": {"const": event_type},
        "data": {"type": "object", "properties": data, "additionalProperties": False},
    }
    return _dump({"title": f"public {event_type}", **shape, "$defs": defs})


def public_event_schemas() -> dict[str, str]:
    """One schema per public type that exists: stored events with a translation rule, and the
    public facts."""
    out: dict[str, str] = {}
    for event_type, cls in sorted(EVENT_TYPES.items()):
        rule = RULES.get(event_type)
        if rule is not None:
            fields = [(e, e) if isinstance(e, str) else e for e in rule.data]
            source = msgspec.json.schema(cls)
            out[f"events/public/{event_type}.json"] = _public_schema(event_type, source, fields)
    for event_type, fact in PUBLIC_FACTS.items():
        fields = [(f, f) for f in FACT_DATA[event_type]]
        source = msgspec.json.schema(fact)
        out[f"events/public/{event_type}.json"] = _public_schema(event_type, source, fields)
    return out


def _public_channels() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    types = sorted({*(t for t in EVENT_TYPES if t in RULES), *PUBLIC_FACTS})
    for event_type in types:
        name = "public_" + event_type.replace(".", "_").replace("-", "_")
        channels[name] = {
            "address": f"authpi.public.{{account_id}}.{event_type}",
            "description": "Integrators' stream (AUTHPI_PUBLIC): the public event object, read "
            "through a durable consumer filtered to authpi.public.<account_id>.>",
            "parameters": {"account_id": {"description": "acc_…"}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {
            "name": f"public {event_type}",
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "description": "evt_ id"}},
            },
            "payload": {"$ref": f"./events/public/{event_type}.json"},
        }
    return channels, messages


def _fact_channels() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in sorted(PUBLIC_FACTS):
        name = "fact_" + event_type.replace(".", "_").replace("-", "_")
        channels[name] = {
            "address": f"authpi.fact.{event_type}",
            "description": "Internal FACTS stream (AUTHPI_FACTS): batches of high-volume facts",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {
            "name": f"fact {event_type}",
            "contentType": "application/json",
            "payload": {"$ref": "#/components/schemas/FactBatch"},
        }
    return channels, messages


def asyncapi() -> str:
    envelope = msgspec.json.schema(Envelope)
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for event_type in sorted(EVENT_TYPES):
        name = event_type.replace(".", "_").replace("-", "_")
        channels[name] = {
            "address": f"authpi.evt.{{account_id}}.{event_type}",
            "parameters": {"account_id": {"description": "acc_… or _ for account-less events"}},
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {
            "name": event_type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "description": "event id"}},
            },
            "payload": {
                "allOf": [{"$ref": "#/components/schemas/Envelope"}],
                "properties": {"data": {"$ref": f"./events/{event_type}.json"}},
            },
        }
    for extra in (_public_channels(), _fact_channels()):
        channels.update(extra[0])
        messages.update(extra[1])
    schemas = {**envelope.get("$defs", {}), **msgspec.json.schema(FactBatch).get("$defs", {})}
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "AuthPI domain events",
            "version": "1.0.0",
            "description": "One JetStream stream (AUTHPI_EVENTS) of committed domain events, "
            "published by each service's relay in commit order; Nats-Msg-Id is the event id. "
            "The public stream (AUTHPI_PUBLIC) carries the public event object of every public "
            "type, per account, for integrators; the FACTS stream batches high-volume facts.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
    }
    return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=100)


async def _not_ready() -> dict[str, bool]:
    return {}


async def openapi_documents() -> dict[str, str]:
    """Both ports' OpenAPI documents, from the apps of every module's unprepared parts."""
    rt = offline_runtime()
    parts = [await module.build(rt) for module in all_modules()]
    core = build_core_api_app(parts, _not_ready).litestar.openapi_schema.to_schema()
    idp = build_idp_app(parts, _not_ready, rt.settings, rt.clock).litestar.openapi_schema
    return {"openapi/core-api.json": _dump(core), "openapi/idp-api.json": _dump(idp.to_schema())}


def render(openapi: dict[str, str]) -> dict[str, str]:
    return {**event_schemas(), **public_event_schemas(), "asyncapi.yaml": asyncapi(), **openapi}


def drift(files: dict[str, str]) -> list[str]:
    """Paths under proto/ that differ from `files` (or exist without being generated)."""
    problems = [
        p
        for p, text in files.items()
        if not (PROTO / p).exists() or (PROTO / p).read_text() != text
    ]
    generated = set(files)
    for path in PROTO.rglob("*"):
        rel = path.relative_to(PROTO).as_posix()
        if path.is_file() and rel not in generated:
            problems.append(rel)
    return sorted(problems)


def run(write: bool) -> int:
    files = render(asyncio.run(openapi_documents()))
    if write:
        for path in PROTO.rglob("*"):
            if path.is_file() and path.relative_to(PROTO).as_posix() not in files:
                path.unlink()
        for rel, text in files.items():
            target = PROTO / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        print(f"wrote {len(files)} files under {PROTO}")
        return 0
    problems = drift(files)
    for rel in problems:
        print(f"proto/{rel} is out of date; run `make proto`", file=sys.stderr)
    return 1 if problems else 0
