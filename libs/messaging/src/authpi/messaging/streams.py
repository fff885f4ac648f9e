"""Stream declarations. The definitions are the JSON files in deploy/nats/ (templated by the
deployment namespace); code only binds by name."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from authpi.contracts.subjects import events_stream, facts_stream

DEFINITIONS = Path(str(resources.files("authpi.messaging"))).parents[4] / "deploy" / "nats"


def _load(name: str, namespace: str) -> StreamConfig:
    raw = (DEFINITIONS / name).read_text()
    raw = raw.replace("{NS}_EVENTS", events_stream(namespace))
    raw = raw.replace("{NS}_FACTS", facts_stream(namespace)).replace("{ns}", namespace)
    spec = json.loads(raw)
    return StreamConfig(
        name=spec["name"],
        subjects=spec["subjects"],
        retention=RetentionPolicy(spec["retention"]),
        storage=StorageType(spec["storage"]),
        discard=DiscardPolicy(spec["discard"]),
        max_age=float(spec["max_age"]),
        duplicate_window=float(spec["duplicate_window"]),
        allow_direct=spec.get("allow_direct"),
    )


async def connect(url: str, name: str = "authpi") -> NATS:
    return await nats.connect(
        url, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5, allow_reconnect=True
    )


async def ensure_streams(js: JetStreamContext, namespace: str) -> None:
    for file in ("events-stream.json", "facts-stream.json"):
        config = _load(file, namespace)
        try:
            await js.stream_info(config.name)  # type: ignore[arg-type]
            await js.update_stream(config)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
