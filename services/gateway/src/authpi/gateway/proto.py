"""`authpi proto`: the generated contracts in proto/ — one JSON Schema per event type, the
AsyncAPI document of the subjects, and the OpenAPI documents of both ports (DESIGN.md 4)."""

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
    doc = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "AuthPI domain events",
            "version": "1.0.0",
            "description": "One JetStream stream (AUTHPI_EVENTS) of committed domain events, "
            "published by each service's relay in commit order; Nats-Msg-Id is the event id.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": envelope.get("$defs", {})},
    }
    return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=100)


def openapi_documents(platform: Any) -> dict[str, str]:
    core = platform.core_app().litestar.openapi_schema.to_schema()
    idp = platform.idp_app().litestar.openapi_schema.to_schema()
    return {"openapi/core-api.json": _dump(core), "openapi/idp-api.json": _dump(idp)}


async def _with_platform() -> dict[str, str]:
    from authpi.config import from_env
    from authpi.gateway.platform import Platform
    from authpi.testing.infra import new_namespace, start_infra

    infra = start_infra()
    try:
        settings = msgspec.structs.replace(
            from_env(), database_url=infra.dsn, nats_url=infra.nats_url, namespace=new_namespace()
        )
        platform = Platform(settings, serve_http=False)
        await platform.prepare()
        try:
            return openapi_documents(platform)
        finally:
            await platform.stop()
    finally:
        infra.close()


def render(openapi: dict[str, str]) -> dict[str, str]:
    return {**event_schemas(), "asyncapi.yaml": asyncapi(), **openapi}


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
    files = render(asyncio.run(_with_platform()))
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
